"""Crash tests for compute: kumod SIGKILLed with real QEMU (TCG) guests in
every phase of their lifecycle, then restarted on the same data dir.

  - while instances are pending: each acknowledged instance boots or ends in a
    failed state with a reason, never stays pending; one domain per instance;
  - while an instance runs: the guest keeps running while kumod is down and
    after the restart (same domain UUID, same QEMU process, one boot on the
    console); the log, libvirt and Describe agree;
  - during a stop and during a terminate: the acknowledged request completes
    after the restart; a terminated instance leaves no domain and no files;
  - every time: what the API acknowledged is in the log, with its request id
    (`kumoctl events` / `kumoctl audit`).

Needs root (tools/libvirtd starts libvirtd, tools/mkimage builds the guest).
    KUMO_BIN_DIR=build/bin /usr/bin/python3 tests/e2e/test_compute_crash.py -v
"""
import json
import os
import shutil
import sys
import time
import unittest

from test_ec2_api import Kumod, client
from test_instances import eventually, prepare_guest_tools, register_demo_image, virsh

# One node with room for a few guests; a short ACPI grace bounds a stop.
FLAGS = ("--hypervisor=libvirt", "--node-vcpus=8", "--node-memory-mib=4096", "--node-disk-gib=100",
         "--stop-grace-seconds=10")
BOOTED = "kumo-guest: booted"


def note(msg):
    print("  [crash] " + msg, file=sys.stderr, flush=True)


def domain_names():
    r = virsh("list", "--all", "--name")
    assert r.returncode == 0, r.stderr
    return [n.strip() for n in r.stdout.splitlines() if n.strip()]


def domstate(name):
    r = virsh("domstate", name)
    return r.stdout.strip() if r.returncode == 0 else None


def domuuid(name):
    r = virsh("domuuid", name)
    return r.stdout.strip() if r.returncode == 0 else None


def qemu_process(name):
    """(pid, start time in clock ticks since boot) of the domain's QEMU, or None."""
    try:
        with open("/var/run/libvirt/qemu/%s.pid" % name) as f:
            pid = int(f.read().strip())
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            if ("guest=" + name).encode() not in f.read():
                return None
        return pid, int(fields[19])  # field 22 of stat: starttime
    except (OSError, ValueError, IndexError):
        return None


def holds(fn, seconds, what):
    """Asserts fn() stays truthy for a whole observation window."""
    deadline = time.time() + seconds
    while True:
        got = fn()
        if not got:
            raise AssertionError("%s stopped holding" % what)
        if time.time() >= deadline:
            return got
        time.sleep(0.25)


class ComputeCrashTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        prepare_guest_tools()
        cls.all_launched = []
        cls.k = Kumod(*FLAGS)
        cls.a = client(cls.k, cls.k.admin_key, cls.k.admin_secret)
        cls.image = register_demo_image(cls.a)

    @classmethod
    def tearDownClass(cls):
        # Whatever failed, no guest of ours is left behind.
        try:
            for i in cls.all_launched:
                virsh("destroy", i)
                virsh("undefine", i)
        finally:
            if cls.k.proc.poll() is None:
                cls.k.stop()  # also removes the data dir
            else:
                shutil.rmtree(cls.k.dir, ignore_errors=True)

    def setUp(self):
        if self.k.proc.poll() is not None:  # an earlier test failed between its crash and restart
            self.restart()
        self.launched = []
        self.t0 = time.time()

    def tearDown(self):
        ids = list(self.launched)
        if ids and self.k.proc.poll() is None:
            try:
                self.a.terminate_instances(InstanceIds=ids)
                eventually(lambda: not set(ids) & set(domain_names()), 30, "domains of %s to go" % ids)
            except Exception as e:  # the fallback below still cleans up
                note("clean-up through the API failed: %s" % e)
        for i in ids:
            if i in domain_names():
                virsh("destroy", i)
                virsh("undefine", i)
        # A kumod of another test on this host (same libvirt) would see our
        # domains as orphans and the other way round; ctest runs these serially.
        for line in self.k.log:
            if "repair: destroying domain" in line:
                note("unexpected: " + line.strip())
        note("%s took %.1f s" % (self.id().rsplit(".", 1)[1], time.time() - self.t0))

    # ---- kumod crashes
    def crash(self):
        self.k.kill()
        # What the crash left on disk is a consistent log.
        r = self.k.kumoctl("verify")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    @classmethod
    def restart(cls):
        assert cls.k.proc.poll() is not None, "kumod is still running"
        t = time.time()
        cls.k = Kumod(*FLAGS, data_dir=cls.k.dir)
        cls.a = client(cls.k, cls.k.admin_key, cls.k.admin_secret)
        # The node's registration answer comes after the desired set the
        # controller sends it on registering: seeing it means the node has
        # reconciled once against the log.
        eventually(lambda: any("registered with the cluster" in l for l in list(cls.k.log)), 30,
                   "the node to register")
        note("restart: ready and node registered in %.1f s" % (time.time() - t))

    # ---- helpers
    def run_instances(self, count):
        out = self.a.run_instances(ImageId=self.image, MinCount=count, MaxCount=count, InstanceType="t1.micro")
        ids = [i["InstanceId"] for i in out["Instances"]]
        self.launched.extend(ids)
        self.all_launched.extend(ids)
        type(self).account = out["OwnerId"]
        return ids, out["ResponseMetadata"]["RequestId"]

    def describe(self, ids):
        res = self.a.describe_instances(InstanceIds=ids)["Reservations"]
        return {i["InstanceId"]: i for r in res for i in r["Instances"]}

    def state_of(self, iid):
        return self.describe([iid])[iid]["State"]["Name"]

    def wait_state(self, ids, state, timeout=60):
        eventually(lambda: all(i["State"]["Name"] == state for i in self.describe(ids).values()),
                   timeout, "%s to be %s" % (ids, state))

    def console(self, iid):
        return self.a.get_console_output(InstanceId=iid).get("Output", "")

    def wait_booted(self, iid, timeout=90):
        eventually(lambda: BOOTED in self.console(iid), timeout, "%r on the console of %s" % (BOOTED, iid))

    def our_domains(self):
        """Every libvirt domain kumo defined for this test's account (by its metadata)."""
        mine = []
        for name in domain_names():
            r = virsh("dumpxml", name)
            if r.returncode == 0 and "<kumo:account>%s</kumo:account>" % self.account in r.stdout:
                mine.append(name)
        return mine

    def events(self, iid):
        """The instance's stream, read with kumoctl (offline or next to the running kumod)."""
        r = self.k.kumoctl("events", "--stream=instance/%s/%s" % (self.account, iid), "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        return [json.loads(l) for l in r.stdout.splitlines() if l.strip()]

    def audit(self, iid):
        r = self.k.kumoctl("audit", iid, "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        return [json.loads(l) for l in r.stdout.splitlines() if l.strip()]

    def logged_state(self, events):
        """The state the log says the instance is in."""
        moves = [e["payload"]["to"] for e in events if e["type"] == "state_changed"]
        return moves[-1] if moves else ("pending" if events and events[0]["type"] == "launched" else None)

    def assert_acknowledged(self, iid, request_id, event_type, to=None):
        """The acknowledged request is in the log, with its request id, both
        through `kumoctl events` and `kumoctl audit`."""
        def match(e):
            return (e["request_id"] == request_id and e["type"] == event_type and
                    (to is None or e["payload"].get("to") == to))
        stream = self.events(iid)
        self.assertTrue(any(match(e) for e in stream), "%s %s (request %s) not in the log:\n%s"
                        % (iid, event_type, request_id, stream))
        audited = self.audit(iid)
        self.assertTrue(any(match(e) for e in audited), "kumoctl audit %s lacks %s (request %s):\n%s"
                        % (iid, event_type, request_id, audited))
        self.assertEqual([e["global_seq"] for e in audited if e["stream"].endswith("/" + iid)],
                         [e["global_seq"] for e in stream], "audit shows the whole stream of %s" % iid)
        for e in stream:
            self.assertTrue(e["request_id"] and e["principal"], e)

    def assert_agree(self, iid, state):
        """Describe, the log and libvirt tell the same story."""
        self.assertEqual(self.state_of(iid), state)
        self.assertEqual(self.logged_state(self.events(iid)), state)
        expected = {"running": "running", "stopped": "shut off", "terminated": None}[state]
        self.assertEqual(domstate(iid), expected)

    # ---- 1. pending
    def test_1_kill_while_pending(self):
        ids, rid = self.run_instances(3)
        self.crash()  # right after the acknowledgement: the node has had no time to boot them
        at_kill = {i: domstate(i) for i in ids}
        logged = {i: self.logged_state(self.events(i)) for i in ids}
        note("at the kill: libvirt %s, log %s" % (at_kill, logged))
        # Acknowledged = durable: every launch is in the log, none is lost.
        for i in ids:
            self.assert_acknowledged(i, rid, "launched")
        self.restart()
        # Bounded: nothing stays pending.
        eventually(lambda: all(i["State"]["Name"] != "pending" for i in self.describe(ids).values()), 60,
                   "%s to leave pending" % ids)
        running = []
        for iid, inst in self.describe(ids).items():
            state = inst["State"]["Name"]
            if state == "running":
                running.append(iid)
                self.wait_booted(iid)
                # The guest prints its instance id right after booting.
                eventually(lambda: "kumo-guest: instance-id " + iid in self.console(iid), 30,
                           "the instance id on the console of " + iid)
                out = self.console(iid)
                self.assertEqual(out.count(BOOTED), 1, "booted more than once:\n" + out[-3000:])
            else:
                # The only other way out of pending is a clear failure.
                self.assertEqual(state, "terminated", inst)
                self.assertTrue(inst["StateReason"]["Code"] and inst["StateReason"]["Message"], inst)
                note("%s failed: %s" % (iid, inst["StateReason"]))
            self.assert_agree(iid, state)
        # Exactly one domain per running instance, none for a failed one, no others.
        names = domain_names()
        for iid in ids:
            self.assertEqual(names.count(iid), 1 if iid in running else 0, names)
        self.assertEqual(sorted(self.our_domains()), sorted(running))
        for iid in ids:
            self.assert_acknowledged(iid, rid, "launched")

    # ---- 2. running
    def test_2_kill_while_running(self):
        (iid,), rid = self.run_instances(1)
        self.wait_state([iid], "running")
        self.wait_booted(iid)
        uuid, proc = domuuid(iid), qemu_process(iid)
        self.assertTrue(uuid and proc, (uuid, proc))
        before = self.events(iid)
        self.assertEqual(self.logged_state(before), "running")

        self.crash()
        # While kumod is down the guest runs on: same domain, same QEMU process.
        alive = lambda: domstate(iid) == "running" and domuuid(iid) == uuid and qemu_process(iid) == proc
        holds(alive, 2, "the guest running while kumod is down")
        self.assert_acknowledged(iid, rid, "launched")
        self.assertEqual(self.events(iid), before)

        self.restart()
        # The node has reconciled against the log; two more report rounds
        # (2 s each) must not touch the guest either.
        holds(lambda: alive() and self.state_of(iid) == "running", 4.5, "the guest untouched after the restart")
        self.assertEqual(self.describe([iid])[iid]["State"]["Name"], "running")
        self.assertEqual(qemu_process(iid), proc, "QEMU was restarted (uptime reset)")
        self.assertEqual(domuuid(iid), uuid, "the domain was recreated")
        out = self.console(iid)
        self.assertEqual(out.count(BOOTED), 1, "the guest booted again:\n" + out[-3000:])
        # The log has nothing new to say: no repair, no transition.
        self.assertEqual(self.events(iid), before)
        self.assert_agree(iid, "running")
        self.assertEqual(self.our_domains(), [iid])
        status = self.a.describe_instance_status(InstanceIds=[iid])["InstanceStatuses"]
        self.assertEqual([(s["InstanceState"]["Name"], s["SystemStatus"]["Status"]) for s in status],
                         [("running", "ok")])
        self.assert_acknowledged(iid, rid, "launched")

    # ---- 3. stop and terminate
    def test_3_kill_during_stop(self):
        (iid,), _ = self.run_instances(1)
        self.wait_state([iid], "running")
        self.wait_booted(iid)  # so it answers the ACPI power-off
        uuid = domuuid(iid)
        out = self.a.stop_instances(InstanceIds=[iid])
        self.crash()
        self.assertEqual(out["StoppingInstances"][0]["CurrentState"]["Name"], "stopping")
        rid = out["ResponseMetadata"]["RequestId"]
        note("at the kill: libvirt %s" % domstate(iid))
        self.assert_acknowledged(iid, rid, "state_changed", "stopping")

        self.restart()
        self.wait_state([iid], "stopped", 45)
        inst = self.describe([iid])[iid]
        self.assertEqual(inst["StateReason"]["Code"], "Client.UserInitiatedShutdown")
        self.assert_agree(iid, "stopped")
        self.assertEqual(domuuid(iid), uuid, "the domain was recreated")
        self.assertEqual(self.our_domains(), [iid])
        self.assert_acknowledged(iid, rid, "state_changed", "stopping")
        moves = [e["payload"]["to"] for e in self.events(iid) if e["type"] == "state_changed"]
        self.assertEqual(moves, ["running", "stopping", "stopped"])

    def test_4_kill_during_terminate(self):
        (iid,), _ = self.run_instances(1)
        self.wait_state([iid], "running")
        out = self.a.terminate_instances(InstanceIds=[iid])
        self.crash()
        self.assertEqual(out["TerminatingInstances"][0]["CurrentState"]["Name"], "shutting-down")
        rid = out["ResponseMetadata"]["RequestId"]
        note("at the kill: libvirt %s" % domstate(iid))
        self.assert_acknowledged(iid, rid, "state_changed", "shutting-down")

        self.restart()
        self.wait_state([iid], "terminated", 45)
        self.assert_agree(iid, "terminated")
        self.assertNotIn(iid, domain_names())
        self.assertFalse(os.path.exists(os.path.join(self.k.dir, "instances", iid)),
                         "the instance directory is left")
        self.assertEqual(self.our_domains(), [])
        self.assert_acknowledged(iid, rid, "state_changed", "shutting-down")
        moves = [e["payload"]["to"] for e in self.events(iid) if e["type"] == "state_changed"]
        self.assertEqual(moves, ["running", "shutting-down", "terminated"])


if __name__ == "__main__":
    unittest.main()
