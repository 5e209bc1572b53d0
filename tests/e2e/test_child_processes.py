"""kumod's child processes: dnsmasq ends on SIGTERM and is reaped (issue 14).

kumod blocks SIGTERM/SIGINT in every thread (it sigwaits for them); a child
that inherited that mask ignored SIGTERM and was SIGKILLed on every segment
change, and where PID 1 never reaps orphans a dead dnsmasq stayed a zombie
that kill(pid, 0) took for alive.

Each test runs kumod (--network=managed, fake hypervisor) in a network
namespace of its own (bridges, nft table and dnsmasq never touch the
machine's network) and in a PID + mount namespace whose PID 1 is
`sleep infinity`, which never calls wait(): nothing there reaps an orphan.
The namespace's processes are read through the namespace's own /proc
(/proc/<PID 1's host pid>/root/proc), so pids are the ones kumod logs.

Needs root (namespaces). Run:
    KUMO_BIN_DIR=build/bin /usr/bin/python3 tests/e2e/test_child_processes.py -v
"""
import ctypes
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unittest
import uuid

from test_ec2_api import BIN, client, read_profile
from test_network_roles import CLONE_NEWNET, enter, sh
from test_volumes import eventually, sparse_disk

KUMOD = os.path.abspath(os.path.join(BIN, "kumod"))  # absolute: nsenter --mount changes the cwd
FLAGS = ["--listen=127.0.0.1:0", "--hypervisor=fake", "--network=managed", "--net-private=10.16.0.0/16",
         "--net-vni=1000-1099", "--net-reconcile-seconds=1"]
# Any of these in kumod's log means a dnsmasq ignored SIGTERM (or was taken for alive when dead).
SIGKILL_WARNINGS = ("outlived SIGTERM", "SIGKILL")
STOPPED = re.compile(r"net: stopped dnsmasq \(pid (\d+)\)")
RESTARTED = "net: restarted dnsmasq for the new segment list"


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:  # gone (or going) meanwhile
        return None


def stat_of(proc_dir, pid):
    """(state, ppid, exit status) of `pid` as `proc_dir` shows it, or None once it has no entry."""
    text = read("%s/%d/stat" % (proc_dir, pid))
    if not text:
        return None
    fields = text[text.rindex(")") + 2:].split()  # comm may hold anything
    return fields[0], int(fields[1]), int(fields[49])  # fields 3, 4 and 52 (exit_code, as waitpid reports it)


def children(host_pid):
    text = read("/proc/%d/task/%d/children" % (host_pid, host_pid)) or ""
    return [int(p) for p in text.split()]


class PidNamespace:
    """A PID + mount namespace (its own /proc) whose PID 1 never reaps: `sh`
    starts `argv` in the background, then execs `sleep infinity`."""

    def __init__(self, argv):
        self.unshare = subprocess.Popen(
            ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child", "--",
             "sh", "-c", '"$@" & exec sleep infinity', "sh"] + argv,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
        self.init = None  # PID 1's host pid
        try:
            self.init = eventually(self._sleeping_init, 10, "the namespace's PID 1 to exec sleep")
        except BaseException:
            self.destroy()
            raise
        self.proc = "/proc/%d/root/proc" % self.init  # the namespace's own /proc

    def _sleeping_init(self):
        for pid in children(self.unshare.pid):
            if (read("/proc/%d/cmdline" % pid) or "").startswith("sleep\0"):
                return pid
        return None

    def stat(self, pid):
        return stat_of(self.proc, pid)

    def alive(self, pid):
        s = self.stat(pid)
        return s is not None and s[0] not in "ZXx"

    def started(self, pid):
        """When `pid` started, in clock ticks after boot (field 22 of stat)."""
        text = read("%s/%d/stat" % (self.proc, pid))
        return int(text[text.rindex(")") + 2:].split()[19]) if text else None

    def zombies_since(self, since, but=()):
        """Lasting zombies of processes started at or after `since` (clock
        ticks), other than `but`: what a kumod started then could have failed
        to reap. Older ones are children of a kumod SIGKILLed before it (a
        qemu-img it ran, say), which only PID 1 could reap, and this PID 1
        never does."""
        return {z for z in self.lasting_zombies() if z not in but and (self.started(z) or 0) >= since}

    def blocked_signals(self, pid):
        """Its signal mask (SigBlk, hex); a dnsmasq that blocks SIGTERM never ends on it."""
        return int(read("%s/%d/status" % (self.proc, pid)).split("SigBlk:")[1].split()[0], 16)

    def zombies(self):
        found = set()
        for name in os.listdir(self.proc):
            if name.isdigit():
                s = self.stat(int(name))
                if s and s[0] == "Z":
                    found.add(int(name))
        return found

    def lasting_zombies(self):
        """Zombies seen twice 1 s apart: a child that just ended may wait a moment for its reaper."""
        first = self.zombies()
        if not first:
            return first
        time.sleep(1)
        return first & self.zombies()

    def destroy(self):
        """Killing PID 1 makes the kernel kill (and reap) everything in the namespace."""
        if self.init:
            try:
                os.kill(self.init, signal.SIGKILL)
            except ProcessLookupError:
                pass
        else:
            self.unshare.kill()  # --kill-child: its child goes with it
        self.unshare.wait(timeout=30)


class NsKumod:
    """A kumod inside the PID namespace, its log read from `popen`'s stdout
    (the wrapper that started it) and its host pid found among the children of
    `parent_host_pid`; endpoint and admin credentials as Kumod reads them."""

    def __init__(self, popen, data_dir, parent_host_pid):
        self.popen, self.dir, self.parent, self.log, self.port = popen, data_dir, parent_host_pid, [], None
        ready = threading.Event()

        def follow():  # for ever, so kumod never blocks on a full pipe
            for line in popen.stdout:
                self.log.append(line)
                m = re.search(r"kumod ready: listening on http://127\.0\.0\.1:(\d+)", line)
                if m:
                    self.port = int(m.group(1))
                    ready.set()
        self.reader = threading.Thread(target=follow, daemon=True)
        self.reader.start()
        try:
            self.host_pid = eventually(self._find, 10, "kumod to start")
        except AssertionError as e:
            raise AssertionError("%s:\n%s" % (e, self.text())) from None
        # The wrapper's pipe may stay open after kumod is gone: wait for the line, not for EOF.
        if not ready.wait(30):
            raise AssertionError("kumod did not start:\n" + self.text())
        nspid = read("/proc/%d/status" % self.host_pid).split("NSpid:")[1].split("\n")[0]
        self.pid = int(nspid.split()[-1])  # as the namespace (and kumod's log) numbers it
        self.endpoint = "http://127.0.0.1:%d" % self.port
        self.admin_key, self.admin_secret = read_profile(os.path.join(data_dir, "admin-credentials"), "kumo")

    @classmethod
    def entering(cls, ns, data_dir):
        """Another kumod started inside `ns` (nsenter: same PID namespace, same /proc)."""
        popen = subprocess.Popen(["nsenter", "--target", str(ns.init), "--pid", "--mount", "--", KUMOD,
                                  "--data-dir=" + data_dir] + FLAGS,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
        try:
            return cls(popen, data_dir, popen.pid)
        except BaseException:
            popen.kill()
            popen.wait()
            raise

    def _find(self):
        for pid in children(self.parent):
            if (read("/proc/%d/cmdline" % pid) or "").startswith(KUMOD + "\0"):
                return pid
        return None

    def close(self):
        """Once every process holding its log pipe is gone."""
        self.reader.join(timeout=10)
        self.popen.stdout.close()

    def text(self):
        return "".join(self.log)

    def count(self, needle):
        return sum(needle in line for line in list(self.log))

    def stopped(self):
        return [int(m.group(1)) for m in (STOPPED.search(l) for l in list(self.log)) if m]

    def assert_no_sigkill(self, test):
        for line in list(self.log):
            for warning in SIGKILL_WARNINGS:
                test.assertNotIn(warning, line, "\n" + self.text())


@unittest.skipUnless(os.geteuid() == 0, "needs root for network and PID namespaces")
class ChildProcessesTest(unittest.TestCase):
    def setUp(self):
        self.ns = self.tmp = None
        self.kumods, self.clients = [], []
        self.netns = "kp" + uuid.uuid4().hex[:6]
        self.home_net = os.open("/proc/self/ns/net", os.O_RDONLY)
        try:
            self.tmp = tempfile.mkdtemp(prefix="kumo-children-")
            sh("ip", "netns", "add", self.netns)
            sh("ip", "link", "set", "lo", "up", ns=self.netns)
            enter(self.netns)  # kumods started from here inherit it
            self.data = os.path.join(self.tmp, "data")
            os.mkdir(self.data)
            self.ns = PidNamespace([KUMOD, "--data-dir=" + self.data] + FLAGS)
            # The kumod that the namespace's sh started: a child of PID 1.
            self.kumod = NsKumod(self.ns.unshare, self.data, self.ns.init)
            self.kumods.append(self.kumod)
            self.connect(self.kumod)
            self.image = self.ec2.register_image(Name="disk", ImageLocation=sparse_disk(self.tmp))["ImageId"]
        except BaseException:
            self.tearDown()  # no namespace, process or dnsmasq outlives a failed start
            raise

    def tearDown(self):
        try:
            for c in self.clients:
                c.close()
            if self.ns:
                self.ns.destroy()
            for k in self.kumods:
                k.popen.kill()  # nsenter: its kumod died with the namespace (no-op once it has ended)
                k.popen.wait(timeout=30)
                k.close()
            if self.ns:
                self.ns.unshare.stdout.close()
        finally:
            if ctypes.CDLL(None, use_errno=True).setns(self.home_net, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back to the machine's network namespace")
            os.close(self.home_net)
            sh("ip", "netns", "del", self.netns, check=False)
            if self.tmp:
                shutil.rmtree(self.tmp, ignore_errors=True)

    # ---- helpers
    def connect(self, k):
        self.ec2 = client(k, k.admin_key, k.admin_secret)
        self.clients.append(self.ec2)

    def pid_file(self):
        return int((read(os.path.join(self.data, "net", "dnsmasq.pid")) or "0").strip() or 0)

    def serving(self, not_in=()):
        """The pid of a live dnsmasq named by the pid file and not in `not_in`, else None."""
        pid = self.pid_file()
        return pid if pid and pid not in not_in and self.ns.alive(pid) else None

    def add_segment(self, name):
        """A security group of its own with an instance in it: a new segment."""
        sg = self.ec2.create_security_group(GroupName=name, Description="segment " + name)["GroupId"]
        inst = self.ec2.run_instances(ImageId=self.image, MinCount=1, MaxCount=1,
                                      SecurityGroupIds=[sg])["Instances"][0]
        return inst["InstanceId"]

    def retire_segment(self, iid):
        """Terminates the group's only instance: its segment is retired."""
        self.ec2.terminate_instances(InstanceIds=[iid])

    def wait_restart(self, k, restarts, previous, what):
        """Until kumod logged its `restarts`-th restart and a new dnsmasq serves."""
        return eventually(lambda: k.count(RESTARTED) >= restarts and self.serving(previous), 30,
                          what + " to restart dnsmasq:\n" + k.text())

    # ---- tests
    def test_1_dnsmasq_ends_on_sigterm_at_every_segment_change_and_is_reaped(self):
        k = self.kumod
        live = [self.add_segment("g0")]
        first = eventually(lambda: k.count("net: started dnsmasq") and self.serving(), 30,
                           "dnsmasq to start:\n" + k.text())
        self.assertEqual(k.count("net: started dnsmasq (1 segment(s))"), 1, k.text())
        self.assertEqual(self.ns.blocked_signals(first), 0)
        pids = [first]
        # Ten changes: add a segment, retire the oldest, ... (one to two segments
        # at all times, so each change is a restart of dnsmasq, never a plain stop).
        for change in range(1, 11):
            if change % 2:
                live.append(self.add_segment("g%d" % change))
                what = "adding segment %d" % change
            else:
                self.retire_segment(live.pop(0))
                what = "retiring a segment (change %d)" % change
            pids.append(self.wait_restart(k, change, pids, what))
            self.assertEqual(self.ns.blocked_signals(pids[-1]), 0, "dnsmasq's signal mask")
            self.assertEqual(k.count(RESTARTED), change, k.text())
            self.assertEqual(self.ns.lasting_zombies(), set(), "zombies after %s:\n%s" % (what, k.text()))

        k.assert_no_sigkill(self)
        self.assertNotIn("it was not running", k.text())
        # Each of the ten stopped (the first ten), and each was reaped: no /proc entry at all.
        self.assertEqual(k.stopped(), pids[:10], k.text())
        for pid in pids[:10]:
            self.assertIsNone(self.ns.stat(pid), "dnsmasq %d was not reaped" % pid)
        self.assertTrue(self.ns.alive(pids[10]))
        self.assertEqual(self.ns.stat(pids[10])[1], k.pid, "dnsmasq runs as kumod's child")

        # SIGTERM: kumod stops its dnsmasq, reaps it, and exits 0. Nothing reaps
        # kumod itself (PID 1 is sleep), so it stays a zombie: expected.
        os.kill(k.host_pid, signal.SIGTERM)
        eventually(lambda: (stat_of("/proc", k.host_pid) or ("Z",))[0] == "Z", 30,
                   "kumod to exit:\n" + k.text())
        status = stat_of("/proc", k.host_pid)[2]
        self.assertTrue(os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0,
                        "kumod's wait status %d:\n%s" % (status, k.text()))
        self.assertIn("kumod: stopped cleanly", k.text())
        self.assertEqual(k.stopped(), pids, k.text())
        self.assertIsNone(self.ns.stat(pids[10]), "kumod's last dnsmasq was not reaped")
        k.assert_no_sigkill(self)
        self.assertEqual(self.ns.lasting_zombies(), {k.pid}, k.text())

    def test_2_a_kumod_adopts_dnsmasq_and_sees_its_zombie_as_dead(self):
        b = self.kumod
        self.add_segment("a")
        adopted = eventually(lambda: b.count("net: started dnsmasq") and self.serving(), 30,
                             "dnsmasq to start:\n" + b.text())

        # A crash: dnsmasq keeps running, reparented to PID 1 (which never reaps).
        os.kill(b.host_pid, signal.SIGKILL)
        eventually(lambda: (self.ns.stat(b.pid) or "?")[0] == "Z" and (self.ns.stat(adopted) or "??")[1] == 1, 10,
                   "kumod to die and dnsmasq to be reparented to PID 1")
        self.assertTrue(self.ns.alive(adopted))

        # The next kumod, in the same PID namespace and on the same data dir. Its
        # hosts file emptied, so its first pass must talk to the dnsmasq it finds:
        # it rewrites the file and sends that dnsmasq SIGHUP instead of restarting it.
        with open(os.path.join(self.data, "net", "hosts"), "w"):
            pass
        c = NsKumod.entering(self.ns, self.data)
        self.kumods.append(c)
        c_started = self.ns.started(c.pid)
        self.connect(c)
        eventually(lambda: c.count("net: dnsmasq reloads its static leases"), 30,
                   "kumod to find the running dnsmasq:\n" + c.text())
        self.assertEqual(self.pid_file(), adopted)
        self.assertTrue(self.ns.alive(adopted))
        for line in ("started dnsmasq", "stopped dnsmasq", "restarted dnsmasq"):
            self.assertNotIn(line, c.text())

        # A segment change: the adopted dnsmasq ends on SIGTERM and stays a zombie
        # of PID 1. kumod must take that zombie for dead and start a new one.
        self.add_segment("b")
        fresh = self.wait_restart(c, 1, [adopted], "adding a segment")
        self.assertEqual(c.stopped(), [adopted], c.text())
        c.assert_no_sigkill(self)
        state, ppid, status = self.ns.stat(adopted)
        self.assertEqual((state, ppid), ("Z", 1), "the adopted dnsmasq: a zombie of PID 1")
        self.assertTrue(os.WIFEXITED(status) or os.WTERMSIG(status) == signal.SIGTERM,
                        "the adopted dnsmasq ended with wait status %d, not on SIGTERM" % status)
        self.assertNotEqual(self.ns.stat(fresh)[0], "Z")
        self.assertEqual(self.ns.stat(fresh)[1], c.pid, "the new dnsmasq runs as kumod's child")
        # Later passes keep the new one (the zombie is not taken for a running dnsmasq either).
        self.add_segment("c")
        newest = self.wait_restart(c, 2, [adopted, fresh], "adding another segment")
        self.assertEqual(c.stopped(), [adopted, fresh], c.text())
        self.assertIsNone(self.ns.stat(fresh), "kumod's own dnsmasq was not reaped")
        c.assert_no_sigkill(self)
        self.assertTrue({b.pid, adopted} <= self.ns.lasting_zombies(), c.text())
        self.assertEqual(self.ns.zombies_since(c_started, but={c.pid}), set(), c.text())

        # SIGTERM: nsenter hands back kumod's exit status; its dnsmasq is reaped.
        os.kill(c.host_pid, signal.SIGTERM)
        self.assertEqual(c.popen.wait(timeout=30), 0, c.text())
        self.assertIn("kumod: stopped cleanly", c.text())
        self.assertEqual(c.stopped(), [adopted, fresh, newest], c.text())
        self.assertIsNone(self.ns.stat(newest), "kumod's last dnsmasq was not reaped")
        c.assert_no_sigkill(self)
        self.assertTrue({b.pid, adopted} <= self.ns.lasting_zombies())
        self.assertEqual(self.ns.zombies_since(c_started), set())


if __name__ == "__main__":
    unittest.main()
