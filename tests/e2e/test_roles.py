"""End-to-end roles over CAF: `kumod --role=cloud,cluster` and a separate
`kumod --role=node` connected through the CAF middleman on 127.0.0.1 boot a
real guest; the node process is SIGKILLed and comes back without touching
the guest or duplicating its domain.

    KUMO_BIN_DIR=build/bin /usr/bin/python3 tests/e2e/test_roles.py -v
"""
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import unittest

from test_ec2_api import BIN, Kumod, client
from test_instances import eventually, prepare_guest_tools, register_demo_image, virsh


class Node:
    """kumod --role=node on its own data dir, its log read continuously."""

    def __init__(self, cluster, data_dir):
        self.lines = []
        self.proc = subprocess.Popen(
            [os.path.join(BIN, "kumod"), "--role=node", "--cluster=" + cluster, "--data-dir=" + data_dir,
             "--node-id=node-a", "--hypervisor=libvirt", "--node-vcpus=4", "--node-memory-mib=2048",
             "--node-disk-gib=50"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
        threading.Thread(target=lambda: self.lines.extend(self.proc.stdout), daemon=True).start()

    def saw(self, text):
        return any(text in line for line in self.lines)


def qemu_pid(name):
    with open("/var/run/libvirt/qemu/%s.pid" % name) as f:
        return int(f.read().strip())


class RolesTest(unittest.TestCase):
    def setUp(self):
        prepare_guest_tools()
        self.cloud = Kumod("--role=cloud,cluster", "--cluster-listen=127.0.0.1:0")
        self.addCleanup(self.cloud.stop)
        ready = next(l for l in self.cloud.log if "kumod ready" in l)
        self.cluster = re.search(r"cluster=(127\.0\.0\.1:\d+)", ready).group(1)
        self.node_dir = tempfile.mkdtemp(prefix="kumo-node-")
        self.addCleanup(shutil.rmtree, self.node_dir, True)
        self.node = None
        self.ec2 = client(self.cloud, self.cloud.admin_key, self.cloud.admin_secret)
        self.image = register_demo_image(self.ec2)

    def start_node(self):
        self.node = Node(self.cluster, self.node_dir)
        eventually(lambda: self.node.saw("registered with the cluster"), 30, "the node to register:\n" +
                   "".join(self.node.lines))

    def stop_node(self, sig):
        self.node.proc.send_signal(sig)
        self.node.proc.wait(timeout=30)

    def status(self, iid):
        s = self.ec2.describe_instance_status(InstanceIds=[iid], IncludeAllInstances=True)["InstanceStatuses"]
        return s[0]["SystemStatus"]["Status"] if s else None

    def state(self, iid):
        r = self.ec2.describe_instances(InstanceIds=[iid])["Reservations"]
        return r[0]["Instances"][0]["State"]["Name"]

    def test_node_process_boots_guest_and_survives_being_killed(self):
        # Without a node there is no capacity: a clear refusal, nothing launched.
        with self.assertRaises(Exception) as ctx:
            self.ec2.run_instances(ImageId=self.image, MinCount=1, MaxCount=1, InstanceType="t1.micro")
        self.assertIn("InsufficientInstanceCapacity", str(ctx.exception))

        self.start_node()
        iid = self.ec2.run_instances(ImageId=self.image, MinCount=1, MaxCount=1,
                                     InstanceType="t1.micro")["Instances"][0]["InstanceId"]

        def cleanup():
            try:
                self.ec2.terminate_instances(InstanceIds=[iid])
                eventually(lambda: virsh("domstate", iid).returncode != 0, 60, "the domain to go")
            finally:
                virsh("destroy", iid)
                virsh("undefine", iid)
                if self.node and self.node.proc.poll() is None:
                    self.stop_node(signal.SIGTERM)
        self.addCleanup(cleanup)

        eventually(lambda: self.state(iid) == "running", 60, "running")
        # The console crosses both processes: API -> cluster -> node -> libvirt.
        eventually(lambda: "kumo-guest: booted" in self.ec2.get_console_output(InstanceId=iid).get("Output", ""),
                   120, "the guest to boot")
        self.assertTrue(os.path.isdir(os.path.join(self.node_dir, "instances", iid)))
        pid = qemu_pid(iid)

        # The node process dies: the guest keeps running, the cloud says the
        # system status is impaired.
        self.stop_node(signal.SIGKILL)
        eventually(lambda: self.status(iid) == "impaired", 30, "impaired status")
        self.assertEqual(virsh("domstate", iid).stdout.strip(), "running")
        self.assertEqual(self.state(iid), "running")

        # It comes back: reconciled, same QEMU process, no second domain, no reboot.
        self.start_node()
        eventually(lambda: self.status(iid) == "ok", 30, "ok status")
        self.assertEqual(qemu_pid(iid), pid)
        names = virsh("list", "--all", "--name").stdout.split()
        self.assertEqual(names.count(iid), 1)
        out = self.ec2.get_console_output(InstanceId=iid)["Output"]
        self.assertEqual(out.count("kumo-guest: booted"), 1)

        # Terminate through the remote node: domain and files go.
        self.ec2.terminate_instances(InstanceIds=[iid])
        eventually(lambda: self.state(iid) == "terminated", 60, "terminated")
        self.assertNotEqual(virsh("domstate", iid).returncode, 0)
        self.assertFalse(os.path.exists(os.path.join(self.node_dir, "instances", iid)))


if __name__ == "__main__":
    unittest.main()
