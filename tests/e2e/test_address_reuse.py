"""A private address goes from a terminated instance to the next one at once
(issue 14), with REAL guests (libvirt/QEMU TCG, the demo guest) and kumod
--network=managed on a private host (tests/e2e/private_host.sh):

  - a "keeper" instance of the same group runs all along, so the segment and
    its dnsmasq stay up: the running dnsmasq holds the terminated guest's
    lease (for the old MAC) and must let go of it, the keeper's it must keep;
  - launch, terminate, launch again at once, 5 rounds in a row: each new
    instance gets the very IP of the one before (RunInstances says so), its
    guest prints that address within 10 s of its boot without ever giving up
    ("ip none"), reads its metadata and runs its user-data; dnsmasq's lease
    file then holds the new MAC for that IP, and the keeper's lease untouched;
  - once more with a crash in the middle: terminate, SIGKILL kumod right
    away, restart it on the same data dir, launch again: same checks.

Needs root. Run: KUMO_BIN_DIR=build/bin /usr/bin/python3 tests/e2e/test_address_reuse.py -v
"""
import datetime
import os
import sys
import time
import unittest
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from test_network_guests import outside, sh  # noqa: E402  (after the path)

RECONCILE_SECONDS = 2
FLAGS = ("--hypervisor=libvirt", "--node-vcpus=8", "--node-memory-mib=2048", "--node-disk-gib=50",
         "--stop-grace-seconds=5", "--network=managed", "--net-interface=kumoul0",
         "--net-reconcile-seconds=%d" % RECONCILE_SECONDS)
ROUNDS = 5              # launch/terminate rounds in a row before the crash
DHCP_WITHIN = 10.0      # seconds from "booted" to "ip <address>" (the guest gives up after ~6 s)
POLL = 0.25             # console poll period (the measurement's resolution)
BOOT_TIMEOUT = 180      # launch to "booted" under TCG on a busy machine
RELEASE_TIMEOUT = 90    # terminate (or restart) to the NIC's release in the log

# The user-data: a script, so "user-data ran" shows it was run; the round
# marker shows it was this instance's own user-data.
SCRIPT = '#!/bin/sh\necho "kumo-guest: round %s" >/dev/console\n'


@unittest.skipUnless(os.environ.get("KUMO_PRIVATE_HOST") == "1", "runs inside tests/e2e/private_host.sh")
class AddressReuseTest(unittest.TestCase):
    rounds = []      # (label, instance id, ip, mac, boot->ip seconds), in order
    live = []        # instance ids not yet terminated (tearDownClass)
    old_logs = []    # the log of the kumod before the SIGKILL

    @classmethod
    def setUpClass(cls):
        from test_ec2_api import Kumod, client
        from test_instances import register_demo_image
        cls.Kumod = Kumod
        # A SIGKILLed kumod's pipe and the old client's socket are left to the GC.
        warnings.filterwarnings("ignore", category=ResourceWarning)
        cls.started = time.time()
        sh("ip", "link", "add", "kumoul0", "type", "veth", "peer", "name", "kumoul1")
        sh("ip", "link", "set", "kumoul0", "up")
        sh("ip", "link", "set", "kumoul1", "up")
        cls.k = Kumod(*FLAGS)
        cls.ec2 = client(cls.k, cls.k.admin_key, cls.k.admin_secret)
        cls.image = register_demo_image(cls.ec2)
        cls.sg = cls.ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"][0]["GroupId"]
        # The keeper: first, so it has the segment's first address; it keeps
        # the segment (and its dnsmasq, with its lease) up the whole time.
        i = cls.ec2.run_instances(ImageId=cls.image, MinCount=1, MaxCount=1, InstanceType="t1.micro",
                                  SecurityGroupIds=[cls.sg])["Instances"][0]
        cls.keeper = (i["InstanceId"], i["PrivateIpAddress"], i["NetworkInterfaces"][0]["MacAddress"].lower())
        cls.live.append(cls.keeper[0])

    @classmethod
    def tearDownClass(cls):
        try:
            if cls.live:
                cls.ec2.terminate_instances(InstanceIds=list(cls.live))
        except Exception as e:  # kumod may be the thing that failed
            print("tearDown: TerminateInstances failed: %s" % e, file=sys.stderr)
        figures = ", ".join("%s %.2f s" % (r[0], r[4]) for r in cls.rounds)
        print("\naddress reuse: boot->ip per round: %s; total %.0f s" % (figures or "none", time.time() - cls.started))
        cls.k.stop()

    # ---- helpers
    def console(self, iid):
        return self.ec2.get_console_output(InstanceId=iid).get("Output", "")  # botocore decodes it

    def leases(self):
        try:
            with open(os.path.join(self.k.dir, "net", "leases")) as f:
                return f.read()
        except OSError as e:
            return "(%s)" % e

    def audit_types(self, what):
        out = self.k.kumoctl("audit", what)
        return [line.split()[2] for line in out.stdout.splitlines() if len(line.split()) > 2] \
            if out.returncode == 0 else []

    def diagnostics(self, iid):
        console = "(none)"
        try:
            console = self.console(iid)
        except Exception as e:
            console = "(GetConsoleOutput failed: %s)" % e
        log = "".join(l for l in self.k.log[-150:] if "GetConsoleOutput" not in l)
        hosts = sh("cat", os.path.join(self.k.dir, "net", "hosts"), check=False)
        return "\n--- console of %s:\n%s\n--- %s/net/leases:\n%s\n--- hosts:\n%s\n--- kumod (tail):\n%s" % (
            iid, console, self.k.dir, self.leases(), hosts.stdout + hosts.stderr, log)

    def wait(self, fn, timeout, what, iid):
        """Polls fn() every POLL s until truthy; on timeout, fails with what the guest and kumod said."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            got = fn()
            if got:
                return got
            time.sleep(POLL)
        raise AssertionError("timed out after %d s waiting for %s%s" % (timeout, what, self.diagnostics(iid)))

    def lease_of(self, ip):
        """The MACs dnsmasq's lease file holds for `ip` ("expiry mac ip host client-id" lines)."""
        return [f[1].lower() for f in (l.split() for l in self.leases().splitlines()) if len(f) >= 3 and f[2] == ip]

    def launch_and_check(self, label, expected_ip=None, previous_mac=None):
        """RunInstances, then the guest: DHCP within DHCP_WITHIN s of "booted"
        on the first try, metadata, user-data. Returns (iid, ip, mac)."""
        i = self.ec2.run_instances(ImageId=self.image, MinCount=1, MaxCount=1, InstanceType="t1.micro",
                                   SecurityGroupIds=[self.sg], UserData=SCRIPT % label)["Instances"][0]
        iid, ip, mac = i["InstanceId"], i["PrivateIpAddress"], i["NetworkInterfaces"][0]["MacAddress"].lower()
        self.live.append(iid)
        if expected_ip is not None:
            self.assertEqual(ip, expected_ip, "%s: RunInstances did not give %s the address of the terminated "
                                              "instance" % (label, iid))
        self.assertNotEqual(ip, self.keeper[1])
        if previous_mac is not None:
            self.assertNotEqual(mac, previous_mac, "%s: a MAC was reused" % label)
        self.assertEqual(self.ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
                         ["PrivateIpAddress"], ip)

        # "booted" -> "ip <ip>", measured at POLL resolution.
        lines = self.wait(lambda: (lambda c: c if "kumo-guest: booted" in c else None)(self.console(iid).splitlines()),
                          BOOT_TIMEOUT, "%s: %s to boot" % (label, iid), iid)
        booted = time.time()
        want = "kumo-guest: ip " + ip
        while want not in lines and time.time() - booted < DHCP_WITHIN + 20:
            time.sleep(POLL)
            lines = self.console(iid).splitlines()
        took = time.time() - booted
        if want not in lines:
            self.fail("%s: %s printed no %r within %.0f s of its boot%s" % (
                label, iid, want, took, self.diagnostics(iid)))
        before = lines[:lines.index(want)]
        self.assertNotIn("kumo-guest: ip none", before, "%s: %s gave up on DHCP before it got %s (%.1f s)%s" % (
            label, iid, ip, took, self.diagnostics(iid)))
        other = [l for l in before if l.startswith("kumo-guest: ip ")]
        self.assertEqual(other, [], "%s: %s got another address first%s" % (label, iid, self.diagnostics(iid)))
        print("%s: %s got %s (MAC %s) %.2f s after its boot" % (label, iid, ip, mac, took), flush=True)
        if previous_mac:  # what kumod did with the old MAC's lease (the path under test)
            for who, log in (("kumod before the SIGKILL", self.old_logs), ("kumod", self.k.log)):
                for l in log:
                    if "DHCP lease %s of %s" % (ip, previous_mac) in l or (who == "kumod" and self.old_logs and
                                                                             "dnsmasq" in l):
                        print("  %s: %s" % (who, l.strip()), flush=True)
        self.assertLess(took, DHCP_WITHIN, "%s: %s got %s only %.1f s after its boot%s" % (
            label, iid, ip, took, self.diagnostics(iid)))
        self.rounds.append((label, iid, ip, mac, took))

        for line in ("kumo-guest: metadata instance-id " + iid, "kumo-guest: user-data ran",
                     "kumo-guest: round %s" % label):
            self.wait(lambda: line in self.console(iid).splitlines(), 60, "%s: %r" % (label, line), iid)
        # dnsmasq's own record: the new MAC holds the address, once; the
        # keeper (up since its own DHCP) keeps its lease untouched.
        kid, kip, kmac = self.keeper
        self.wait(lambda: "kumo-guest: ip " + kip in self.console(kid).splitlines(), 60,
                  "the keeper %s to get %s" % (kid, kip), kid)
        self.wait(lambda: self.lease_of(ip) == [mac], 10, "%s: the lease file to give %s to %s only" % (label, ip, mac),
                  iid)
        self.assertEqual(self.lease_of(kip), [kmac], "the keeper's lease" + self.diagnostics(kid))
        return iid, ip, mac

    def wait_released(self, label, iid):
        """Until the log shows the NIC of `iid` given back (its address is free again)."""
        self.wait(lambda: "nic_released" in self.audit_types(iid), RELEASE_TIMEOUT,
                  "%s: the NIC of %s to be released (kumoctl audit)" % (label, iid), iid)
        self.live.remove(iid)
        state = self.ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["State"]["Name"]
        self.assertEqual(state, "terminated")
        # Its address is free only once its guest is gone: never two guests on one IP.
        dom = sh("virsh", "-c", "qemu:///system", "domstate", iid, check=False)
        self.assertTrue(dom.returncode != 0 or "running" not in dom.stdout,
                        "%s: the NIC of %s was released while its guest still runs: %s%s" % (
                            label, iid, dom.stdout.strip(), self.diagnostics(iid)))

    # ---- the tests
    def dnsmasq_pid(self):
        with open(os.path.join(self.k.dir, "net", "dnsmasq.pid")) as f:
            return f.read().strip()

    def test_1_relaunch_on_the_same_address_5_times(self):
        ip = mac = serving = None
        for n in range(1, ROUNDS + 1):
            label = "round-%d" % n
            iid, ip, mac = self.launch_and_check(label, ip, mac)
            # The old lease went from the running dnsmasq (dhcp_release), not by restarting it.
            serving = serving or self.dnsmasq_pid()
            self.assertEqual(self.dnsmasq_pid(), serving, "%s: dnsmasq was restarted" % label)
            started = time.time()
            self.ec2.terminate_instances(InstanceIds=[iid])
            self.wait_released(label, iid)
            print("%s: %s terminated, NIC released after %.1f s" % (label, iid, time.time() - started), flush=True)
        type(self).last = (ip, mac)

    def test_2_relaunch_after_sigkill_and_restart(self):
        if not getattr(self, "last", None):
            self.skipTest("test_1 did not finish")
        from test_ec2_api import client
        ip, mac = self.last
        iid, ip6, mac6 = self.launch_and_check("round-6", ip, mac)
        self.ec2.terminate_instances(InstanceIds=[iid])
        self.k.kill()  # at once: the termination and the release are kumod's to finish after the restart
        print("round-6: SIGKILLed kumod at %s (kumod's log times are UTC)" % (
            datetime.datetime.now(datetime.timezone.utc).strftime("%H:%M:%S.%f")[:-3]), flush=True)
        self.old_logs.extend(self.k.log)
        started = time.time()
        k = type(self).k = self.Kumod(*FLAGS, data_dir=self.k.dir)
        type(self).ec2 = client(k, k.admin_key, k.admin_secret)
        self.wait_released("round-6", iid)
        print("round-6: kumod restarted, NIC of %s released %.1f s after the SIGKILL" % (iid, time.time() - started),
              flush=True)
        for l in self.k.kumoctl("audit", iid).stdout.splitlines():
            print("  audit: " + l, flush=True)
        self.launch_and_check("round-7", ip6, mac6)


if __name__ == "__main__":
    if os.environ.get("KUMO_PRIVATE_HOST") == "1":
        unittest.main()
    else:
        sys.exit(outside(__file__))
