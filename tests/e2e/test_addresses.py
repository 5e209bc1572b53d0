"""End-to-end addressing through boto3 and the aws CLI, on the network
ledger alone (kumod --network=ledger, fake hypervisor: no kernel objects).
Private IPs per security-group segment, auto-assigned public IPs, elastic IPs
(allocate, associate, move, disassociate, release), metadata options, the
errors EC2 gives, isolation between accounts, and SIGKILL + restart giving
back exactly the acknowledged addresses.

    env KUMO_BIN_DIR=build/bin /usr/bin/python3 tests/e2e/test_addresses.py -v
"""
import ipaddress
import json
import os
import shutil
import subprocess
import tempfile
import unittest

from test_ec2_api import Kumod, client, error_code
from test_volumes import eventually, new_account, sparse_disk

POOL = ("198.51.100.10", "198.51.100.15")  # six public addresses
FLAGS = ("--hypervisor=fake", "--network=ledger", "--net-private=10.16.0.0/16", "--net-vni=1000-1009",
         "--net-public-pool=%s-%s" % POOL, "--net-auto-public-ip=true", "--net-reconcile-seconds=1")


def in_pool(ip):
    return ipaddress.ip_address(POOL[0]) <= ipaddress.ip_address(ip) <= ipaddress.ip_address(POOL[1])


class AddressesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.k = Kumod(*FLAGS)
        cls.a = client(cls.k, cls.k.admin_key, cls.k.admin_secret)
        cls.b_account, cls.b = new_account(cls.k, "team-b")
        cls.tmp = tempfile.mkdtemp(prefix="kumo-e2e-addresses-")
        disk = sparse_disk(cls.tmp)
        cls.image_a = cls.image_b = cls.a.register_image(Name="disk", ImageLocation=disk)["ImageId"]
        cls.a.modify_image_attribute(ImageId=cls.image_a, LaunchPermission={"Add": [{"UserId": cls.b_account}]})

    @classmethod
    def tearDownClass(cls):
        verify = cls.k.kumoctl("verify")
        cls.k.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        assert verify.returncode == 0, verify.stdout + verify.stderr

    def instance(self, ec2, iid):
        return ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]

    def launch(self, ec2, image, count=1, **kw):
        out = ec2.run_instances(ImageId=image, MinCount=count, MaxCount=count, **kw)["Instances"]
        return [i["InstanceId"] for i in out], out

    def addresses(self, ec2, **kw):
        return {a["AllocationId"]: a for a in ec2.describe_addresses(**kw)["Addresses"]}

    def test_1_private_and_auto_public_addresses(self):
        ids, launched = self.launch(self.a, self.image_a, 2)
        # RunInstances already answers with the addresses (they are in the log before the instances).
        private = [i["PrivateIpAddress"] for i in launched]
        self.assertEqual(len(set(private)), 2)
        for i in launched:
            self.assertTrue(in_pool(i["PublicIpAddress"]), i)
            nic = i["NetworkInterfaces"][0]
            self.assertTrue(nic["MacAddress"].startswith("02:"), nic)  # locally administered
            self.assertEqual(nic["PrivateIpAddress"], i["PrivateIpAddress"])
            self.assertEqual(i["MetadataOptions"]["HttpTokens"], "optional")
        [b_id], [b_inst] = self.launch(self.b, self.image_b)
        net_a = ipaddress.ip_network(private[0] + "/24", strict=False)
        self.assertIn(ipaddress.ip_address(private[1]), net_a)  # one group, one segment
        self.assertNotIn(ipaddress.ip_address(b_inst["PrivateIpAddress"]), net_a)  # another account's group
        # Describe shows the same, and filters on addresses.
        self.assertEqual(self.instance(self.a, ids[0])["PrivateIpAddress"], private[0])
        found = self.a.describe_instances(Filters=[{"Name": "private-ip-address", "Values": [private[1]]}])
        self.assertEqual([i["InstanceId"] for r in found["Reservations"] for i in r["Instances"]], [ids[1]])
        # Another account's addresses do not match anything of this one.
        none = self.a.describe_instances(Filters=[{"Name": "private-ip-address", "Values": [b_inst["PrivateIpAddress"]]}])
        self.assertEqual(none["Reservations"], [])
        type(self).a_ids, type(self).b_id = ids, b_id

    def test_2_elastic_ip_lifecycle(self):
        a1, a2 = self.a_ids
        alloc = self.a.allocate_address(Domain="vpc")
        eip, alloc_id = alloc["PublicIp"], alloc["AllocationId"]
        self.assertTrue(in_pool(eip))
        auto_a1 = self.instance(self.a, a1)["PublicIpAddress"]
        assoc = self.a.associate_address(AllocationId=alloc_id, InstanceId=a1)["AssociationId"]
        self.assertTrue(assoc.startswith("eipassoc-"))
        self.assertEqual(self.instance(self.a, a1)["PublicIpAddress"], eip)
        # As on EC2, the auto-assigned address went back to the pool: being
        # the lowest free one, the next allocation gets it.
        probe = self.a.allocate_address()
        self.assertEqual(probe["PublicIp"], auto_a1)
        self.a.release_address(AllocationId=probe["AllocationId"])
        listed = self.addresses(self.a)[alloc_id]
        self.assertEqual((listed["InstanceId"], listed["AssociationId"], listed["PublicIp"]), (a1, assoc, eip))
        self.assertEqual(listed["PrivateIpAddress"], self.instance(self.a, a1)["PrivateIpAddress"])
        self.assertEqual(list(self.addresses(self.a, Filters=[{"Name": "instance-id", "Values": [a1]}])), [alloc_id])

        # Without AllowReassociation an associated address stays where it is.
        self.assertEqual(error_code(self.a.associate_address, AllocationId=alloc_id, InstanceId=a2,
                                    AllowReassociation=False), "Resource.AlreadyAssociated")
        self.assertEqual(self.instance(self.a, a1)["PublicIpAddress"], eip)
        # With it the address moves in one step.
        assoc2 = self.a.associate_address(AllocationId=alloc_id, InstanceId=a2, AllowReassociation=True)["AssociationId"]
        self.assertEqual(self.instance(self.a, a2)["PublicIpAddress"], eip)
        moved_from = self.instance(self.a, a1)["PublicIpAddress"]
        self.assertTrue(in_pool(moved_from) and moved_from != eip, moved_from)  # a new auto address
        self.assertEqual(error_code(self.a.release_address, AllocationId=alloc_id), "InvalidIPAddress.InUse")

        self.a.disassociate_address(AssociationId=assoc2)
        self.assertNotIn("InstanceId", self.addresses(self.a)[alloc_id])
        after = self.instance(self.a, a2)["PublicIpAddress"]
        self.assertTrue(in_pool(after) and after != eip, after)
        self.assertEqual(error_code(self.a.disassociate_address, AssociationId=assoc2),
                         "InvalidAssociationID.NotFound")
        self.a.release_address(AllocationId=alloc_id)
        self.assertNotIn(alloc_id, self.addresses(self.a))
        self.assertEqual(error_code(self.a.release_address, AllocationId=alloc_id), "InvalidAllocationID.NotFound")

    def test_3_other_accounts_see_nothing(self):
        a1 = self.a_ids[0]
        alloc = self.a.allocate_address()
        alloc_id = alloc["AllocationId"]
        self.a.associate_address(AllocationId=alloc_id, InstanceId=a1)
        before = self.addresses(self.a)
        self.assertEqual(self.b.describe_addresses()["Addresses"], [])
        self.assertEqual(error_code(self.b.describe_addresses, AllocationIds=[alloc_id]), "InvalidAllocationID.NotFound")
        self.assertEqual(error_code(self.b.describe_addresses, PublicIps=[alloc["PublicIp"]]), "InvalidAddress.NotFound")
        self.assertEqual(error_code(self.b.associate_address, AllocationId=alloc_id, InstanceId=self.b_id),
                         "InvalidAllocationID.NotFound")
        self.assertEqual(error_code(self.b.release_address, AllocationId=alloc_id), "InvalidAllocationID.NotFound")
        self.assertEqual(error_code(self.b.disassociate_address, AssociationId=before[alloc_id]["AssociationId"]),
                         "InvalidAssociationID.NotFound")
        # B's own address cannot be put on A's instance.
        b_alloc = self.b.allocate_address()["AllocationId"]
        self.assertEqual(error_code(self.b.associate_address, AllocationId=b_alloc, InstanceId=a1),
                         "InvalidInstanceID.NotFound")
        self.assertEqual(error_code(self.b.modify_instance_metadata_options, InstanceId=a1, HttpTokens="required"),
                         "InvalidInstanceID.NotFound")
        self.assertEqual(self.addresses(self.a), before)  # nothing changed
        self.b.release_address(AllocationId=b_alloc)
        type(self).kept = alloc_id

    def test_3b_iam_users_manage_only_their_instances(self):
        from test_iam import iam_client
        iam = iam_client(self.k, self.k.admin_key, self.k.admin_secret)
        iam.create_user(UserName="netuser")
        iam.put_user_policy(UserName="netuser", PolicyName="all", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ec2:*", "Resource": "*"}]}))
        key = iam.create_access_key(UserName="netuser")["AccessKey"]
        user = client(self.k, key["AccessKeyId"], key["SecretAccessKey"])
        before = self.addresses(self.a)
        root_instance = self.a_ids[1]
        # The account root's instance is not the user's: NotFound, nothing changes.
        self.assertEqual(error_code(user.modify_instance_metadata_options, InstanceId=root_instance,
                                    HttpEndpoint="disabled"), "InvalidInstanceID.NotFound")
        self.assertEqual(error_code(user.associate_address, AllocationId=self.kept, InstanceId=root_instance),
                         "InvalidInstanceID.NotFound")
        self.assertEqual(self.addresses(self.a), before)
        self.assertEqual(self.instance(self.a, root_instance)["MetadataOptions"]["HttpEndpoint"], "enabled")

    def test_4_malformed_requests_change_nothing(self):
        before = self.addresses(self.a)
        for call, kw, code in [
            (self.a.associate_address, {"AllocationId": "eipalloc-nothex", "InstanceId": self.a_ids[0]},
             "InvalidAllocationID.Malformed"),
            (self.a.associate_address, {"InstanceId": self.a_ids[0]}, "MissingParameter"),
            (self.a.disassociate_address, {"AssociationId": "eipassoc-1"}, "InvalidAssociationID.Malformed"),
            (self.a.release_address, {}, "MissingParameter"),
            (self.a.release_address, {"PublicIp": "203.0.113.1"}, "InvalidAddress.NotFound"),
            (self.a.allocate_address, {"Domain": "moon"}, "InvalidParameterValue"),
            (self.a.modify_instance_metadata_options, {"InstanceId": self.a_ids[0], "HttpPutResponseHopLimit": 65},
             "InvalidParameterValue"),
            (self.a.modify_instance_metadata_options, {"InstanceId": self.a_ids[0], "HttpTokens": "always"},
             "InvalidParameterValue"),
        ]:
            self.assertEqual(error_code(call, **kw), code, (call, kw))
        self.assertEqual(self.addresses(self.a), before)
        self.assertEqual(self.instance(self.a, self.a_ids[0])["MetadataOptions"]["HttpTokens"], "optional")

    def test_5_pool_exhaustion_and_metadata_options(self):
        # Two auto addresses (a1 gave its own back for the kept elastic IP) and
        # the kept elastic IP are taken: three left in the pool of six.
        got = [self.a.allocate_address()["AllocationId"] for _ in range(3)]
        self.assertEqual(error_code(self.a.allocate_address), "AddressLimitExceeded")
        for g in got:
            self.a.release_address(AllocationId=g)
        out = self.a.modify_instance_metadata_options(InstanceId=self.a_ids[1], HttpTokens="required",
                                                      HttpPutResponseHopLimit=3)
        self.assertEqual(out["InstanceMetadataOptions"]["HttpTokens"], "required")
        opts = self.instance(self.a, self.a_ids[1])["MetadataOptions"]
        self.assertEqual((opts["HttpTokens"], opts["HttpPutResponseHopLimit"]), ("required", 3))

    def test_6_aws_cli_and_terminate_and_crash_restart(self):
        env = dict(os.environ, AWS_ACCESS_KEY_ID=self.k.admin_key, AWS_SECRET_ACCESS_KEY=self.k.admin_secret,
                   AWS_DEFAULT_REGION="kumo-1")
        cli = subprocess.run(["/usr/bin/aws", "ec2", "describe-addresses", "--endpoint-url", self.k.endpoint,
                              "--output", "json"], capture_output=True, text=True, env=env, timeout=60)
        self.assertEqual(cli.returncode, 0, cli.stderr)
        self.assertIn(self.kept, [a["AllocationId"] for a in json.loads(cli.stdout)["Addresses"]])

        # Terminating an instance lets its elastic IP go; the address stays allocated.
        a1 = self.a_ids[0]
        self.a.terminate_instances(InstanceIds=[a1])
        eventually(lambda: "InstanceId" not in self.addresses(self.a)[self.kept], 30, "the EIP to be let go")
        self.a.associate_address(AllocationId=self.kept, InstanceId=self.a_ids[1])

        before_addresses = self.addresses(self.a)
        before = {i: self.instance(self.a, i) for i in self.a_ids[1:]}
        self.k.kill()
        self.k = type(self).k = Kumod(*FLAGS, data_dir=self.k.dir)
        self.a = type(self).a = client(self.k, self.k.admin_key, self.k.admin_secret)
        self.assertEqual(self.addresses(self.a), before_addresses)
        for iid, was in before.items():
            now = self.instance(self.a, iid)
            for field in ("PrivateIpAddress", "PublicIpAddress", "NetworkInterfaces", "MetadataOptions"):
                self.assertEqual(now.get(field), was.get(field), field)
        # Ids and addresses keep being unique after the restart.
        [new_id], [new] = self.launch(self.a, self.image_a)
        taken = {i["PrivateIpAddress"] for i in before.values()}
        self.assertNotIn(new["PrivateIpAddress"], taken)

    def test_5b_a_segment_gives_its_lease_back_with_its_last_instance(self):
        """Each (account, group) is a Segment aggregate: its last NIC going
        retires it and frees its segment id; a new launch leases anew."""
        sg = self.b.create_security_group(GroupName="lease-test", Description="segment lifecycle")["GroupId"]
        [first], [inst] = self.launch(self.b, self.image_b, SecurityGroupIds=[sg])
        mac = inst["NetworkInterfaces"][0]["MacAddress"]
        self.b.terminate_instances(InstanceIds=[first])

        def audit_types():
            out = self.k.kumoctl("audit", sg)
            return [line.split()[2] for line in out.stdout.splitlines()] if out.returncode == 0 else []
        eventually(lambda: "lease_released" in audit_types(), 30, "the segment's lease to be freed")
        types = audit_types()
        self.assertLess(types.index("segment_retired"), types.index("lease_released"), types)
        self.assertEqual(types.count("segment_leased"), 1, types)

        [second], [again] = self.launch(self.b, self.image_b, SecurityGroupIds=[sg])
        self.assertTrue(again["PrivateIpAddress"].endswith(".10"), again)
        self.assertNotEqual(again["NetworkInterfaces"][0]["MacAddress"], mac)  # never reused
        self.assertEqual(audit_types().count("segment_leased"), 2)
        self.assertEqual(self.instance(self.b, second)["PrivateIpAddress"], again["PrivateIpAddress"])


if __name__ == "__main__":
    unittest.main()
