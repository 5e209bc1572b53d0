"""End-to-end group sharing of instances (kumod --hypervisor=fake): user A
shares an instance with group G; member B sees, stops and starts it and reads
its console, but cannot terminate it; non-member C gets NotFound; after
unsharing B gets NotFound; a group policy can grant termination.

    KUMO_BIN_DIR=build/bin /usr/bin/python3 tests/e2e/test_sharing.py -v
"""
import json
import os
import tempfile
import unittest
import urllib.error
import urllib.parse
import urllib.request

import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from test_ec2_api import Kumod, client, error_code
from test_iam import iam_client, wait_until
from test_images import fake_bzimage, fake_initramfs

EC2_ALL = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ec2:*", "Resource": "*"}]})


class SharingTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.k = Kumod()
        cls.root = client(cls.k, cls.k.admin_key, cls.k.admin_secret)
        cls.iam = iam_client(cls.k, cls.k.admin_key, cls.k.admin_secret)
        files = tempfile.mkdtemp(prefix="kumo-share-")
        paths = {}
        for name, data in [("vmlinuz", fake_bzimage()), ("initrd.gz", fake_initramfs())]:
            paths[name] = os.path.join(files, name)
            with open(paths[name], "wb") as f:
                f.write(data)
        kernel = cls.root.register_image(Name="share-kernel", ImageLocation=paths["vmlinuz"])["ImageId"]
        ramdisk = cls.root.register_image(Name="share-ramdisk", ImageLocation=paths["initrd.gz"])["ImageId"]
        cls.image = cls.root.register_image(Name="share-machine", KernelId=kernel, RamdiskId=ramdisk)["ImageId"]
        cls.kernel, cls.ramdisk = kernel, ramdisk
        cls.users = {}
        for name in ["a", "b", "c"]:
            cls.iam.create_user(UserName=name)
            cls.iam.put_user_policy(UserName=name, PolicyName="ec2", PolicyDocument=EC2_ALL)
            k = cls.iam.create_access_key(UserName=name)["AccessKey"]
            cls.users[name] = client(cls.k, k["AccessKeyId"], k["SecretAccessKey"])
            cls.users[name + "-creds"] = (k["AccessKeyId"], k["SecretAccessKey"])
        cls.iam.create_group(GroupName="g")
        cls.iam.add_user_to_group(GroupName="g", UserName="a")
        cls.iam.add_user_to_group(GroupName="g", UserName="b")
        cls.iam.create_group(GroupName="other")
        cls.iam.add_user_to_group(GroupName="other", UserName="c")

    @classmethod
    def tearDownClass(cls):
        cls.k.stop()

    def state(self, ec2, iid):
        r = ec2.describe_instances(InstanceIds=[iid])["Reservations"]
        return r[0]["Instances"][0]["State"]["Name"]

    def ids(self, ec2):
        return sorted(i["InstanceId"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"])

    def launch(self, ec2):
        return self.launch_image(ec2, self.image)

    def share(self, who, iid, group, action="KumoShareInstance", id_param="InstanceId"):
        """The API call, signed by botocore's own signer (it is not in the EC2 model).
        `who`: a user name of this test, or (key, secret)."""
        creds = Credentials(*(self.users[who + "-creds"] if isinstance(who, str) else who))
        params = {"Action": action, "Version": "2016-11-15", id_param: iid, "GroupName": group}
        body = urllib.parse.urlencode({k: v for k, v in params.items() if v})
        req = AWSRequest(method="POST", url=self.k.endpoint + "/", data=body,
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
        botocore.auth.SigV4Auth(creds, "ec2", "kumo-1").add_auth(req)
        prepared = req.prepare()
        try:
            with urllib.request.urlopen(urllib.request.Request(prepared.url, data=body.encode(),
                                                               headers=dict(prepared.headers))) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def test_member_sees_and_operates_non_member_does_not(self):
        a, b, c = self.users["a"], self.users["b"], self.users["c"]
        iid = self.launch(a)
        # Before sharing: only A (and the account's root) see it.
        self.assertIn(iid, self.ids(a))
        self.assertIn(iid, self.ids(self.root))
        self.assertNotIn(iid, self.ids(b))
        self.assertEqual(error_code(b.describe_instances, InstanceIds=[iid]), "InvalidInstanceID.NotFound")
        # B cannot even name A's instance; A cannot share with a group it is not in.
        status, body = self.share("b", iid, "g")
        self.assertEqual(status, 400, body)
        self.assertIn("InvalidInstanceID.NotFound", body)
        status, body = self.share("a", iid, "other")
        self.assertEqual(status, 403, body)
        status, body = self.share("a", iid, "g")
        self.assertEqual(status, 200, body)
        # Member B: sees, stops, starts, reboots, reads the console; it cannot unshare (not the owner).
        self.assertIn(iid, self.ids(b))
        status, body = self.share("b", iid, "g", "KumoUnshareInstance")
        self.assertEqual(status, 403, body)
        self.assertIn("UnauthorizedOperation", body)
        b.stop_instances(InstanceIds=[iid])
        wait_until("stopped", lambda: self.state(b, iid) == "stopped", 60)
        b.start_instances(InstanceIds=[iid])
        wait_until("running again", lambda: self.state(b, iid) == "running", 60)
        b.reboot_instances(InstanceIds=[iid])
        self.assertEqual(b.get_console_output(InstanceId=iid)["InstanceId"], iid)
        # ... but may not terminate or modify it.
        self.assertEqual(error_code(b.terminate_instances, InstanceIds=[iid]), "UnauthorizedOperation")
        self.assertEqual(error_code(b.modify_instance_attribute, InstanceId=iid, InstanceType={"Value": "m1.large"}),
                         "UnauthorizedOperation")
        self.assertEqual(self.state(a, iid), "running")
        # Non-member C: NotFound everywhere.
        self.assertNotIn(iid, self.ids(c))
        for call, kwargs in [(c.describe_instances, {"InstanceIds": [iid]}),
                             (c.stop_instances, {"InstanceIds": [iid]}),
                             (c.terminate_instances, {"InstanceIds": [iid]}),
                             (c.get_console_output, {"InstanceId": iid})]:
            self.assertEqual(error_code(call, **kwargs), "InvalidInstanceID.NotFound")
        self.assertEqual(self.state(a, iid), "running")
        # The shares a member can see.
        status, body = self.share("b", "", "", "KumoDescribeInstanceShares")
        self.assertEqual(status, 200, body)
        self.assertIn("<instanceId>%s</instanceId><groupName>g</groupName>" % iid, body)
        self.assertNotIn(iid, self.share("c", "", "", "KumoDescribeInstanceShares")[1])
        # Sharing and unsharing are events on the group.
        audit = self.k.kumoctl("audit", iid).stdout
        self.assertIn("resource_shared", audit)
        status, body = self.share("a", iid, "g", "KumoUnshareInstance")
        self.assertEqual(status, 200, body)
        self.assertEqual(error_code(b.describe_instances, InstanceIds=[iid]), "InvalidInstanceID.NotFound")
        self.assertEqual(error_code(b.stop_instances, InstanceIds=[iid]), "InvalidInstanceID.NotFound")
        self.assertIn("resource_unshared", self.k.kumoctl("audit", iid).stdout)
        # The owner terminates it.
        a.terminate_instances(InstanceIds=[iid])

    def test_group_policy_can_grant_terminate_and_kumoctl_shares(self):
        a, b = self.users["a"], self.users["b"]
        iid = self.launch(a)
        out = self.k.kumoctl("instance", "share", iid, "g")  # as the account's root
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn(iid, self.ids(b))
        self.assertEqual(error_code(b.terminate_instances, InstanceIds=[iid]), "UnauthorizedOperation")
        self.iam.put_group_policy(GroupName="g", PolicyName="terminate", PolicyDocument=json.dumps(
            {"Statement": [{"Effect": "Allow", "Action": "ec2:TerminateInstances",
                            "Resource": "arn:aws:ec2:*:*:instance/*"}]}))
        b.terminate_instances(InstanceIds=[iid])
        wait_until("terminated", lambda: self.state(a, iid) == "terminated", 60)
        self.iam.delete_group_policy(GroupName="g", PolicyName="terminate")
        out = self.k.kumoctl("instance", "unshare", iid, "nope")
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("InvalidGroup.NotFound", out.stderr)

    def test_images_shared_with_a_group(self):
        a, b, c = self.users["a"], self.users["b"], self.users["c"]
        # The root's images are the account's catalogue: every user sees them.
        self.assertIn(self.kernel, [i["ImageId"] for i in b.describe_images()["Images"]])
        img = a.register_image(Name="a-private", KernelId=self.kernel, RamdiskId=self.ramdisk)["ImageId"]
        self.assertIn(img, [i["ImageId"] for i in a.describe_images()["Images"]])
        self.assertIn(img, [i["ImageId"] for i in self.root.describe_images()["Images"]])
        self.assertEqual(error_code(b.describe_images, ImageIds=[img]), "InvalidAMIID.NotFound")
        self.assertEqual(error_code(b.run_instances, ImageId=img, MinCount=1, MaxCount=1), "InvalidAMIID.NotFound")
        status, body = self.share("a", img, "g", "KumoShareImage", "ImageId")
        self.assertEqual(status, 200, body)
        self.assertEqual(b.describe_images(ImageIds=[img])["Images"][0]["ImageId"], img)
        iid = self.launch_image(b, img)  # a member launches the shared image
        self.assertEqual(error_code(b.deregister_image, ImageId=img), "UnauthorizedOperation")
        self.assertEqual(error_code(c.describe_images, ImageIds=[img]), "InvalidAMIID.NotFound")
        status, body = self.share("b", img, "g", "KumoUnshareImage", "ImageId")
        self.assertEqual(status, 403, body)
        status, body = self.share("a", img, "g", "KumoUnshareImage", "ImageId")
        self.assertEqual(status, 200, body)
        self.assertEqual(error_code(b.describe_images, ImageIds=[img]), "InvalidAMIID.NotFound")
        b.terminate_instances(InstanceIds=[iid])  # b launched it: b owns it
        wait_until("terminated", lambda: self.state(b, iid) == "terminated", 60)
        a.deregister_image(ImageId=img)

    def launch_image(self, ec2, image):
        iid = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
        wait_until(iid + " running", lambda: self.state(ec2, iid) == "running", 60)
        return iid

    def test_account_root_sees_everything_and_other_accounts_nothing(self):
        iid = self.launch(self.users["c"])
        self.assertIn(iid, self.ids(self.root))
        self.root.stop_instances(InstanceIds=[iid])
        out = self.k.kumoctl("account", "create", "elsewhere", "--json")
        other = json.loads(out.stdout)
        x = client(self.k, other["access_key_id"], other["secret_access_key"])
        self.assertEqual(error_code(x.describe_instances, InstanceIds=[iid]), "InvalidInstanceID.NotFound")
        status, body = self.share((other["access_key_id"], other["secret_access_key"]), iid, "g")
        self.assertEqual(status, 400, body)
        self.assertIn("InvalidInstanceID.NotFound", body)


if __name__ == "__main__":
    unittest.main()
