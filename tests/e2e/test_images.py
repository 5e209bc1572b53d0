"""End-to-end: images (RegisterImage, DescribeImages, DeregisterImage,
Describe/ModifyImageAttribute) on a real kumod, driven by boto3 and the aws CLI.

Run by ctest with Debian's python3:
    KUMO_BIN_DIR=build/bin /usr/bin/python3 tests/e2e/test_images.py -v
"""
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import threading
import unittest
from unittest import mock

from botocore.exceptions import ClientError

from test_ec2_api import REGION, Kumod, client, error_code


def fake_bzimage(size=8192):
    """What a Linux bzImage looks like to kumo: the "HdrS" magic at 0x202."""
    data = bytearray(size)
    data[0x202:0x206] = b"HdrS"
    data[0x300:0x310] = os.urandom(16)  # each test's kernel is a different file
    return bytes(data)


def fake_initramfs():
    return gzip.compress(b"070701" + b"0" * 104 + b"TRAILER!!!\0" + os.urandom(16))


class ImagesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.k = Kumod()
        cls.a = client(cls.k, cls.k.admin_key, cls.k.admin_secret)
        listed = cls.k.kumoctl("account", "list", "--json")
        assert listed.returncode == 0, listed.stderr
        cls.a_account = [x for x in json.loads(listed.stdout) if x["admin"]][0]["account_id"]
        cls.others = {}
        for name in ("team-b", "team-c"):
            out = cls.k.kumoctl("account", "create", name, "--json")
            assert out.returncode == 0, out.stderr
            created = json.loads(out.stdout)
            cls.others[name] = (created["account_id"],
                                client(cls.k, created["access_key_id"], created["secret_access_key"]),
                                created)
        cls.b_account, cls.b, cls.b_keys = cls.others["team-b"]
        cls.c_account, cls.c, _ = cls.others["team-c"]
        cls.files = tempfile.mkdtemp(prefix="kumo-e2e-images-")
        cls.store = os.path.join(cls.k.dir, "images")

    @classmethod
    def tearDownClass(cls):
        verify = cls.k.kumoctl("verify")
        cls.k.stop()
        shutil.rmtree(cls.files, ignore_errors=True)
        assert verify.returncode == 0, verify.stdout + verify.stderr

    # ---- helpers
    def write(self, name, data):
        path = os.path.join(self.files, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def sparse_disk(self, name, mib=4):
        path = os.path.join(self.files, name)
        with open(path, "wb") as f:
            f.seek(1 << 20)
            f.write(b"kumo disk " + os.urandom(16))
            f.truncate(mib << 20)
        return path

    def register_boot_pair(self, prefix, who=None):
        """A kernel and a ramdisk registered by the admin (who may read host files)."""
        kernel = self.a.register_image(Name=prefix + "-kernel",
                                       ImageLocation=self.write(prefix + "-vmlinuz", fake_bzimage()))["ImageId"]
        ramdisk = self.a.register_image(Name=prefix + "-ramdisk",
                                        ImageLocation="file://" + self.write(prefix + "-initrd.gz", fake_initramfs()))["ImageId"]
        return kernel, ramdisk

    def image(self, ec2, image_id):
        images = ec2.describe_images(ImageIds=[image_id])["Images"]
        self.assertEqual(len(images), 1)
        return images[0]

    def ids(self, ec2, **kwargs):
        return sorted(i["ImageId"] for i in ec2.describe_images(**kwargs)["Images"])

    def store_entries(self):
        return sorted(os.listdir(self.store)) if os.path.isdir(self.store) else []

    def image_events(self):
        out = self.k.kumoctl("events", "--stream=image/", "--json")
        self.assertEqual(out.returncode, 0, out.stderr)
        return [line for line in out.stdout.splitlines() if line.strip()]

    def aws(self, *args, keys=None):
        """The real aws CLI v2 (Debian's), signed with the admin's or another account's keys."""
        env = dict(os.environ, AWS_ACCESS_KEY_ID=keys[0] if keys else self.k.admin_key,
                   AWS_SECRET_ACCESS_KEY=keys[1] if keys else self.k.admin_secret,
                   AWS_DEFAULT_REGION=REGION, AWS_SHARED_CREDENTIALS_FILE="/dev/null",
                   AWS_CONFIG_FILE="/dev/null", AWS_PAGER="")
        out = subprocess.run(["/usr/bin/aws", "--endpoint-url", self.k.endpoint, "--output", "json", "ec2"] + list(args),
                             capture_output=True, text=True, env=env, timeout=120)
        return out

    # ---- registration and description
    def test_register_kernel_ramdisk_machine_and_disk(self):
        kernel_bytes = fake_bzimage()
        kernel = self.a.register_image(Name="e2e-kernel", Description="a kernel",
                                       ImageLocation=self.write("vmlinuz", kernel_bytes))["ImageId"]
        ramdisk = self.a.register_image(Name="e2e-ramdisk",
                                        ImageLocation="file://" + self.write("initrd.gz", fake_initramfs()))["ImageId"]
        self.assertRegex(kernel, r"^eki-[0-9a-f]{17}$")
        self.assertRegex(ramdisk, r"^eri-[0-9a-f]{17}$")
        demo = self.a.register_image(Name="e2e-demo", Description="busybox demo", KernelId=kernel,
                                     RamdiskId=ramdisk)["ImageId"]
        self.assertRegex(demo, r"^emi-[0-9a-f]{17}$")
        disk_path = self.sparse_disk("disk.raw")
        # The aws CLI's register-image works the same way.
        out = self.aws("register-image", "--name", "e2e-disk", "--image-location", disk_path,
                       "--root-device-name", "/dev/sda")
        self.assertEqual(out.returncode, 0, out.stderr)
        disk = json.loads(out.stdout)["ImageId"]
        self.assertRegex(disk, r"^emi-[0-9a-f]{17}$")

        got = self.image(self.a, demo)
        self.assertEqual(got["ImageType"], "machine")
        self.assertEqual(got["State"], "available")
        self.assertEqual(got["OwnerId"], self.a_account)
        self.assertFalse(got["Public"])
        self.assertEqual(got["Architecture"], "x86_64")
        self.assertEqual((got["KernelId"], got["RamdiskId"]), (kernel, ramdisk))
        self.assertEqual((got["Name"], got["Description"]), ("e2e-demo", "busybox demo"))
        self.assertEqual((got["RootDeviceType"], got["RootDeviceName"]), ("instance-store", "/dev/sda1"))
        self.assertEqual(got["VirtualizationType"], "hvm")
        self.assertEqual(got["ImageLocation"], self.a_account + "/e2e-demo")
        self.assertRegex(got["CreationDate"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        self.assertEqual(got["Tags"], [])  # botocore 1.29's RegisterImage has no TagSpecifications
        self.assertEqual(got["BlockDeviceMappings"], [])
        k = self.image(self.a, kernel)
        self.assertEqual(k["ImageType"], "kernel")
        self.assertNotIn("KernelId", k)
        self.assertNotIn("RootDeviceName", k)
        self.assertEqual(self.image(self.a, ramdisk)["ImageType"], "ramdisk")
        self.assertEqual(self.image(self.a, disk)["RootDeviceName"], "/dev/sda")

        # The files were copied into the store: the same bytes, the disk still sparse.
        with open(os.path.join(self.store, kernel, "kernel"), "rb") as f:
            self.assertEqual(hashlib.sha256(f.read()).digest(), hashlib.sha256(kernel_bytes).digest())
        stored_disk = os.path.join(self.store, disk, "disk")
        self.assertEqual(os.path.getsize(stored_disk), 4 << 20)
        self.assertLess(os.stat(stored_disk).st_blocks * 512, 2 << 20)
        self.assertFalse(os.path.exists(os.path.join(self.store, demo)))  # boots the kernel's and ramdisk's files
        # The log records what was copied, from where, with its hash.
        registered = [json.loads(line) for line in self.image_events() if disk in line]
        self.assertTrue(any(disk_path in json.dumps(e) for e in registered), registered)

        # Filters, owners, executable-by.
        mine = [kernel, ramdisk, demo, disk]
        self.assertEqual(self.ids(self.a, Filters=[{"Name": "image-type", "Values": ["kernel"]},
                                                   {"Name": "name", "Values": ["e2e-k*"]}]), [kernel])
        self.assertEqual(self.ids(self.a, Filters=[{"Name": "name", "Values": ["e2e-d*"]}]), sorted([demo, disk]))
        self.assertEqual(self.ids(self.a, ImageIds=mine, Filters=[{"Name": "tag:role", "Values": ["demo"]}]), [])
        self.assertEqual(self.ids(self.a, Filters=[{"Name": "kernel-id", "Values": [kernel]}]), [demo])
        self.assertEqual(self.ids(self.a, Filters=[{"Name": "ramdisk-id", "Values": [ramdisk]}]), [demo])
        self.assertEqual(self.ids(self.a, ImageIds=mine, Filters=[{"Name": "image-type", "Values": ["machine"]}]),
                         sorted([demo, disk]))
        for name, value in (("state", "available"), ("is-public", "false"), ("architecture", "x86_64"),
                            ("owner-id", self.a_account), ("image-id", "e*")):
            self.assertEqual(self.ids(self.a, ImageIds=mine, Filters=[{"Name": name, "Values": [value]}]),
                             sorted(mine), name)
        self.assertEqual(self.ids(self.a, ImageIds=mine, Filters=[{"Name": "is-public", "Values": ["true"]}]), [])
        self.assertEqual(self.ids(self.a, ImageIds=mine, Owners=["self"]), sorted(mine))
        self.assertEqual(self.ids(self.a, ImageIds=mine, Owners=[self.a_account]), sorted(mine))
        self.assertEqual(self.ids(self.a, ImageIds=mine, Owners=["amazon"]), [])
        self.assertEqual(self.ids(self.a, ImageIds=mine, ExecutableUsers=["self"]), sorted(mine))
        self.assertEqual(self.ids(self.a, ImageIds=mine, ExecutableUsers=["all"]), [])
        self.assertEqual(error_code(self.a.describe_images, Filters=[{"Name": "colour", "Values": ["x"]}]),
                         "InvalidParameterValue")
        self.assertEqual(error_code(self.a.describe_images, ImageIds=["ami-12345678"]), "InvalidAMIID.Malformed")
        self.assertEqual(error_code(self.a.describe_images, ImageIds=["emi-00000000000000000"]), "InvalidAMIID.NotFound")
        self.assertEqual(error_code(self.a.describe_images, Owners=["nobody"]), "InvalidUserID.Malformed")
        out = self.aws("describe-images", "--owners", "self", "--filters", "Name=image-type,Values=ramdisk",
                       "Name=name,Values=e2e-ramdisk")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual([i["ImageId"] for i in json.loads(out.stdout)["Images"]], [ramdisk])

        attr = self.a.describe_image_attribute(ImageId=demo, Attribute="description")
        self.assertEqual(attr["Description"], {"Value": "busybox demo"})
        self.assertEqual(self.a.describe_image_attribute(ImageId=demo, Attribute="kernel")["KernelId"],
                         {"Value": kernel})
        self.assertEqual(self.a.describe_image_attribute(ImageId=demo, Attribute="launchPermission")["LaunchPermissions"],
                         [])
        self.assertEqual(error_code(self.a.describe_image_attribute, ImageId=demo, Attribute="colour"),
                         "InvalidParameterValue")

        # A kernel that a machine image boots stays until that image goes.
        self.assertEqual(error_code(self.a.deregister_image, ImageId=kernel), "DependencyViolation")
        for image_id in (demo, disk, kernel, ramdisk):
            self.a.deregister_image(ImageId=image_id)

    def test_refused_registrations_leave_nothing_behind(self):
        kernel, ramdisk = self.register_boot_pair("e2e-refused")
        taken = self.a.register_image(Name="e2e-taken", KernelId=kernel, RamdiskId=ramdisk)["ImageId"]
        before_events, before_files = len(self.image_events()), self.store_entries()

        def refused(ec2, **kwargs):
            code = error_code(ec2.register_image, **kwargs)
            self.assertEqual(len(self.image_events()), before_events, kwargs)
            self.assertEqual(self.store_entries(), before_files, kwargs)
            return code

        self.assertEqual(refused(self.a, Name="e2e-taken", KernelId=kernel, RamdiskId=ramdisk),
                         "InvalidAMIName.Duplicate")
        self.assertEqual(refused(self.a, Name="e2e-taken", ImageLocation=self.sparse_disk("taken.raw")),
                         "InvalidAMIName.Duplicate")
        missing = os.path.join(self.files, "missing.img")
        with self.assertRaises(ClientError) as e:
            self.a.register_image(Name="e2e-missing", ImageLocation=missing)
        error = e.exception.response["Error"]
        self.assertEqual(error["Code"], "InvalidParameterValue")
        self.assertIn("ImageLocation", error["Message"])
        self.assertIn(missing, error["Message"])
        self.assertEqual(len(self.image_events()), before_events)
        self.assertEqual(refused(self.a, Name="e2e-rel", ImageLocation="relative/disk.img"), "InvalidParameterValue")
        self.assertEqual(refused(self.a, Name="e2e-dir", ImageLocation=self.files), "InvalidParameterValue")
        broken = self.write("broken.qcow2", b"QFI\xfb\x00\x00\x00\x03" + b"\xff" * 1000)
        self.assertEqual(refused(self.a, Name="e2e-broken", ImageLocation=broken), "InvalidParameterValue")
        # Wrong kinds and unknown references.
        self.assertEqual(refused(self.a, Name="e2e-swap", KernelId=ramdisk, RamdiskId=kernel), "InvalidParameterValue")
        self.assertEqual(refused(self.a, Name="e2e-unknown", KernelId="eki-00000000000000000", RamdiskId=ramdisk),
                         "InvalidAMIID.NotFound")
        self.assertEqual(refused(self.a, Name="e2e-half", KernelId=kernel), "MissingParameter")
        self.assertEqual(refused(self.a, Name="e2e-kernel-with-kernel", KernelId=kernel, RamdiskId=ramdisk,
                                 ImageLocation=self.write("k2", fake_bzimage())), "InvalidParameterCombination")
        self.assertEqual(refused(self.a, Name="x", KernelId=kernel, RamdiskId=ramdisk), "InvalidAMIName.Malformed")
        self.assertEqual(refused(self.a, Name="e2e-arm", KernelId=kernel, RamdiskId=ramdisk, Architecture="arm64"),
                         "InvalidParameterValue")
        self.assertEqual(refused(self.a, Name="e2e-ebs", KernelId=kernel, RamdiskId=ramdisk, BlockDeviceMappings=[
            {"DeviceName": "/dev/sda1", "Ebs": {"SnapshotId": "snap-1"}}]), "InvalidParameterValue")
        # Only the cloud's admin may have the cloud read a host path.
        self.assertEqual(refused(self.b, Name="e2e-b-disk", ImageLocation=self.sparse_disk("b.raw")),
                         "UnauthorizedOperation")
        self.assertEqual(refused(self.b, Name="e2e-b-passwd", ImageLocation="/etc/shadow"), "UnauthorizedOperation")
        # ... and another account cannot boot the admin's private kernel.
        self.assertEqual(refused(self.b, Name="e2e-b-demo", KernelId=kernel, RamdiskId=ramdisk),
                         "InvalidAMIID.NotFound")
        for image_id in (taken, kernel, ramdisk):
            self.a.deregister_image(ImageId=image_id)

    def test_concurrent_registrations_of_one_name(self):
        kernel, ramdisk = self.register_boot_pair("e2e-race")
        disks = [self.sparse_disk("race-%d.raw" % i) for i in range(4)]
        before = self.store_entries()
        results = [None] * 12

        def register(i):
            ec2 = client(self.k, self.k.admin_key, self.k.admin_secret)
            kwargs = {"ImageLocation": disks[i % 4]} if i % 3 == 0 else {"KernelId": kernel, "RamdiskId": ramdisk}
            try:
                results[i] = ec2.register_image(Name="e2e-race", **kwargs)["ImageId"]
            except ClientError as e:
                results[i] = e.response["Error"]["Code"]

        threads = [threading.Thread(target=register, args=(i,)) for i in range(len(results))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        winners = [r for r in results if r.startswith("emi-")]
        self.assertEqual(len(winners), 1, results)
        self.assertEqual(sorted(set(results) - set(winners)), ["InvalidAMIName.Duplicate"], results)
        self.assertEqual(self.ids(self.a, Filters=[{"Name": "name", "Values": ["e2e-race"]}]), winners)
        # Only the winner's file (if it had one) is in the store.
        self.assertLessEqual(len(set(self.store_entries()) - set(before)), 1)
        for image_id in winners + [kernel, ramdisk]:
            self.a.deregister_image(ImageId=image_id)
        self.assertEqual(self.store_entries(), sorted(set(before) - {kernel, ramdisk}))

    def test_launch_permissions_share_and_publish(self):
        kernel, ramdisk = self.register_boot_pair("e2e-share")
        image = self.a.register_image(Name="e2e-shared", KernelId=kernel, RamdiskId=ramdisk)["ImageId"]

        # Private: another account sees nothing of it and touches nothing.
        self.assertEqual(error_code(self.b.describe_images, ImageIds=[image]), "InvalidAMIID.NotFound")
        self.assertNotIn(image, self.ids(self.b))
        self.assertEqual(error_code(self.b.deregister_image, ImageId=image), "InvalidAMIID.NotFound")
        self.assertEqual(error_code(self.b.modify_image_attribute, ImageId=image,
                                    LaunchPermission={"Add": [{"Group": "all"}]}), "InvalidAMIID.NotFound")

        # Shared with B: B sees and may launch it; C still does not; only A administers it.
        self.a.modify_image_attribute(ImageId=image, LaunchPermission={"Add": [{"UserId": self.b_account}]})
        got = self.image(self.b, image)
        self.assertEqual((got["OwnerId"], got["Public"]), (self.a_account, False))
        self.assertIn(image, self.ids(self.b, ExecutableUsers=["self"]))
        self.assertNotIn(image, self.ids(self.b, Owners=["self"]))
        self.assertIn(image, self.ids(self.b, Owners=[self.a_account]))
        self.assertEqual(self.ids(self.a, ExecutableUsers=[self.b_account]), [image])
        self.assertEqual(error_code(self.c.describe_images, ImageIds=[image]), "InvalidAMIID.NotFound")
        self.assertEqual(error_code(self.b.deregister_image, ImageId=image), "AuthFailure")
        self.assertEqual(error_code(self.b.describe_image_attribute, ImageId=image, Attribute="launchPermission"),
                         "AuthFailure")
        self.assertEqual(error_code(self.b.modify_image_attribute, ImageId=image,
                                    LaunchPermission={"Add": [{"UserId": self.c_account}]}), "AuthFailure")
        self.assertEqual(self.a.describe_image_attribute(ImageId=image, Attribute="launchPermission")["LaunchPermissions"],
                         [{"UserId": self.b_account}])

        # The aws CLI's other form: --operation-type with --user-ids (UserId.N).
        for image_id in (kernel, ramdisk):
            out = self.aws("modify-image-attribute", "--image-id", image_id, "--attribute", "launchPermission",
                           "--operation-type", "add", "--user-ids", self.b_account)
            self.assertEqual(out.returncode, 0, out.stderr)
        # Now B may build its own machine image from A's kernel and ramdisk.
        theirs = self.b.register_image(Name="e2e-b-demo", KernelId=kernel, RamdiskId=ramdisk)["ImageId"]
        self.assertEqual(self.image(self.b, theirs)["OwnerId"], self.b_account)
        self.assertNotIn(theirs, self.ids(self.a))
        # A's kernel is booted by B's image: it stays until B's image goes.
        self.assertEqual(error_code(self.a.deregister_image, ImageId=kernel), "DependencyViolation")
        self.b.deregister_image(ImageId=theirs)

        # Removing the share hides it again.
        self.a.modify_image_attribute(ImageId=image, LaunchPermission={"Remove": [{"UserId": self.b_account}]})
        self.assertEqual(error_code(self.b.describe_images, ImageIds=[image]), "InvalidAMIID.NotFound")

        # Public: everyone sees it, through the group "all".
        self.a.modify_image_attribute(ImageId=image, LaunchPermission={"Add": [{"Group": "all"}]})
        for ec2 in (self.b, self.c):
            self.assertTrue(self.image(ec2, image)["Public"])
            self.assertIn(image, self.ids(ec2, ExecutableUsers=["all"]))
            self.assertIn(image, self.ids(ec2, Filters=[{"Name": "is-public", "Values": ["true"]}]))
        self.assertEqual(self.a.describe_image_attribute(ImageId=image, Attribute="launchPermission")["LaunchPermissions"],
                         [{"Group": "all"}])
        out = self.aws("modify-image-attribute", "--image-id", image, "--launch-permission",
                       "Remove=[{Group=all}]")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(error_code(self.c.describe_images, ImageIds=[image]), "InvalidAMIID.NotFound")

        # Bad permissions are refused.
        self.assertEqual(error_code(self.a.modify_image_attribute, ImageId=image,
                                    LaunchPermission={"Add": [{"Group": "everyone"}]}), "InvalidAMIAttributeItemValue")
        self.assertEqual(error_code(self.a.modify_image_attribute, ImageId=image,
                                    LaunchPermission={"Add": [{"UserId": "12345"}]}), "InvalidAMIAttributeItemValue")
        self.assertEqual(error_code(self.a.modify_image_attribute, ImageId=image, Attribute="description",
                                    Description={"Value": "x"}), "InvalidParameterValue")
        self.assertEqual(error_code(self.a.modify_image_attribute, ImageId=image), "MissingParameter")
        for image_id in (image, kernel, ramdisk):
            self.a.deregister_image(ImageId=image_id)

    def test_deregister_removes_image_and_files(self):
        disk = self.a.register_image(Name="e2e-gone", ImageLocation=self.sparse_disk("gone.raw"))["ImageId"]
        self.assertTrue(os.path.isfile(os.path.join(self.store, disk, "disk")))
        self.a.deregister_image(ImageId=disk)
        self.assertEqual(error_code(self.a.describe_images, ImageIds=[disk]), "InvalidAMIID.NotFound")
        self.assertNotIn(disk, self.ids(self.a))
        self.assertFalse(os.path.exists(os.path.join(self.store, disk)))
        self.assertEqual(error_code(self.a.deregister_image, ImageId=disk), "InvalidAMIID.NotFound")
        self.assertEqual(error_code(self.a.deregister_image, ImageId="nope"), "InvalidAMIID.Malformed")
        self.assertEqual(error_code(self.a.deregister_image, ImageId=disk, DryRun=True), "DryRunOperation")
        # The name is free again; the id never comes back.
        again = self.a.register_image(Name="e2e-gone", ImageLocation=self.sparse_disk("gone2.raw"))["ImageId"]
        self.assertNotEqual(again, disk)
        self.a.deregister_image(ImageId=again)
        self.assertTrue(any(disk in line and "image_deregistered" in line for line in self.image_events()))

    def test_images_survive_a_restart(self):
        kernel, ramdisk = self.register_boot_pair("e2e-restart")
        image = self.a.register_image(Name="e2e-restart", KernelId=kernel, RamdiskId=ramdisk)["ImageId"]
        self.a.modify_image_attribute(ImageId=image, LaunchPermission={"Add": [{"UserId": self.c_account}]})
        # Stop kumod (keeping its data dir) and start a new one on the same dir.
        self.k.proc.terminate()
        self.k.proc.wait(timeout=30)
        self.k.proc.stdout.close()
        with mock.patch("tempfile.mkdtemp", return_value=self.k.dir):
            restarted = Kumod()
        cls = type(self)
        cls.k = restarted
        cls.a = client(restarted, restarted.admin_key, restarted.admin_secret)
        for name, (_, _, keys) in self.others.items():
            setattr(cls, "b" if name == "team-b" else "c",
                    client(restarted, keys["access_key_id"], keys["secret_access_key"]))
        got = self.image(self.c, image)
        self.assertEqual((got["KernelId"], got["RamdiskId"]), (kernel, ramdisk))
        self.assertEqual(error_code(self.a.register_image, Name="e2e-restart", KernelId=kernel, RamdiskId=ramdisk),
                         "InvalidAMIName.Duplicate")
        for image_id in (image, kernel, ramdisk):
            self.a.deregister_image(ImageId=image_id)


if __name__ == "__main__":
    unittest.main()
