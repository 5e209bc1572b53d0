"""Managed networking across hosts: a cloud kumod (--role=cloud,cluster) and
a node kumod (--role=node), each in its own network namespace, joined by a
veth pair that plays the physical network (--net-interface on both).

The node host makes its guests' segment itself (bridge without an address,
VXLAN device on its interface, the guest's tap plugged in); the cloud host
is the segment's gateway: DHCP, metadata and NAT reach the guest over VXLAN.
The node runs the fake hypervisor (this test is about the network), so a
veth named as the instance's tap stands in for the guest, its other end in a
third namespace where busybox asks for a lease and fetches metadata.

Needs root (network namespaces). Run:
    KUMO_BIN_DIR=build/bin /usr/bin/python3 tests/e2e/test_network_roles.py -v
"""
import ctypes
import os
import re
import shutil
import subprocess
import tempfile
import threading
import unittest
import uuid

from test_ec2_api import BIN, Kumod, client
from test_volumes import eventually, sparse_disk

CLONE_NEWNET = 0x40000000
SUFFIX = uuid.uuid4().hex[:6]
CLOUD_NS, NODE_NS, GUEST_NS = "kc" + SUFFIX, "kn" + SUFFIX, "kg" + SUFFIX
CLOUD_IP, NODE_IP = "192.168.77.1", "192.168.77.2"


def sh(*args, ns=None, check=True):
    cmd = (["ip", "netns", "exec", ns] if ns else []) + list(args)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if check and out.returncode != 0:
        raise AssertionError("%s failed: %s%s" % (" ".join(cmd), out.stdout, out.stderr))
    return out


def enter(ns):
    """Moves this (single-threaded) process into `ns`: kumods it starts inherit it."""
    libc = ctypes.CDLL(None, use_errno=True)
    with open("/run/netns/" + ns) as f:
        if libc.setns(f.fileno(), CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns " + ns)


def links(ns):
    """name -> (master, [ipv4 addresses]) of the links in `ns`."""
    out = sh("ip", "-o", "link", "show", ns=ns).stdout
    found = {}
    for line in out.splitlines():
        m = re.match(r"\d+: ([^:@]+)[@:]", line)
        master = re.search(r" master (\S+)", line)
        found[m.group(1)] = (master.group(1) if master else None, [])
    for line in sh("ip", "-o", "-4", "addr", "show", ns=ns).stdout.splitlines():
        name, addr = line.split()[1], line.split()[3]
        if name in found:
            found[name][1].append(addr)
    return found


class Node:
    """kumod --role=node inside the node namespace, its log read continuously."""

    def __init__(self, cluster, data_dir):
        self.lines = []
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", NODE_NS, os.path.join(BIN, "kumod"), "--role=node", "--cluster=" + cluster,
             "--data-dir=" + data_dir, "--node-id=node-b", "--hypervisor=fake", "--node-vcpus=4",
             "--node-memory-mib=2048", "--node-disk-gib=50", "--network=managed", "--net-interface=u1"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
        threading.Thread(target=lambda: self.lines.extend(self.proc.stdout), daemon=True).start()

    def saw(self, text):
        return any(text in line for line in self.lines)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


@unittest.skipUnless(os.geteuid() == 0, "needs root for network namespaces")
class NetworkRolesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cloud = cls.node = None
        cls.tmp = tempfile.mkdtemp(prefix="kumo-netroles-")
        try:
            cls.start()
        except BaseException:
            cls.tearDownClass()  # no namespace, process or dnsmasq outlives a failed start
            raise

    @classmethod
    def start(cls):
        for ns in (CLOUD_NS, NODE_NS, GUEST_NS):
            sh("ip", "netns", "add", ns)
            sh("ip", "link", "set", "lo", "up", ns=ns)
        sh("ip", "link", "add", "u0", "netns", CLOUD_NS, "type", "veth", "peer", "name", "u1", "netns", NODE_NS)
        sh("ip", "addr", "add", CLOUD_IP + "/24", "dev", "u0", ns=CLOUD_NS)
        sh("ip", "link", "set", "u0", "up", ns=CLOUD_NS)
        sh("ip", "addr", "add", NODE_IP + "/24", "dev", "u1", ns=NODE_NS)
        sh("ip", "link", "set", "u1", "up", ns=NODE_NS)
        enter(CLOUD_NS)
        cls.cloud = Kumod("--role=cloud,cluster", "--cluster-listen=%s:0" % CLOUD_IP, "--network=managed",
                          "--net-interface=u0", "--net-private=10.16.0.0/16", "--net-vni=1000-1009",
                          "--net-public-pool=198.51.100.10-198.51.100.15", "--net-reconcile-seconds=1",
                          "--net-metadata-port=8775")
        ready = next(l for l in cls.cloud.log if "kumod ready" in l)
        cls.cluster = re.search(r"cluster=([\d.]+:\d+)", ready).group(1)
        cls.node = Node(cls.cluster, os.path.join(cls.tmp, "node"))
        eventually(lambda: cls.node.saw("registered with the cluster"), 30,
                   "the node to register:\n" + "".join(cls.node.lines))
        cls.ec2 = client(cls.cloud, cls.cloud.admin_key, cls.cloud.admin_secret)
        cls.image = cls.ec2.register_image(Name="disk", ImageLocation=sparse_disk(cls.tmp))["ImageId"]

    @classmethod
    def tearDownClass(cls):
        if cls.node:
            cls.node.stop()
        if cls.cloud:
            cls.cloud.stop()
        for ns in (CLOUD_NS, NODE_NS, GUEST_NS):
            sh("ip", "netns", "del", ns, check=False)
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_guest_on_a_node_host_gets_dhcp_and_metadata_from_the_cloud_host(self):
        inst = self.ec2.run_instances(ImageId=self.image, MinCount=1, MaxCount=1)["Instances"][0]
        iid, ip = inst["InstanceId"], inst["PrivateIpAddress"]
        nic = inst["NetworkInterfaces"][0]
        tap, mac = "kt" + nic["NetworkInterfaceId"][len("eni-"):], nic["MacAddress"]

        # The node host made the segment's bridge (no address: the gateway is
        # the cloud host's) and its VXLAN device on u1.
        def node_bridge():
            return [n for n in links(NODE_NS) if re.fullmatch(r"kbr\d+", n)]
        eventually(lambda: len(node_bridge()) == 1, 30, "the node's bridge:\n" + "".join(self.node.lines[-20:]))
        bridge = node_bridge()[0]
        vni = bridge[len("kbr"):]
        node_links = links(NODE_NS)
        self.assertEqual(node_links[bridge][1], [])
        self.assertEqual(node_links["kvx" + vni][0], bridge)
        cloud_links = links(CLOUD_NS)
        self.assertEqual(cloud_links[bridge][1], [re.sub(r"\.\d+$", ".1", ip) + "/24"])
        self.assertEqual(cloud_links["kvx" + vni][0], bridge)

        # The stand-in guest: a veth named as the instance's tap, which the
        # node's data plane plugs into the bridge.
        sh("ip", "link", "add", tap, "type", "veth", "peer", "name", "g0", "netns", GUEST_NS, ns=NODE_NS)
        sh("ip", "link", "set", tap, "up", ns=NODE_NS)
        sh("ip", "link", "set", "g0", "address", mac, "up", ns=GUEST_NS)
        eventually(lambda: links(NODE_NS)[tap][0] == bridge, 30, "the node to plug the tap into " + bridge)

        # DHCP from the cloud host's dnsmasq, across the VXLAN, with the MTU
        # the VXLAN leaves (u0's 1500 minus 50).
        script = os.path.join(self.tmp, "dhcp-event")
        with open(script, "w") as f:
            f.write("#!/bin/sh\necho \"dhcp $1 mtu=$mtu router=$router\"\n")
        os.chmod(script, 0o755)
        lease = sh("busybox", "udhcpc", "-i", "g0", "-n", "-q", "-t", "10", "-T", "1", "-O", "mtu", "-s", script,
                   ns=GUEST_NS, check=False)
        self.assertIn("lease of " + ip, lease.stdout + lease.stderr)
        self.assertIn("dhcp bound mtu=1450 router=" + re.sub(r"\.\d+$", ".1", ip), lease.stdout)
        gateway = re.sub(r"\.\d+$", ".1", ip)
        sh("ip", "addr", "add", ip + "/24", "dev", "g0", ns=GUEST_NS)
        sh("ip", "route", "add", "default", "via", gateway, ns=GUEST_NS)

        # Metadata: the cloud host's DNAT of 169.254.169.254 and its metadata server.
        def instance_id():
            out = sh("timeout", "5", "busybox", "wget", "-q", "-O", "-",
                     "http://169.254.169.254/latest/meta-data/instance-id", ns=GUEST_NS, check=False)
            return out.stdout.strip()
        eventually(lambda: instance_id() == iid, 30, "metadata from the cloud host")

        # Stopped: the guest keeps its segment on the node (its links stay, the tap stays plugged).
        self.ec2.stop_instances(InstanceIds=[iid])
        eventually(lambda: self.ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
                   ["State"]["Name"] == "stopped", 30, "the instance to stop")
        now = links(NODE_NS)
        self.assertEqual((now[bridge][0], now["kvx" + vni][0], now[tap][0]), (None, bridge, bridge))

        # Terminated: the node removes the segment's links it no longer needs.
        self.ec2.terminate_instances(InstanceIds=[iid])
        eventually(lambda: not node_bridge(), 30, "the node to remove " + bridge)


if __name__ == "__main__":
    unittest.main()
