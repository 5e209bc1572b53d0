"""End-to-end elastic block storage on a REAL guest (libvirt/QEMU TCG, the
demo guest, which prints every block device it sees with its size in bytes
on the serial console): exact sizes on disk and inside the guest, hot-plug
and unplug, a snapshot carrying a marker into a new volume, SIGKILL of
kumod while attaching, and nothing left behind after deleting everything.

Run under the libvirt lock (a kumod removes domains it does not know):
    flock /tmp/kumo-libvirt.lock env KUMO_BIN_DIR=build/bin /usr/bin/python3 tests/e2e/test_volumes_guest.py -v
"""
import os
import re
import shutil
import unittest

from test_ec2_api import Kumod, client, error_code
from test_instances import eventually, prepare_guest_tools, register_demo_image, virsh

GIB = 1 << 30
ZONE = "kumo-1a"
FLAGS = ("--hypervisor=libvirt", "--node-vcpus=4", "--node-memory-mib=2048", "--node-disk-gib=50",
         "--stop-grace-seconds=10")
MARKER = b"kumo-volume-marker-7f3a"


class VolumesOnARealGuestTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        prepare_guest_tools()
        cls.k = Kumod(*FLAGS)
        cls.a = client(cls.k, cls.k.admin_key, cls.k.admin_secret)
        cls.image = register_demo_image(cls.a)
        cls.launched = []

    @classmethod
    def tearDownClass(cls):
        try:
            for i in cls.launched:
                virsh("destroy", i)
                virsh("undefine", i)
        finally:
            if cls.k.proc.poll() is None:
                cls.k.stop()
            else:
                shutil.rmtree(cls.k.dir, ignore_errors=True)

    # ---- helpers
    def log_tail(self):
        return "".join(self.k.log[-40:])

    def until(self, fn, timeout, what):
        try:
            return eventually(fn, timeout, what)
        except AssertionError as e:
            raise AssertionError("%s\nkumod log:\n%s" % (e, self.log_tail()))

    def console(self, iid):
        return self.a.get_console_output(InstanceId=iid).get("Output", "")

    def data_disks(self, iid, size):
        """The guest's console lines for hot-plugged data disks (vdb...) of exactly `size` bytes."""
        return re.findall(r"kumo-guest: disk (vd[b-z]) %d\b" % size, self.console(iid))

    def volume(self, vid):
        return self.a.describe_volumes(VolumeIds=[vid])["Volumes"][0]

    def wait_volume(self, vid, pred, what, timeout=60):
        return self.until(lambda: (lambda v: v if pred(v) else None)(self.volume(vid)), timeout, vid + " " + what)

    def attached(self, vid, timeout=60):
        return self.wait_volume(vid, lambda v: v["Attachments"] and v["Attachments"][0]["State"] == "attached",
                                "attached", timeout)

    def file_of(self, vid):
        return os.path.join(self.k.dir, "volumes", "%s.%s.raw" % (self.account, vid))

    def files(self, folder):
        d = os.path.join(self.k.dir, folder)
        return sorted(os.listdir(d)) if os.path.isdir(d) else []

    def test_volumes_on_a_running_guest(self):
        iid = self.a.run_instances(ImageId=self.image, MinCount=1, MaxCount=1,
                                   InstanceType="t1.micro")["Instances"][0]["InstanceId"]
        self.launched.append(iid)
        self.until(lambda: "kumo-guest: booted" in self.console(iid), 120, "the guest to boot")
        self.account = self.a.describe_instances(InstanceIds=[iid])["Reservations"][0]["OwnerId"]

        # 1 GiB and 3 GiB: exact in Describe and on disk.
        one = self.a.create_volume(Size=1, AvailabilityZone=ZONE)["VolumeId"]
        three = self.a.create_volume(Size=3, AvailabilityZone=ZONE)["VolumeId"]
        for vid, gib in ((one, 1), (three, 3)):
            v = self.wait_volume(vid, lambda v: v["State"] == "available", "available")
            self.assertEqual(v["Size"], gib)
            self.assertEqual(os.stat(self.file_of(vid)).st_size, gib * GIB)

        # Hot-plug: the guest sees a new disk of exactly that size.
        self.a.attach_volume(VolumeId=one, InstanceId=iid, Device="/dev/sdf")
        self.a.attach_volume(VolumeId=three, InstanceId=iid, Device="/dev/sdg")
        for vid in (one, three):
            self.attached(vid)
        self.until(lambda: len(self.data_disks(iid, GIB)) == 1, 60, "a 1 GiB disk in the guest")
        self.until(lambda: len(self.data_disks(iid, 3 * GIB)) == 1, 60, "a 3 GiB disk in the guest")
        dom = virsh("domblklist", iid).stdout
        self.assertIn(self.file_of(one), dom)
        self.assertIn(self.file_of(three), dom)

        # Detach: gone from the domain and from the guest.
        guest_name = self.data_disks(iid, GIB)[0]
        self.a.detach_volume(VolumeId=one)
        self.wait_volume(one, lambda v: v["State"] == "available" and not v["Attachments"], "detached")
        self.assertNotIn(self.file_of(one), virsh("domblklist", iid).stdout)
        self.until(lambda: "kumo-guest: disk-removed " + guest_name in self.console(iid), 60,
                   "the guest to lose " + guest_name)

        # Snapshot with a marker written to the volume's data; a volume from it has the marker.
        with open(self.file_of(one), "r+b") as f:
            f.seek(512 << 20)
            f.write(MARKER)
        snap = self.a.create_snapshot(VolumeId=one, Description="marker")["SnapshotId"]
        # ... and a snapshot of the attached 3 GiB volume (allowed, as on EC2).
        snap3 = self.a.create_snapshot(VolumeId=three)["SnapshotId"]
        for s in (snap, snap3):
            self.until(lambda: self.a.describe_snapshots(SnapshotIds=[s])["Snapshots"][0]["State"] == "completed",
                       120, s + " completed")
        restored = self.a.create_volume(SnapshotId=snap, AvailabilityZone=ZONE)["VolumeId"]
        self.assertEqual(self.wait_volume(restored, lambda v: v["State"] == "available", "available")["Size"], 1)
        with open(self.file_of(restored), "rb") as f:
            f.seek(512 << 20)
            self.assertEqual(f.read(len(MARKER)), MARKER)

        # SIGKILL right after AttachVolume is acknowledged: after the restart it
        # is attached exactly once, and the guest (which kept running) has it.
        self.a.attach_volume(VolumeId=restored, InstanceId=iid, Device="/dev/sdh")
        self.k.kill()
        # On the class: tearDownClass stops this one (an instance attribute left it running).
        self.k = type(self).k = Kumod(*FLAGS, data_dir=self.k.dir)
        self.a = type(self).a = client(self.k, self.k.admin_key, self.k.admin_secret)
        v = self.attached(restored, 90)
        self.assertEqual([x["InstanceId"] for x in v["Attachments"]], [iid])
        self.until(lambda: len(self.data_disks(iid, GIB)) >= 2, 60, "the restored 1 GiB disk in the guest")
        self.assertEqual(virsh("domblklist", iid).stdout.count(self.file_of(restored)), 1)
        self.assertEqual(error_code(self.a.delete_volume, VolumeId=restored), "VolumeInUse")

        # Delete everything: no volume or snapshot file is left.
        self.a.terminate_instances(InstanceIds=[iid])
        for vid in (three, restored):
            self.wait_volume(vid, lambda v: v["State"] == "available", "detached by termination", 90)
        for vid in (one, three, restored):
            self.a.delete_volume(VolumeId=vid)
        for s in (snap, snap3):
            self.a.delete_snapshot(SnapshotId=s)
        self.until(lambda: not self.a.describe_volumes()["Volumes"], 60, "no volumes")
        self.assertEqual(self.a.describe_snapshots(OwnerIds=["self"])["Snapshots"], [])
        self.until(lambda: not self.files("volumes") and not self.files("snapshots"), 60, "no files left")
        verify = self.k.kumoctl("verify")
        self.assertEqual(verify.returncode, 0, verify.stdout + verify.stderr)


if __name__ == "__main__":
    unittest.main()
