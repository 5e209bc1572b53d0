"""Managed networking with REAL guests (libvirt/QEMU TCG, the demo guest),
kumod --network=managed on a private host (tests/e2e/private_host.sh: its own
network namespace and libvirtd, so nothing touches the machine's network):

  - each guest gets the private address DescribeInstances shows, by DHCP
    from kumo's dnsmasq (its console says so);
  - each reads its own metadata (IMDSv1 at boot; after HttpTokens=required a
    tokenless GET gets 401 and the IMDSv2 token flow works);
  - two instances of one group reach each other; another account's does not;
  - an elastic IP reaches its guest from a "public" namespace, stops after
    disassociate, moves with re-association;
  - drift (a stale DNAT, a lost one, a deleted bridge) is repaired within a
    reconcile period and shows in `kumoctl audit`;
  - SIGKILL kumod, flush the kumo table by hand, restart: the table comes
    back identical and the guest answers on its elastic IP again.

Needs root. Run: KUMO_BIN_DIR=build/bin /usr/bin/python3 tests/e2e/test_network_guests.py -v
"""
import os
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

RECONCILE_SECONDS = 2
FLAGS = ("--hypervisor=libvirt", "--node-vcpus=8", "--node-memory-mib=2048", "--node-disk-gib=50",
         "--stop-grace-seconds=5", "--network=managed", "--net-interface=kumoul0",
         "--net-public-pool=198.51.100.10-198.51.100.20", "--net-reconcile-seconds=%d" % RECONCILE_SECONDS)

# The guest's user-data: serve its instance id on :8080, report which peers
# (given in the script) it reaches, and once HttpTokens=required is set,
# report the 401 of a tokenless GET and the answer with an IMDSv2 token.
SCRIPT = r"""#!/bin/sh
MD=http://169.254.169.254/latest
say() { echo "kumo-guest: $*" >/dev/console; }
iid=$(timeout 5 wget -q -O - $MD/meta-data/instance-id)
mkdir -p /tmp/www && echo "$iid" >/tmp/www/index.html
httpd -p 8080 -h /tmp/www && say "serving $iid"
for peer in PEERS; do
  if timeout 5 wget -q -O - http://$peer:8080/ >/tmp/peer 2>/dev/null; then say "reach $peer yes $(cat /tmp/peer)"; else say "reach $peer no"; fi
done
while true; do
  if timeout 5 wget -O /dev/null $MD/meta-data/instance-id 2>&1 | grep -q ' 401 '; then
    tok=$(printf 'PUT /latest/api/token HTTP/1.0\r\nX-aws-ec2-metadata-token-ttl-seconds: 300\r\n\r\n' | timeout 5 nc 169.254.169.254 80 | tail -n 1)
    v2=$(timeout 5 wget -q -O - --header "X-aws-ec2-metadata-token: $tok" $MD/meta-data/instance-id)
    say "imds tokenless 401, with token $v2"
    exit 0
  fi
  sleep 1
done
"""


def user_data(peers=()):
    return SCRIPT.replace("PEERS", " ".join(peers))


def sh(*cmd, check=True):
    r = subprocess.run(list(cmd), capture_output=True, text=True)
    if check and r.returncode != 0:
        raise AssertionError("%s failed (%d): %s%s" % (" ".join(cmd), r.returncode, r.stdout, r.stderr))
    return r


@unittest.skipUnless(os.environ.get("KUMO_PRIVATE_HOST") == "1", "runs inside tests/e2e/private_host.sh")
class NetworkGuestsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        from test_ec2_api import Kumod, client
        from test_instances import register_demo_image
        from test_volumes import eventually, new_account
        cls.Kumod, cls.client = Kumod, client
        sh("ip", "link", "add", "kumoul0", "type", "veth", "peer", "name", "kumoul1")
        sh("ip", "link", "set", "kumoul0", "up")
        sh("ip", "link", "set", "kumoul1", "up")
        # The outside world: a namespace behind pub0 that routes the public pool here.
        cls.outside = subprocess.Popen(["unshare", "-n", "sh", "-c", "ip link set lo up; echo ready; exec sleep 3600"],
                                       stdout=subprocess.PIPE, text=True)
        assert cls.outside.stdout.readline().strip() == "ready"
        pid = str(cls.outside.pid)
        sh("ip", "link", "add", "pub0", "type", "veth", "peer", "name", "pubg")
        sh("ip", "link", "set", "pubg", "netns", pid)
        sh("ip", "addr", "add", "203.0.113.1/24", "dev", "pub0")
        sh("ip", "link", "set", "pub0", "up")
        for c in (["ip", "addr", "add", "203.0.113.2/24", "dev", "pubg"], ["ip", "link", "set", "pubg", "up"],
                  ["ip", "route", "add", "198.51.100.0/24", "via", "203.0.113.1"]):
            sh("nsenter", "-t", pid, "-n", *c)
        cls.k = Kumod(*FLAGS)
        cls.a = client(cls.k, cls.k.admin_key, cls.k.admin_secret)
        cls.b_account, cls.b = new_account(cls.k, "team-b")
        cls.image = register_demo_image(cls.a)
        img = cls.a.describe_images(ImageIds=[cls.image])["Images"][0]
        for part in (cls.image, img["KernelId"], img["RamdiskId"]):
            cls.a.modify_image_attribute(ImageId=part, LaunchPermission={"Add": [{"UserId": cls.b_account}]})
        cls.a.authorize_security_group_ingress(GroupName="default", IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
        # b1 and a2 first, serving, so a1's script knows where to knock and
        # a "no" means blocked, not "not up yet".
        cls.b1, cls.b1_ip = cls.launch(cls.b, user_data())
        cls.a2, cls.a2_ip = cls.launch(cls.a, user_data())
        for ec2, iid in ((cls.b, cls.b1), (cls.a, cls.a2)):
            eventually(lambda: "kumo-guest: serving " + iid in ec2.get_console_output(InstanceId=iid).get(
                "Output", "").splitlines(), 240, iid + " serving")
        cls.a1, cls.a1_ip = cls.launch(cls.a, user_data([cls.a2_ip, cls.b1_ip]))

    @classmethod
    def launch(cls, ec2, data):
        i = ec2.run_instances(ImageId=cls.image, MinCount=1, MaxCount=1, InstanceType="t1.micro",
                              UserData=data)["Instances"][0]
        return i["InstanceId"], i["PrivateIpAddress"]

    @classmethod
    def tearDownClass(cls):
        for ec2, iid in ((cls.a, cls.a1), (cls.a, cls.a2), (cls.b, cls.b1)):
            try:
                ec2.terminate_instances(InstanceIds=[iid])
            except Exception:
                pass
        cls.k.stop()
        cls.outside.kill()

    def eventually(self, fn, timeout, what):
        """test_volumes.eventually, plus what kumod and the host's network looked like."""
        from test_volumes import eventually
        try:
            return eventually(fn, timeout, what)
        except AssertionError as e:
            state = [sh(*c, check=False).stdout for c in (["nft", "list", "ruleset"], ["ip", "-br", "addr"])]
            raise AssertionError("%s\nkumod:\n%s\nhost:\n%s" % (
                e, "".join(l for l in self.k.log[-200:] if "GetConsoleOutput" not in l), "\n".join(state)))

    def console(self, ec2, iid):
        return ec2.get_console_output(InstanceId=iid).get("Output", "")  # botocore decodes it

    def wait_console(self, ec2, iid, line, timeout=180):
        try:
            self.eventually(lambda: line in self.console(ec2, iid).splitlines(), timeout, repr(line))
        except AssertionError as e:
            guests = ((self.a, self.a1), (self.a, self.a2), (self.b, self.b1))
            lines = ["%s: %s" % (i, l) for c, i in guests for l in self.console(c, i).splitlines()[-12:]]
            raise AssertionError("%s\nwhat the guests said:\n%s" % (e, "\n".join(lines)))

    def from_outside(self, ip):
        # (busybox wget -T segfaults; timeout bounds it instead)
        r = sh("nsenter", "-t", str(self.outside.pid), "-n", "timeout", "5", "busybox", "wget", "-q", "-O", "-",
               "http://%s:8080/" % ip, check=False)
        return r.stdout.strip() if r.returncode == 0 else None

    def audit(self, what):
        r = self.k.kumoctl("audit", what)
        return r.stdout + r.stderr

    def test_1_dhcp_metadata_and_isolation(self):
        for ec2, iid, ip in ((self.b, self.b1, self.b1_ip), (self.a, self.a2, self.a2_ip), (self.a, self.a1, self.a1_ip)):
            self.wait_console(ec2, iid, "kumo-guest: ip " + ip)
            self.wait_console(ec2, iid, "kumo-guest: metadata instance-id " + iid)
        # One group, one segment: a1 reaches a2. Another account's group: no.
        self.wait_console(self.a, self.a1, "kumo-guest: reach %s yes %s" % (self.a2_ip, self.a2))
        self.wait_console(self.a, self.a1, "kumo-guest: reach %s no" % self.b1_ip)
        # IMDSv2 required: a tokenless GET is refused, the token flow works.
        self.a.modify_instance_metadata_options(InstanceId=self.a2, HttpTokens="required")
        self.wait_console(self.a, self.a2, "kumo-guest: imds tokenless 401, with token " + self.a2, 60)
        self.assertNotIn("imds tokenless 401", self.console(self.a, self.a1))  # a1 still optional

    def test_2_elastic_ip_moves_and_goes(self):
        for iid, ip in ((self.a1, self.a1_ip), (self.a2, self.a2_ip)):
            self.wait_console(self.a, iid, "kumo-guest: ip " + ip)
        eip = self.a.allocate_address()
        self.assertIsNone(self.from_outside(eip["PublicIp"]))
        assoc = self.a.associate_address(AllocationId=eip["AllocationId"], InstanceId=self.a1)["AssociationId"]
        self.assertEqual(self.eventually(lambda: self.from_outside(eip["PublicIp"]), 30, "EIP -> a1"), self.a1)
        self.a.associate_address(AllocationId=eip["AllocationId"], InstanceId=self.a2, AllowReassociation=True)
        self.eventually(lambda: self.from_outside(eip["PublicIp"]) == self.a2, 30, "EIP -> a2")
        assoc = self.a.describe_addresses(AllocationIds=[eip["AllocationId"]])["Addresses"][0]["AssociationId"]
        self.a.disassociate_address(AssociationId=assoc)
        self.eventually(lambda: self.from_outside(eip["PublicIp"]) is None, 30, "EIP gone")
        self.a.associate_address(AllocationId=eip["AllocationId"], InstanceId=self.a1)
        self.eventually(lambda: self.from_outside(eip["PublicIp"]) == self.a1, 30, "EIP -> a1 again")
        type(self).eip = eip["PublicIp"]

    def test_3_drift_is_repaired_and_audited(self):
        eip = self.eip
        sh("nft", "add", "element", "ip", "kumo", "eip_dnat", "{ 198.51.100.19 : 10.16.0.99 }")
        sh("nft", "delete", "element", "ip", "kumo", "eip_dnat", "{ %s }" % eip)
        bridge = [l for l in sh("ip", "-o", "link", "show", "type", "bridge").stdout.split() if l.startswith("kbr")][0]
        bridge = bridge.rstrip(":")
        sh("ip", "link", "del", bridge)
        started = time.time()
        self.eventually(lambda: "198.51.100.19" not in sh("nft", "list", "map", "ip", "kumo", "eip_dnat").stdout and
                        eip in sh("nft", "list", "map", "ip", "kumo", "eip_dnat").stdout and
                        sh("ip", "link", "show", bridge, check=False).returncode == 0,
                        3 * RECONCILE_SECONDS + 10, "the repairs")
        print("drift repaired in %.1f s (reconcile period %d s)" % (time.time() - started, RECONCILE_SECONDS))
        self.assertEqual(self.eventually(lambda: self.from_outside(eip), 30, "EIP after the repair"), self.a1)
        audit = self.eventually(lambda: (lambda t: t if "198.51.100.19" in t and bridge in t else None)(
            self.audit("kumo-1")), 30, "the repairs in kumoctl audit")
        self.assertIn("removed DNAT 198.51.100.19 -> 10.16.0.99 nobody asked for", audit)
        self.assertIn("restored DNAT %s" % eip, audit)
        self.assertIn("created link %s (it was missing)" % bridge, audit)

    def test_4_crash_flush_restart_rebuilds_identical(self):
        eip = self.eip
        self.eventually(lambda: self.from_outside(eip) == self.a1, 30, "EIP before the crash")
        before = sh("nft", "list", "table", "ip", "kumo").stdout
        self.k.kill()
        sh("nft", "delete", "table", "ip", "kumo")
        self.assertIsNone(self.from_outside(eip))  # truly gone
        k = type(self).k = self.Kumod(*FLAGS, data_dir=self.k.dir)
        self.eventually(lambda: sh("nft", "list", "table", "ip", "kumo", check=False).stdout == before, 30,
                        "the table rebuilt from the log")
        self.assertEqual(self.eventually(lambda: self.from_outside(eip), 30, "EIP after the restart"), self.a1)
        self.assertIn("table ip kumo was missing; rebuilt it from the log", self.audit("kumo-1"))
        self.assertIs(k, self.k)


def outside(test_file=__file__):
    """Runs `test_file` inside tests/e2e/private_host.sh and checks that no
    kumo bridge leaked onto the machine. The demo guest is built first, where
    register_demo_image() takes it from (tools/mkimage needs apt and the
    network, so it runs before entering the private host)."""
    from test_instances import GUEST_DIR
    r = subprocess.run([os.path.join(ROOT, "tools", "mkimage"), GUEST_DIR], capture_output=True, text=True)
    if r.returncode != 0:
        print("tools/mkimage failed:\n" + r.stdout + r.stderr, file=sys.stderr)
        return 1
    before = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    inner = subprocess.run([os.path.join(HERE, "private_host.sh"), sys.executable, os.path.abspath(test_file)]
                           + sys.argv[1:])
    after = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    if "kbr" in after and "kbr" not in before:
        print("LEAK: a kumo bridge appeared on the machine", file=sys.stderr)
        return 1
    return inner.returncode


if __name__ == "__main__":
    if os.environ.get("KUMO_PRIVATE_HOST") == "1":
        unittest.main()
    else:
        sys.exit(outside())
