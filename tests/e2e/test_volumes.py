"""End-to-end elastic block storage on the fake hypervisor: a real kumod
(real RocksDB, real qemu-img backing files) driven by boto3. Volumes and
snapshots, exact sizes, attach/detach through the node reconciler, bad
requests, isolation between accounts, ids over 1,000 volumes and restarts,
and SIGKILL during create, attach and snapshot.
(Real guests: tests/e2e/test_volumes_guest.py.)
    KUMO_BIN_DIR=build/bin /usr/bin/python3 tests/e2e/test_volumes.py -v
"""
import hashlib
import json
import os
import shutil
import tempfile
import threading
import time
import unittest

from test_ec2_api import Kumod, client, error_code

ZONE = "kumo-1a"
GIB = 1 << 30
FLAGS = ("--hypervisor=fake", "--zones=kumo-1a,kumo-1b")


def eventually(fn, timeout=60, what="condition"):
    """Polls fn() until it returns something truthy (no fixed sleeps)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = fn()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError("timed out after %d s waiting for %s" % (timeout, what))


def new_account(k, name):
    out = k.kumoctl("account", "create", name, "--json")
    assert out.returncode == 0, out.stderr
    b = json.loads(out.stdout)
    return b["account_id"], client(k, b["access_key_id"], b["secret_access_key"])


def sparse_disk(directory, mib=4):
    path = os.path.join(directory, "root.raw")
    with open(path, "wb") as f:
        f.truncate(mib << 20)
    return path


class Storage:
    """Helpers over one kumod and one account's client."""

    def __init__(self, test, k, ec2):
        self.t, self.k, self.ec2 = test, k, ec2

    def volume(self, vid, ec2=None):
        return (ec2 or self.ec2).describe_volumes(VolumeIds=[vid])["Volumes"][0]

    def wait_volume(self, vid, pred, what, timeout=60):
        try:
            return eventually(lambda: (lambda v: v if pred(v) else None)(self.volume(vid)), timeout, what)
        except AssertionError as e:
            raise AssertionError("%s\nkumod log:\n%s" % (e, "".join(self.k.log[-30:])))

    def available(self, vid):
        return self.wait_volume(vid, lambda v: v["State"] == "available", vid + " available")

    def snapshot_done(self, sid):
        return eventually(lambda: (lambda s: s if s["State"] == "completed" else None)(
            self.ec2.describe_snapshots(SnapshotIds=[sid])["Snapshots"][0]), 60, sid + " completed")

    def files(self, folder="volumes"):
        d = os.path.join(self.k.dir, folder)
        return sorted(os.listdir(d)) if os.path.isdir(d) else []

    def file_of(self, account, vid):
        return os.path.join(self.k.dir, "volumes", "%s.%s.raw" % (account, vid))

    def gone(self, vid):
        return not any(v["VolumeId"] == vid for v in self.ec2.describe_volumes()["Volumes"])


DATA_MIB = 384


def copy_under_way(path, timeout=30):
    """Waits (tightly) until `path`.tmp exists while `path` does not: the copy is in progress."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if os.path.exists(path + ".tmp") and not os.path.exists(path):
            return True
        if os.path.exists(path):
            return False
    return False


def head_hash(path, mib=DATA_MIB):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for _ in range(mib // 16):
            h.update(f.read(16 << 20))
    return h.hexdigest()


def admin_account(k):
    listed = k.kumoctl("account", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    return [x for x in json.loads(listed.stdout) if x["admin"]][0]["account_id"]


class VolumesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.k = Kumod(*FLAGS)
        cls.a = client(cls.k, cls.k.admin_key, cls.k.admin_secret)
        cls.a_account = admin_account(cls.k)
        cls.b_account, cls.b = new_account(cls.k, "team-b")
        cls.tmp = tempfile.mkdtemp(prefix="kumo-e2e-volumes-")
        cls.image = cls.a.register_image(Name="root-disk", ImageLocation=sparse_disk(cls.tmp))["ImageId"]
        cls.s = Storage(None, cls.k, cls.a)

    @classmethod
    def tearDownClass(cls):
        verify = cls.k.kumoctl("verify")
        cls.k.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        assert verify.returncode == 0, verify.stdout + verify.stderr

    def run_instance(self, zone=ZONE):
        iid = self.a.run_instances(ImageId=self.image, MinCount=1, MaxCount=1,
                                   Placement={"AvailabilityZone": zone})["Instances"][0]["InstanceId"]
        eventually(lambda: self.a.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
                   ["State"]["Name"] == "running", 60, iid + " running")
        return iid

    def test_create_exact_sizes_describe_filters_and_delete(self):
        tags = [{"ResourceType": "volume", "Tags": [{"Key": "Name", "Value": "data"}]}]
        one = self.a.create_volume(Size=1, AvailabilityZone=ZONE, VolumeType="gp3", TagSpecifications=tags)
        three = self.a.create_volume(Size=3, AvailabilityZone=ZONE)
        self.assertEqual(one["State"], "creating")
        self.assertEqual((one["Size"], one["VolumeType"], one["AvailabilityZone"]), (1, "gp3", ZONE))
        for v, gib in ((one, 1), (three, 3)):
            d = self.s.available(v["VolumeId"])
            self.assertEqual(d["Size"], gib)
            path = self.s.file_of(self.a_account, v["VolumeId"])
            st = os.stat(path)
            self.assertEqual(st.st_size, gib * GIB)            # exactly the size asked for
            self.assertLess(st.st_blocks * 512, 1 << 20)       # sparse
        self.assertEqual(self.s.volume(one["VolumeId"])["Tags"], [{"Key": "Name", "Value": "data"}])
        # CreateTags / DescribeTags / DeleteTags on volumes; another account's is NotFound.
        self.a.create_tags(Resources=[three["VolumeId"]], Tags=[{"Key": "tier", "Value": "cold"}])
        self.assertEqual(self.a.describe_tags(Filters=[{"Name": "resource-id", "Values": [three["VolumeId"]]}])
                         ["Tags"], [{"Key": "tier", "ResourceId": three["VolumeId"], "ResourceType": "volume",
                                     "Value": "cold"}])
        self.assertEqual(error_code(self.b.create_tags, Resources=[three["VolumeId"]],
                                    Tags=[{"Key": "x", "Value": "y"}]), "InvalidVolume.NotFound")
        self.a.delete_tags(Resources=[three["VolumeId"]], Tags=[{"Key": "tier"}])
        self.assertEqual(self.s.volume(three["VolumeId"])["Tags"], [])
        ids = {one["VolumeId"], three["VolumeId"]}
        by = lambda **kw: {v["VolumeId"] for v in self.a.describe_volumes(**kw)["Volumes"]} & ids
        self.assertEqual(by(Filters=[{"Name": "size", "Values": ["3"]}]), {three["VolumeId"]})
        self.assertEqual(by(Filters=[{"Name": "tag:Name", "Values": ["data"]}]), {one["VolumeId"]})
        self.assertEqual(by(Filters=[{"Name": "status", "Values": ["available"]},
                                     {"Name": "availability-zone", "Values": [ZONE]}]), ids)
        st = self.a.describe_volume_status(VolumeIds=[one["VolumeId"]])["VolumeStatuses"][0]
        self.assertEqual(st["VolumeStatus"]["Status"], "ok")
        # Pagination: every volume exactly once over pages of 5.
        seen, token = [], None
        while True:
            kw = {"MaxResults": 5, **({"NextToken": token} if token else {})}
            page = self.a.describe_volumes(**kw)
            seen += [v["VolumeId"] for v in page["Volumes"]]
            token = page.get("NextToken")
            if not token:
                break
        self.assertEqual(len(seen), len(set(seen)))
        self.assertTrue(ids <= set(seen))
        for vid in ids:
            self.a.delete_volume(VolumeId=vid)
        for vid in ids:
            eventually(lambda: self.s.gone(vid), 30, vid + " gone")
            self.assertFalse(os.path.exists(self.s.file_of(self.a_account, vid)))
        self.assertEqual(error_code(self.a.delete_volume, VolumeId=one["VolumeId"]), "InvalidVolume.NotFound")

    def test_modify_volume_grows_the_file_exactly(self):
        vid = self.a.create_volume(Size=1, AvailabilityZone=ZONE)["VolumeId"]
        self.s.available(vid)
        with open(self.s.file_of(self.a_account, vid), "r+b") as f:
            f.seek(100 << 20)
            f.write(b"kept-through-resize")
        self.assertEqual(error_code(self.a.modify_volume, VolumeId=vid, Size=1), "InvalidParameterValue")
        m = self.a.modify_volume(VolumeId=vid, Size=3, VolumeType="gp3")["VolumeModification"]
        self.assertEqual((m["ModificationState"], m["OriginalSize"], m["TargetSize"]), ("modifying", 1, 3))
        v = self.s.wait_volume(vid, lambda v: v["Size"] == 3, "grown to 3 GiB")
        self.assertEqual((v["VolumeType"], v["State"]), ("gp3", "available"))
        path = self.s.file_of(self.a_account, vid)
        self.assertEqual(os.stat(path).st_size, 3 * GIB)
        with open(path, "rb") as f:
            f.seek(100 << 20)
            self.assertEqual(f.read(19), b"kept-through-resize")
        self.assertEqual(error_code(self.a.modify_volume, VolumeId=vid, Size=2), "InvalidParameterValue")
        self.assertEqual(error_code(self.b.modify_volume, VolumeId=vid, Size=5), "InvalidVolume.NotFound")
        self.a.delete_volume(VolumeId=vid)

    def test_client_token_creates_one_volume(self):
        first = self.a.create_volume(Size=2, AvailabilityZone=ZONE, ClientToken="vol-token-1")
        again = self.a.create_volume(Size=2, AvailabilityZone=ZONE, ClientToken="vol-token-1")
        self.assertEqual(first["VolumeId"], again["VolumeId"])
        self.assertEqual(error_code(self.a.create_volume, Size=3, AvailabilityZone=ZONE, ClientToken="vol-token-1"),
                         "IdempotentParameterMismatch")
        self.s.available(first["VolumeId"])
        self.a.delete_volume(VolumeId=first["VolumeId"])
        # A call refused on its input leaves its token unused, as on EC2: a
        # retry with other parameters runs, and is then idempotent itself.
        # (That a refused call changes nothing is test_bad_requests_change_nothing's;
        # other tests' volumes may appear meanwhile.)
        self.assertEqual(error_code(self.a.create_volume, Size=0, AvailabilityZone=ZONE, ClientToken="vol-token-2"),
                         "InvalidParameterValue")
        retried = self.a.create_volume(Size=1, AvailabilityZone=ZONE, ClientToken="vol-token-2")["VolumeId"]
        self.assertEqual(self.a.create_volume(Size=1, AvailabilityZone=ZONE, ClientToken="vol-token-2")["VolumeId"],
                         retried)
        self.assertEqual(error_code(self.a.create_volume, Size=2, AvailabilityZone=ZONE, ClientToken="vol-token-2"),
                         "IdempotentParameterMismatch")
        self.s.available(retried)
        self.a.delete_volume(VolumeId=retried)

    def test_attach_detach_through_the_node(self):
        iid = self.run_instance()
        vid = self.a.create_volume(Size=1, AvailabilityZone=ZONE)["VolumeId"]
        self.s.available(vid)
        att = self.a.attach_volume(VolumeId=vid, InstanceId=iid, Device="/dev/sdf")
        self.assertEqual((att["State"], att["Device"], att["InstanceId"]), ("attaching", "/dev/sdf", iid))
        # attached only once the node reports the disk plugged in
        v = self.s.wait_volume(vid, lambda v: v["Attachments"] and v["Attachments"][0]["State"] == "attached",
                               "attached")
        self.assertEqual(v["State"], "in-use")
        self.assertEqual({x["VolumeId"] for x in self.a.describe_volumes(
            Filters=[{"Name": "attachment.instance-id", "Values": [iid]}])["Volumes"]}, {vid})
        # Bad paths while attached: nothing changes.
        other = self.a.create_volume(Size=1, AvailabilityZone=ZONE)["VolumeId"]
        self.s.available(other)
        self.assertEqual(error_code(self.a.attach_volume, VolumeId=other, InstanceId=iid, Device="/dev/sdf"),
                         "InvalidParameterValue")  # device in use
        self.assertEqual(error_code(self.a.attach_volume, VolumeId=vid, InstanceId=iid, Device="/dev/sdg"),
                         "VolumeInUse")
        self.assertEqual(error_code(self.a.delete_volume, VolumeId=vid), "VolumeInUse")
        self.assertEqual(error_code(self.a.detach_volume, VolumeId=other), "IncorrectState")
        self.assertEqual(self.s.volume(vid)["Attachments"][0]["State"], "attached")
        det = self.a.detach_volume(VolumeId=vid, InstanceId=iid)
        self.assertEqual(det["State"], "detaching")
        self.s.wait_volume(vid, lambda v: v["State"] == "available" and not v["Attachments"], "detached")
        # Terminating an instance detaches its volumes, and deletes the delete-on-termination ones
        # (none here: AttachVolume attaches with DeleteOnTermination false, as on EC2).
        self.a.attach_volume(VolumeId=other, InstanceId=iid, Device="/dev/sdh")
        self.s.wait_volume(other, lambda v: v["Attachments"] and v["Attachments"][0]["State"] == "attached", "attached")
        self.a.terminate_instances(InstanceIds=[iid])
        self.s.wait_volume(other, lambda v: v["State"] == "available", "detached by termination")
        for x in (vid, other):
            self.a.delete_volume(VolumeId=x)

    def test_run_instances_block_device_mappings(self):
        src = self.a.create_volume(Size=1, AvailabilityZone=ZONE)["VolumeId"]
        self.s.available(src)
        snap = self.a.create_snapshot(VolumeId=src)["SnapshotId"]
        self.s.snapshot_done(snap)
        self.assertEqual(error_code(self.a.run_instances, ImageId=self.image, MinCount=1, MaxCount=1,
                                    BlockDeviceMappings=[{"DeviceName": "/dev/sda1", "Ebs": {"VolumeSize": 2}}]),
                         "InvalidParameterValue")
        self.assertEqual(error_code(self.a.run_instances, ImageId=self.image, MinCount=1, MaxCount=1,
                                    BlockDeviceMappings=[{"DeviceName": "/dev/sdf",
                                                          "Ebs": {"SnapshotId": "snap-0123456789abcdef0"}}]),
                         "InvalidSnapshot.NotFound")
        iid = self.a.run_instances(ImageId=self.image, MinCount=1, MaxCount=1, BlockDeviceMappings=[
            {"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 2}},  # DeleteOnTermination defaults to true
            {"DeviceName": "/dev/sdg", "Ebs": {"SnapshotId": snap, "DeleteOnTermination": False}},
        ])["Instances"][0]["InstanceId"]
        mine = lambda: self.a.describe_volumes(Filters=[{"Name": "attachment.instance-id", "Values": [iid]}])["Volumes"]
        vols = eventually(lambda: (lambda v: v if len(v) == 2 and all(
            x["Attachments"][0]["State"] == "attached" for x in v) else None)(mine()), 60, "two attached volumes")
        by_dev = {v["Attachments"][0]["Device"]: v for v in vols}
        self.assertEqual((by_dev["/dev/sdf"]["Size"], by_dev["/dev/sdf"]["Attachments"][0]["DeleteOnTermination"]),
                         (2, True))
        self.assertEqual((by_dev["/dev/sdg"]["SnapshotId"], by_dev["/dev/sdg"]["Attachments"][0]["DeleteOnTermination"]),
                         (snap, False))
        inst = self.a.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
        self.assertEqual(sorted((b["DeviceName"], b["Ebs"]["VolumeId"], b["Ebs"]["Status"])
                                for b in inst["BlockDeviceMappings"]),
                         sorted((d, v["VolumeId"], "attached") for d, v in by_dev.items()))
        # Terminated: the delete-on-termination volume goes (with its file), the other stays.
        self.a.terminate_instances(InstanceIds=[iid])
        gone, kept = by_dev["/dev/sdf"]["VolumeId"], by_dev["/dev/sdg"]["VolumeId"]
        eventually(lambda: self.s.gone(gone), 60, gone + " deleted on termination")
        self.s.wait_volume(kept, lambda v: v["State"] == "available" and not v["Attachments"], "kept, detached")
        eventually(lambda: not os.path.exists(self.s.file_of(self.a_account, gone)), 30, "its file removed")
        for v in (kept, src):
            self.a.delete_volume(VolumeId=v)
        self.a.delete_snapshot(SnapshotId=snap)

    def test_one_volume_never_attached_twice(self):
        first, second = self.run_instance(), self.run_instance()
        vid = self.a.create_volume(Size=1, AvailabilityZone=ZONE)["VolumeId"]
        self.s.available(vid)
        results = []

        def attach(iid):
            results.append(error_code(self.a.attach_volume, VolumeId=vid, InstanceId=iid, Device="/dev/sdf"))
        threads = [threading.Thread(target=attach, args=(i,)) for i in (first, second)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(sorted(results, key=str), sorted([None, "VolumeInUse"], key=str))
        v = self.s.wait_volume(vid, lambda v: v["Attachments"][0]["State"] == "attached", "attached")
        self.assertEqual(len(v["Attachments"]), 1)
        self.a.terminate_instances(InstanceIds=[first, second])
        self.s.wait_volume(vid, lambda v: v["State"] == "available", "detached by termination")
        self.a.delete_volume(VolumeId=vid)

    def test_bad_requests_change_nothing(self):
        # Earlier tests' deletions finish first, so what follows compares like with like.
        eventually(lambda: all(v["State"] != "deleting" for v in self.a.describe_volumes()["Volumes"]), 30,
                   "earlier deletions to finish")
        before = self.s.files()
        count = len(self.a.describe_volumes()["Volumes"])
        missing = "vol-0123456789abcdef0"
        for fn, kw, code in (
                (self.a.create_volume, {"Size": 0, "AvailabilityZone": ZONE}, "InvalidParameterValue"),
                (self.a.create_volume, {"Size": 16385, "AvailabilityZone": ZONE}, "InvalidParameterValue"),
                (self.a.create_volume, {"Size": 1, "AvailabilityZone": "nowhere-1z"}, "InvalidParameterValue"),
                (self.a.create_volume, {"Size": 1, "AvailabilityZone": ZONE, "VolumeType": "floppy"},
                 "InvalidParameterValue"),
                (self.a.create_volume, {"AvailabilityZone": ZONE}, "MissingParameter"),
                (self.a.create_volume, {"AvailabilityZone": ZONE, "SnapshotId": "snap-0123456789abcdef0"},
                 "InvalidSnapshot.NotFound"),
                (self.a.describe_volumes, {"VolumeIds": [missing]}, "InvalidVolume.NotFound"),
                (self.a.describe_volumes, {"VolumeIds": ["vol-nope"]}, "InvalidVolumeID.Malformed"),
                (self.a.describe_volumes, {"Filters": [{"Name": "colour", "Values": ["x"]}]}, "InvalidParameterValue"),
                (self.a.delete_volume, {"VolumeId": missing}, "InvalidVolume.NotFound"),
                (self.a.attach_volume, {"VolumeId": missing, "InstanceId": "i-0123456789abcdef0", "Device": "/dev/sdf"},
                 "InvalidVolume.NotFound"),
                (self.a.detach_volume, {"VolumeId": missing}, "InvalidVolume.NotFound"),
                (self.a.create_snapshot, {"VolumeId": missing}, "InvalidVolume.NotFound"),
                (self.a.delete_snapshot, {"SnapshotId": "snap-0123456789abcdef0"}, "InvalidSnapshot.NotFound"),
        ):
            self.assertEqual(error_code(fn, **kw), code, (fn.__name__, kw))
        vid = self.a.create_volume(Size=1, AvailabilityZone="kumo-1b")["VolumeId"]
        self.s.available(vid)
        iid = self.run_instance()  # in kumo-1a
        self.assertEqual(error_code(self.a.attach_volume, VolumeId=vid, InstanceId=iid, Device="/dev/sdf"),
                         "InvalidVolume.ZoneMismatch")
        self.assertEqual(error_code(self.a.attach_volume, VolumeId=vid, InstanceId=iid, Device="/dev/sda1"),
                         "InvalidParameterValue")
        self.assertEqual(error_code(self.a.attach_volume, VolumeId=vid, InstanceId="i-0123456789abcdef0",
                                    Device="/dev/sdf"), "InvalidInstanceID.NotFound")
        self.assertEqual(self.s.volume(vid)["State"], "available")
        self.assertEqual(self.s.volume(vid)["Attachments"], [])
        self.a.delete_volume(VolumeId=vid)
        eventually(lambda: self.s.gone(vid), 30, "deleted")
        self.a.terminate_instances(InstanceIds=[iid])
        self.assertEqual(len(self.a.describe_volumes()["Volumes"]), count)
        self.assertEqual(self.s.files(), before)

    def test_snapshots_and_volumes_from_them(self):
        vid = self.a.create_volume(Size=1, AvailabilityZone=ZONE)["VolumeId"]
        self.s.available(vid)
        with open(self.s.file_of(self.a_account, vid), "r+b") as f:
            f.seek(300 << 20)
            f.write(b"kumo-snapshot-marker")
        snap = self.a.create_snapshot(VolumeId=vid, Description="before upgrade")
        self.assertEqual(snap["State"], "pending")
        done = self.s.snapshot_done(snap["SnapshotId"])
        self.assertEqual((done["Progress"], done["VolumeSize"], done["OwnerId"]), ("100%", 1, self.a_account))
        # Changing the volume afterwards does not change the snapshot.
        with open(self.s.file_of(self.a_account, vid), "r+b") as f:
            f.seek(300 << 20)
            f.write(b"XXXX")
        self.assertEqual(error_code(self.a.create_volume, SnapshotId=snap["SnapshotId"], Size=0,
                                    AvailabilityZone=ZONE), "InvalidParameterValue")
        restored = self.a.create_volume(SnapshotId=snap["SnapshotId"], Size=2, AvailabilityZone=ZONE)
        self.assertEqual((restored["SnapshotId"], restored["Size"]), (snap["SnapshotId"], 2))
        self.s.available(restored["VolumeId"])
        path = self.s.file_of(self.a_account, restored["VolumeId"])
        self.assertEqual(os.stat(path).st_size, 2 * GIB)
        with open(path, "rb") as f:
            f.seek(300 << 20)
            self.assertEqual(f.read(20), b"kumo-snapshot-marker")
        same = self.a.create_volume(SnapshotId=snap["SnapshotId"], AvailabilityZone=ZONE)  # size from the snapshot
        self.assertEqual(self.s.available(same["VolumeId"])["Size"], 1)
        self.assertEqual({s["SnapshotId"] for s in self.a.describe_snapshots(
            Filters=[{"Name": "volume-id", "Values": [vid]}])["Snapshots"]}, {snap["SnapshotId"]})
        for v in (vid, restored["VolumeId"], same["VolumeId"]):
            self.a.delete_volume(VolumeId=v)
        self.a.delete_snapshot(SnapshotId=snap["SnapshotId"])
        eventually(lambda: not any(f.startswith(self.a_account + "." + snap["SnapshotId"])
                                   for f in self.s.files("snapshots")), 30, "snapshot file gone")
        for v in (vid, restored["VolumeId"], same["VolumeId"]):
            eventually(lambda: self.s.gone(v), 30, v + " gone")
        self.assertFalse(any(vid in f or restored["VolumeId"] in f for f in self.s.files()))

    def test_isolation_between_accounts_until_shared(self):
        vid = self.a.create_volume(Size=1, AvailabilityZone=ZONE)["VolumeId"]
        self.s.available(vid)
        snap = self.a.create_snapshot(VolumeId=vid)["SnapshotId"]
        self.s.snapshot_done(snap)
        # The other account sees nothing and can touch nothing.
        self.assertNotIn(vid, [v["VolumeId"] for v in self.b.describe_volumes()["Volumes"]])
        for fn, kw, code in (
                (self.b.describe_volumes, {"VolumeIds": [vid]}, "InvalidVolume.NotFound"),
                (self.b.delete_volume, {"VolumeId": vid}, "InvalidVolume.NotFound"),
                (self.b.detach_volume, {"VolumeId": vid}, "InvalidVolume.NotFound"),
                (self.b.attach_volume, {"VolumeId": vid, "InstanceId": "i-0123456789abcdef0", "Device": "/dev/sdf"},
                 "InvalidVolume.NotFound"),
                (self.b.create_snapshot, {"VolumeId": vid}, "InvalidVolume.NotFound"),
                (self.b.describe_volume_status, {"VolumeIds": [vid]}, "InvalidVolume.NotFound"),
                (self.b.describe_snapshots, {"SnapshotIds": [snap]}, "InvalidSnapshot.NotFound"),
                (self.b.delete_snapshot, {"SnapshotId": snap}, "InvalidSnapshot.NotFound"),
                (self.b.describe_snapshot_attribute, {"SnapshotId": snap, "Attribute": "createVolumePermission"},
                 "InvalidSnapshot.NotFound"),
                (self.b.modify_snapshot_attribute, {"SnapshotId": snap, "Attribute": "createVolumePermission",
                                                    "OperationType": "add", "UserIds": [self.b_account]},
                 "InvalidSnapshot.NotFound"),
                (self.b.create_volume, {"SnapshotId": snap, "AvailabilityZone": ZONE}, "InvalidSnapshot.NotFound"),
        ):
            self.assertEqual(error_code(fn, **kw), code, (fn.__name__, kw))
        self.assertNotIn(snap, [s["SnapshotId"] for s in self.b.describe_snapshots()["Snapshots"]])
        # Shared explicitly: B sees it and restores it, but still cannot change or delete it.
        self.a.modify_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission",
                                         CreateVolumePermission={"Add": [{"UserId": self.b_account}]})
        perms = self.a.describe_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission")
        self.assertEqual(perms["CreateVolumePermissions"], [{"UserId": self.b_account}])
        self.assertEqual([s["OwnerId"] for s in self.b.describe_snapshots(SnapshotIds=[snap])["Snapshots"]],
                         [self.a_account])
        self.assertEqual(error_code(self.b.delete_snapshot, SnapshotId=snap), "InvalidSnapshot.NotFound")
        self.assertEqual(error_code(self.b.create_tags, Resources=[snap], Tags=[{"Key": "x", "Value": "y"}]),
                         "InvalidSnapshot.NotFound")
        self.a.create_tags(Resources=[snap], Tags=[{"Key": "x", "Value": "y"}])
        self.assertEqual(self.a.describe_snapshots(SnapshotIds=[snap])["Snapshots"][0]["Tags"],
                         [{"Key": "x", "Value": "y"}])
        b_vol = self.b.create_volume(SnapshotId=snap, AvailabilityZone=ZONE)["VolumeId"]
        Storage(self, self.k, self.b).available(b_vol)
        self.assertNotIn(b_vol, [v["VolumeId"] for v in self.a.describe_volumes()["Volumes"]])
        # Unshared again: gone for B (its volume stays its own).
        self.a.modify_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission",
                                         OperationType="remove", UserIds=[self.b_account])
        self.assertEqual(error_code(self.b.describe_snapshots, SnapshotIds=[snap]), "InvalidSnapshot.NotFound")
        self.b.delete_volume(VolumeId=b_vol)
        self.a.delete_volume(VolumeId=vid)
        self.a.delete_snapshot(SnapshotId=snap)


class VolumeIdsAndCrashTest(unittest.TestCase):
    """1,000 volumes over restarts (no id ever repeats), and SIGKILL mid-way
    (right after create and attach are acknowledged; while a snapshot of real
    data is being copied; while a volume is being restored from it)."""

    def setUp(self):
        self.k = Kumod(*FLAGS)
        self.a = client(self.k, self.k.admin_key, self.k.admin_secret)
        self.account = admin_account(self.k)

    def tearDown(self):
        self.k.stop()

    def restart(self, kill):
        if kill:
            self.k.kill()
        else:
            self.k.proc.terminate()
            self.k.proc.wait(timeout=30)
        self.k = Kumod(*FLAGS, data_dir=self.k.dir)
        self.a = client(self.k, self.k.admin_key, self.k.admin_secret)
        return Storage(self, self.k, self.a)

    def test_thousand_volumes_ids_never_repeat(self):
        seen = set()
        for round_ in range(4):  # 4 x 250, a restart (clean, then SIGKILL) between rounds
            ids = [self.a.create_volume(Size=1, AvailabilityZone=ZONE)["VolumeId"] for _ in range(250)]
            self.assertEqual(len(set(ids)), 250)
            self.assertFalse(seen & set(ids), "an id was handed out twice")
            seen |= set(ids)
            s = Storage(self, self.k, self.a)
            eventually(lambda: all(v["State"] == "available" for v in self.a.describe_volumes(VolumeIds=ids)["Volumes"]),
                       120, "250 volumes available")
            for vid in ids[:200]:
                self.a.delete_volume(VolumeId=vid)
            self.restart(kill=round_ % 2 == 1)
        self.assertEqual(len(seen), 1000)
        s = Storage(self, self.k, self.a)
        # Deletions acknowledged before the last SIGKILL finish after the restart.
        eventually(lambda: len(self.a.describe_volumes()["Volumes"]) == 200, 60, "200 volumes left")
        live = {v["VolumeId"] for v in self.a.describe_volumes()["Volumes"]}
        eventually(lambda: len(s.files()) == 200, 60, "200 backing files")
        self.assertEqual({f.split(".")[1] for f in s.files()}, live)
        # Every id is in the log, and a deleted one is never handed out again.
        events = self.k.kumoctl("events", "--stream=volume/", "--json")
        self.assertEqual(events.returncode, 0, events.stderr)
        created = [json.loads(l) for l in events.stdout.splitlines() if '"volume_created"' in l]
        self.assertEqual(len(created), 1000)

    def test_sigkill_during_create_attach_and_snapshot(self):
        image = self.a.register_image(Name="root", ImageLocation=sparse_disk(self.k.dir))["ImageId"]
        iid = self.a.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
        eventually(lambda: self.a.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
                   ["State"]["Name"] == "running", 60, "running")
        ready = self.a.create_volume(Size=2, AvailabilityZone=ZONE)["VolumeId"]
        s = Storage(self, self.k, self.a)
        s.available(ready)
        # Real data, so that copying it takes a while and the kill lands mid-copy.
        with open(s.file_of(self.account, ready), "r+b") as f:
            for _ in range(DATA_MIB // 16):
                f.write(os.urandom(16 << 20))
        # Acknowledged, then killed at once: files half-made or not at all.
        creating = [self.a.create_volume(Size=4, AvailabilityZone=ZONE)["VolumeId"] for _ in range(5)]
        self.a.attach_volume(VolumeId=ready, InstanceId=iid, Device="/dev/sdf")
        snap = self.a.create_snapshot(VolumeId=ready)["SnapshotId"]
        self.assertTrue(copy_under_way(os.path.join(self.k.dir, "snapshots", "%s.%s.raw" % (self.account, snap))),
                        "the snapshot copy was never seen in progress")
        # A stray file no volume owns, and a half-written one, as a crash (or anyone) may leave.
        stray = os.path.join(self.k.dir, "volumes", "%s.vol-00000000000000bad.raw" % self.account)
        with open(stray, "wb") as f:
            f.truncate(GIB)
        os.makedirs(os.path.join(self.k.dir, "snapshots"), exist_ok=True)
        half = os.path.join(self.k.dir, "snapshots", "%s.snap-0000000000000bad0.raw.tmp" % self.account)
        with open(half, "wb") as f:
            f.write(b"half")
        s = self.restart(kill=True)
        for vid in creating:
            v = s.available(vid)
            self.assertEqual(os.stat(s.file_of(self.account, vid)).st_size, 4 * GIB)
        v = s.wait_volume(ready, lambda v: v["Attachments"] and v["Attachments"][0]["State"] == "attached", "attached")
        self.assertEqual([a["InstanceId"] for a in v["Attachments"]], [iid])
        s.snapshot_done(snap)
        snap_file = os.path.join(self.k.dir, "snapshots", "%s.%s.raw" % (self.account, snap))
        self.assertEqual(os.stat(snap_file).st_size, 2 * GIB)
        self.assertEqual(head_hash(snap_file), head_hash(s.file_of(self.account, ready)))
        eventually(lambda: not os.path.exists(stray) and not os.path.exists(half), 30, "stray files removed")
        self.assertIn("repair: removing", "".join(self.k.log))
        # SIGKILL while a volume is being restored from the snapshot.
        restored = self.a.create_volume(SnapshotId=snap, Size=3, AvailabilityZone=ZONE)["VolumeId"]
        self.assertTrue(copy_under_way(s.file_of(self.account, restored)), "the restore was never seen in progress")
        s = self.restart(kill=True)
        self.assertEqual(s.available(restored)["Size"], 3)
        self.assertEqual(os.stat(s.file_of(self.account, restored)).st_size, 3 * GIB)
        self.assertEqual(head_hash(s.file_of(self.account, restored)), head_hash(snap_file))
        eventually(lambda: not any(f.endswith(".tmp") for f in s.files() + s.files("snapshots")), 30, "no .tmp left")
        # Exactly the files of live volumes and snapshots remain.
        live = {v["VolumeId"] for v in self.a.describe_volumes()["Volumes"]}
        self.assertEqual({f.split(".")[1] for f in s.files()}, live)
        self.assertEqual({f.split(".")[1] for f in s.files("snapshots")}, {snap})
        # Everything deleted: no file left.
        self.a.detach_volume(VolumeId=ready)
        s.wait_volume(ready, lambda v: v["State"] == "available", "detached")
        for vid in live:
            self.a.delete_volume(VolumeId=vid)
        self.a.delete_snapshot(SnapshotId=snap)
        eventually(lambda: not s.files() and not s.files("snapshots"), 30, "no files left")
        verify = self.k.kumoctl("verify")
        self.assertEqual(verify.returncode, 0, verify.stdout + verify.stderr)


if __name__ == "__main__":
    unittest.main()
