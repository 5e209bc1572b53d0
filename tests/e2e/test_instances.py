"""End-to-end compute: a real kumod on libvirt/QEMU (TCG) booting the demo
guest, driven by boto3 and the aws CLI.

Needs root (it starts libvirtd with tools/libvirtd and builds the guest with
tools/mkimage). Run by ctest:
    KUMO_BIN_DIR=build/bin /usr/bin/python3 tests/e2e/test_instances.py -v
"""
import json
import os
import subprocess
import time
import unittest

from test_ec2_api import BIN, REGION, Kumod, client, error_code

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GUEST_DIR = os.path.join(os.path.dirname(os.path.abspath(BIN)), "guest")
AWS = "/usr/bin/aws"


def eventually(fn, timeout=120, what="condition"):
    """Polls fn() until it returns something truthy (no fixed sleeps)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = fn()
        if got:
            return got
        time.sleep(0.25)
    raise AssertionError("timed out after %d s waiting for %s" % (timeout, what))


def virsh(*args):
    return subprocess.run(["virsh", "-c", "qemu:///system"] + list(args), capture_output=True, text=True)


def prepare_guest_tools():
    """Starts libvirtd and builds the demo guest (both idempotent); raises on failure."""
    for tool, args in (("libvirtd", []), ("mkimage", [GUEST_DIR])):
        r = subprocess.run([os.path.join(ROOT, "tools", tool)] + args, capture_output=True, text=True)
        if r.returncode != 0:
            raise AssertionError("tools/%s failed:\n%s%s" % (tool, r.stdout, r.stderr))


def register_demo_image(ec2):
    """Registers the demo guest's kernel, ramdisk and machine image; returns the emi- id."""
    kernel = ec2.register_image(Name="demo-kernel", ImageLocation=os.path.join(GUEST_DIR, "vmlinuz"))
    ramdisk = ec2.register_image(Name="demo-ramdisk", ImageLocation=os.path.join(GUEST_DIR, "initrd.img"))
    return ec2.register_image(Name="demo", KernelId=kernel["ImageId"], RamdiskId=ramdisk["ImageId"])["ImageId"]


class InstancesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        prepare_guest_tools()
        # 4 vCPUs on the one node: capacity errors are reachable; short ACPI grace.
        cls.k = Kumod("--hypervisor=libvirt", "--node-vcpus=4", "--node-memory-mib=4096",
                      "--node-disk-gib=100", "--stop-grace-seconds=20")
        cls.a = client(cls.k, cls.k.admin_key, cls.k.admin_secret)
        out = cls.k.kumoctl("account", "create", "team-b", "--json")
        assert out.returncode == 0, out.stderr
        b = json.loads(out.stdout)
        cls.b = client(cls.k, b["access_key_id"], b["secret_access_key"])
        cls.image = register_demo_image(cls.a)
        cls.launched = []

    @classmethod
    def tearDownClass(cls):
        # Never leave guests behind, whatever failed.
        if cls.launched:
            try:
                cls.a.terminate_instances(InstanceIds=cls.launched)
                eventually(lambda: all(virsh("domstate", i).returncode != 0 for i in cls.launched), 60,
                           "domains to go")
            finally:
                for i in cls.launched:
                    virsh("destroy", i)
                    virsh("undefine", i)
        cls.k.stop()

    # ---- helpers
    def aws(self, *args):
        env = dict(os.environ, AWS_SHARED_CREDENTIALS_FILE=self.k.creds_file, AWS_PROFILE="kumo",
                   AWS_DEFAULT_REGION=REGION, AWS_CONFIG_FILE="/dev/null", AWS_MAX_ATTEMPTS="1")
        r = subprocess.run([AWS, "ec2", "--endpoint-url", self.k.endpoint, "--output", "json"] + list(args),
                           capture_output=True, text=True, env=env, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout) if r.stdout.strip() else {}

    def describe(self, ids, ec2=None):
        res = (ec2 or self.a).describe_instances(InstanceIds=ids)["Reservations"]
        return {i["InstanceId"]: i for r in res for i in r["Instances"]}

    def eventually_or_log(self, fn, timeout, what):
        """eventually(), with kumod's last log lines when it times out."""
        try:
            return eventually(fn, timeout, what)
        except AssertionError as e:
            raise AssertionError("%s\nkumod log:\n%s" % (e, "".join(self.k.log[-40:])))

    def wait_state(self, ids, state, timeout=120):
        self.eventually_or_log(lambda: all(i["State"]["Name"] == state for i in self.describe(ids).values()),
                               timeout, "%s to be %s" % (ids, state))

    def console(self, iid):
        return self.a.get_console_output(InstanceId=iid).get("Output", "")

    def wait_console(self, iid, text, count=1, timeout=120):
        self.eventually_or_log(lambda: self.console(iid).count(text) >= count, timeout,
                               "%r x%d on the console of %s" % (text, count, iid))

    # ---- the lifecycle of real guests
    def test_lifecycle_of_two_real_guests(self):
        out = self.aws("run-instances", "--image-id", self.image, "--count", "2", "--instance-type", "t1.micro",
                       "--tag-specifications", "ResourceType=instance,Tags=[{Key=Name,Value=web}]")
        ids = [i["InstanceId"] for i in out["Instances"]]
        self.launched.extend(ids)
        self.assertEqual(len(ids), 2)
        self.assertEqual({i["State"]["Name"] for i in out["Instances"]}, {"pending"})
        self.wait_state(ids, "running", 60)
        for iid in ids:
            self.assertEqual(virsh("domstate", iid).stdout.strip(), "running")
            self.wait_console(iid, "kumo-guest: booted")
            self.wait_console(iid, "kumo-guest: instance-id " + iid)  # printed just after
        # Filters select exactly these, and another account sees none of them.
        tagged = self.a.describe_instances(Filters=[{"Name": "tag:Name", "Values": ["web"]},
                                                    {"Name": "instance-state-name", "Values": ["running"]}])
        self.assertEqual(sorted(i["InstanceId"] for r in tagged["Reservations"] for i in r["Instances"]),
                         sorted(ids))
        self.assertEqual(self.b.describe_instances()["Reservations"], [])
        self.assertEqual(error_code(self.b.describe_instances, InstanceIds=[ids[0]]), "InvalidInstanceID.NotFound")
        self.assertEqual(error_code(self.b.terminate_instances, InstanceIds=[ids[0]]), "InvalidInstanceID.NotFound")
        self.assertEqual(error_code(self.b.get_console_output, InstanceId=ids[0]), "InvalidInstanceID.NotFound")
        self.assertEqual(error_code(self.a.start_instances, InstanceIds=[ids[0]]), "IncorrectInstanceState")

        first, second = ids
        # Stop: the guest gets an ACPI power-off and shuts itself down.
        stopped = self.a.stop_instances(InstanceIds=[first])["StoppingInstances"][0]
        self.assertEqual(stopped["PreviousState"]["Name"], "running")
        self.assertEqual(stopped["CurrentState"]["Name"], "stopping")
        self.wait_state([first], "stopped", 60)
        self.assertIn("kumo-guest: power-off", self.console(first))
        self.assertEqual(virsh("domstate", first).stdout.strip(), "shut off")
        self.assertEqual(self.describe([first])[first]["StateReason"]["Code"], "Client.UserInitiatedShutdown")
        # Modify while stopped, then start: the same domain boots again.
        self.a.modify_instance_attribute(InstanceId=first, InstanceType={"Value": "m1.small"})
        self.assertEqual(self.a.describe_instance_attribute(InstanceId=first, Attribute="instanceType")
                         ["InstanceType"]["Value"], "m1.small")
        self.a.start_instances(InstanceIds=[first])
        self.wait_state([first], "running", 60)
        self.wait_console(first, "kumo-guest: booted", 2)
        # Reboot: the guest boots a third time without leaving running.
        self.a.reboot_instances(InstanceIds=[first])
        self.wait_console(first, "kumo-guest: booted", 3)
        self.assertEqual(self.describe([first])[first]["State"]["Name"], "running")

        status = self.a.describe_instance_status(InstanceIds=ids)["InstanceStatuses"]
        self.assertEqual({s["InstanceId"]: s["SystemStatus"]["Status"] for s in status}, {first: "ok", second: "ok"})

        # Terminate: no domain and no files are left.
        self.aws("terminate-instances", "--instance-ids", first, second)
        self.wait_state(ids, "terminated", 60)
        for iid in ids:
            self.assertNotEqual(virsh("domstate", iid).returncode, 0, "domain %s still defined" % iid)
            self.assertFalse(os.path.exists(os.path.join(self.k.dir, "instances", iid)))
        self.assertEqual(error_code(self.a.start_instances, InstanceIds=[first]), "IncorrectInstanceState")

    # ---- idempotency and refusals (no guest needs to boot for these)
    def test_client_token_repeats_the_same_launch(self):
        first = self.a.run_instances(ImageId=self.image, MinCount=1, MaxCount=1, InstanceType="t1.micro",
                                     ClientToken="e2e-token-1")
        ids = [i["InstanceId"] for i in first["Instances"]]
        self.launched.extend(ids)
        again = self.a.run_instances(ImageId=self.image, MinCount=1, MaxCount=1, InstanceType="t1.micro",
                                     ClientToken="e2e-token-1")
        self.assertEqual(again["ReservationId"], first["ReservationId"])
        self.assertEqual([i["InstanceId"] for i in again["Instances"]], ids)
        self.assertEqual(error_code(self.a.run_instances, ImageId=self.image, MinCount=2, MaxCount=2,
                                    InstanceType="t1.micro", ClientToken="e2e-token-1"),
                         "IdempotentParameterMismatch")
        # The same token in another account is another token.
        self.assertEqual(error_code(self.b.run_instances, ImageId=self.image, MinCount=1, MaxCount=1,
                                    ClientToken="e2e-token-1"), "InvalidAMIID.NotFound")
        mine = [i for r in self.a.describe_instances()["Reservations"] for i in r["Instances"]
                if i.get("ClientToken") == "e2e-token-1"]
        self.assertEqual([i["InstanceId"] for i in mine], ids)
        self.a.terminate_instances(InstanceIds=ids)
        self.wait_state(ids, "terminated", 60)

    def test_bad_requests_change_nothing(self):
        before = self.a.describe_instances()["Reservations"]
        cases = [
            (dict(ImageId="emi-0000000000000dead", MinCount=1, MaxCount=1), "InvalidAMIID.NotFound"),
            (dict(ImageId=self.image, MinCount=1, MaxCount=1, InstanceType="x9.giant"), "InvalidParameterValue"),
            (dict(ImageId=self.image, MinCount=3, MaxCount=2), "InvalidParameterValue"),
            (dict(ImageId=self.image, MinCount=1, MaxCount=1, KeyName="nope"), "InvalidKeyPair.NotFound"),
            (dict(ImageId=self.image, MinCount=1, MaxCount=1, SecurityGroups=["nope"]), "InvalidGroup.NotFound"),
            (dict(ImageId=self.image, MinCount=1, MaxCount=1, Placement={"AvailabilityZone": "mars-1a"}),
             "InvalidParameterValue"),
            # 4 vCPUs on the node: five c1.medium (2 vCPUs each) never fit.
            (dict(ImageId=self.image, MinCount=5, MaxCount=5, InstanceType="c1.medium"),
             "InsufficientInstanceCapacity"),
        ]
        for kwargs, code in cases:
            self.assertEqual(error_code(self.a.run_instances, **kwargs), code, kwargs)
        self.assertEqual(error_code(self.a.stop_instances, InstanceIds=["i-123"]), "InvalidInstanceID.Malformed")
        self.assertEqual(error_code(self.a.stop_instances, InstanceIds=["i-0123456789abcdef0"]),
                         "InvalidInstanceID.NotFound")
        self.assertEqual(error_code(self.a.describe_instance_types, InstanceTypes=["x9.giant"]), "InvalidInstanceType")
        self.assertEqual(self.a.describe_instances()["Reservations"], before)
        types = self.a.describe_instance_types(InstanceTypes=["m1.small"])["InstanceTypes"]
        self.assertEqual(types[0]["VCpuInfo"]["DefaultVCpus"], 1)
        self.assertEqual(types[0]["MemoryInfo"]["SizeInMiB"], 256)


if __name__ == "__main__":
    unittest.main()
