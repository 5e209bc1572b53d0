"""End-to-end IAM: a real kumod (fake hypervisor) driven by boto3's iam and
ec2 clients and the aws CLI: users, groups, access keys, inline policies and
their evaluation on EC2 calls, AWS-style refusals that change nothing.

    KUMO_BIN_DIR=build/bin /usr/bin/python3 tests/e2e/test_iam.py -v
"""
import json
import os
import subprocess
import time
import unittest

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from test_ec2_api import REGION, Kumod, client, error_code

DESCRIBE_ONLY = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "ec2:Describe*", "Resource": "*"}]})


def iam_client(k, key, secret, token=None):
    return boto3.client("iam", region_name=REGION, endpoint_url=k.endpoint,
                        aws_access_key_id=key, aws_secret_access_key=secret, aws_session_token=token,
                        config=Config(retries={"max_attempts": 1}))


def wait_until(what, predicate, seconds=20):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("timed out waiting for " + what)


class IamTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.k = Kumod()
        cls.iam = iam_client(cls.k, cls.k.admin_key, cls.k.admin_secret)
        cls.ec2 = client(cls.k, cls.k.admin_key, cls.k.admin_secret)

    @classmethod
    def tearDownClass(cls):
        cls.k.stop()

    def aws(self, *args, key=None, secret=None):
        env = dict(os.environ, AWS_ACCESS_KEY_ID=key or self.k.admin_key,
                   AWS_SECRET_ACCESS_KEY=secret or self.k.admin_secret, AWS_DEFAULT_REGION=REGION,
                   AWS_PAGER="")
        env.pop("AWS_PROFILE", None)
        env.pop("AWS_SHARED_CREDENTIALS_FILE", None)
        p = subprocess.run(["/usr/bin/aws", "--endpoint-url", self.k.endpoint, "--output", "json"] + list(args),
                           capture_output=True, text=True, env=env, timeout=60)
        return p

    def event_count(self):
        out = self.k.kumoctl("events", "--json")
        self.assertEqual(out.returncode, 0, out.stderr)
        return len(out.stdout.splitlines())

    def new_user_with_key(self, name, policy=None):
        self.iam.create_user(UserName=name)
        key = self.iam.create_access_key(UserName=name)["AccessKey"]
        if policy:
            self.iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=policy)
        return key["AccessKeyId"], key["SecretAccessKey"]

    def test_users_groups_and_membership(self):
        u = self.iam.create_user(UserName="u1", Path="/eng/")["User"]
        self.assertEqual(u["UserName"], "u1")
        self.assertTrue(u["UserId"].startswith("AIDA"))
        self.assertTrue(u["Arn"].endswith(":user/eng/u1"))
        self.iam.create_user(UserName="u2")
        names = [x["UserName"] for x in self.iam.list_users()["Users"]]
        self.assertIn("u1", names)
        self.assertIn("u2", names)
        self.assertEqual([x["UserName"] for x in self.iam.list_users(PathPrefix="/eng/")["Users"]], ["u1"])
        self.assertEqual(self.iam.get_user(UserName="u1")["User"]["UserId"], u["UserId"])
        g = self.iam.create_group(GroupName="g1")["Group"]
        self.assertTrue(g["GroupId"].startswith("AGPA"))
        self.iam.add_user_to_group(GroupName="g1", UserName="u1")
        self.iam.add_user_to_group(GroupName="g1", UserName="u1")  # idempotent, as in IAM
        self.iam.add_user_to_group(GroupName="g1", UserName="u2")
        got = self.iam.get_group(GroupName="g1")
        self.assertEqual(sorted(x["UserName"] for x in got["Users"]), ["u1", "u2"])
        self.assertEqual([x["GroupName"] for x in self.iam.list_groups_for_user(UserName="u1")["Groups"]], ["g1"])
        self.assertIn("g1", [x["GroupName"] for x in self.iam.list_groups()["Groups"]])
        self.iam.remove_user_from_group(GroupName="g1", UserName="u2")
        self.assertEqual([x["UserName"] for x in self.iam.get_group(GroupName="g1")["Users"]], ["u1"])
        # Refusals, and nothing changed by them: not one event.
        events_before = self.event_count()
        self.assertEqual(error_code(self.iam.create_user, UserName="u1"), "EntityAlreadyExists")
        self.assertEqual(error_code(self.iam.create_group, GroupName="g1"), "EntityAlreadyExists")
        self.assertEqual(error_code(self.iam.get_user, UserName="nobody"), "NoSuchEntity")
        self.assertEqual(error_code(self.iam.get_group, GroupName="nogroup"), "NoSuchEntity")
        self.assertEqual(error_code(self.iam.add_user_to_group, GroupName="g1", UserName="nobody"), "NoSuchEntity")
        self.assertEqual(error_code(self.iam.add_user_to_group, GroupName="nogroup", UserName="u1"), "NoSuchEntity")
        self.assertEqual(error_code(self.iam.remove_user_from_group, GroupName="g1", UserName="u2"), "NoSuchEntity")
        self.assertEqual(error_code(self.iam.create_user, UserName="bad name!"), "ValidationError")
        self.assertEqual(error_code(self.iam.delete_group, GroupName="g1"), "DeleteConflict")
        self.assertEqual(error_code(self.iam.delete_user, UserName="u1"), "DeleteConflict")  # still in g1
        self.assertEqual([x["UserName"] for x in self.iam.get_group(GroupName="g1")["Users"]], ["u1"])
        self.assertEqual(self.event_count(), events_before)
        self.iam.remove_user_from_group(GroupName="g1", UserName="u1")
        self.iam.delete_group(GroupName="g1")
        self.iam.delete_user(UserName="u1")
        self.assertEqual(error_code(self.iam.get_user, UserName="u1"), "NoSuchEntity")
        self.assertEqual(error_code(self.iam.delete_user, UserName="u1"), "NoSuchEntity")
        # kumoctl audit shows who joined and left the group, and when.
        out = self.k.kumoctl("audit", "g1")
        self.assertEqual(out.returncode, 0, out.stderr)
        lines = out.stdout.splitlines()
        kinds = [(l.split()[2], l.split("user=")[1].split()[0]) for l in lines if "user=" in l]
        self.assertEqual(kinds, [("member_added", "u1"), ("member_added", "u2"), ("member_removed", "u2"),
                                 ("member_removed", "u1")])
        self.assertIn("group_deleted", out.stdout)

    def test_access_keys_limits_and_inactive_keys(self):
        key, secret = self.new_user_with_key("keys", DESCRIBE_ONLY)
        mine = client(self.k, key, secret)
        mine.describe_regions()
        second = self.iam.create_access_key(UserName="keys")["AccessKey"]
        self.assertEqual(error_code(self.iam.create_access_key, UserName="keys"), "LimitExceeded")
        listed = self.iam.list_access_keys(UserName="keys")["AccessKeyMetadata"]
        self.assertEqual(sorted(x["AccessKeyId"] for x in listed), sorted([key, second["AccessKeyId"]]))
        self.assertTrue(all(x["Status"] == "Active" for x in listed))
        self.iam.update_access_key(UserName="keys", AccessKeyId=key, Status="Inactive")
        self.assertEqual(error_code(mine.describe_regions), "AuthFailure")
        self.assertEqual(error_code(self.iam.update_access_key, UserName="keys", AccessKeyId=key, Status="Maybe"),
                         "ValidationError")
        self.iam.update_access_key(UserName="keys", AccessKeyId=key, Status="Active")
        mine.describe_regions()
        self.assertEqual(error_code(self.iam.delete_access_key, UserName="keys", AccessKeyId="AKIADOESNOTEXIST0000"),
                         "NoSuchEntity")
        self.iam.delete_access_key(UserName="keys", AccessKeyId=key)
        self.assertEqual(error_code(mine.describe_regions), "AuthFailure")
        self.assertEqual(len(self.iam.list_access_keys(UserName="keys")["AccessKeyMetadata"]), 1)
        # A user may manage its own keys when its policy allows it; UserName defaults to the caller.
        k2, s2 = second["AccessKeyId"], second["SecretAccessKey"]
        self.iam.put_user_policy(UserName="keys", PolicyName="self", PolicyDocument=json.dumps(
            {"Statement": [{"Effect": "Allow", "Action": ["iam:ListAccessKeys", "iam:GetUser"],
                            "Resource": "*"}]}))
        me = iam_client(self.k, k2, s2)
        self.assertEqual(me.get_user()["User"]["UserName"], "keys")
        self.assertEqual([x["AccessKeyId"] for x in me.list_access_keys()["AccessKeyMetadata"]], [k2])

    def test_policies_decide_ec2_calls(self):
        key, secret = self.new_user_with_key("describer", DESCRIBE_ONLY)
        mine = client(self.k, key, secret)
        self.assertTrue(mine.describe_regions()["Regions"])
        mine.describe_instances()
        mine.describe_key_pairs()
        # Not allowed: refused with UnauthorizedOperation, and nothing happens.
        self.assertEqual(error_code(mine.run_instances, ImageId="emi-00000000000000000", MinCount=1, MaxCount=1),
                         "UnauthorizedOperation")
        self.assertEqual(error_code(mine.create_key_pair, KeyName="sneaky"), "UnauthorizedOperation")
        self.assertEqual(error_code(mine.create_key_pair, KeyName="sneaky", DryRun=True), "UnauthorizedOperation")
        self.assertEqual(error_code(mine.create_key_pair, KeyName="sneaky", DryRun=False), "UnauthorizedOperation")
        self.assertNotIn("sneaky", [x["KeyName"] for x in self.ec2.describe_key_pairs()["KeyPairs"]])
        # IAM calls need iam: permissions.
        me = iam_client(self.k, key, secret)
        self.assertEqual(error_code(me.create_user, UserName="escalate"), "AccessDenied")
        self.assertEqual(error_code(self.iam.get_user, UserName="escalate"), "NoSuchEntity")
        # A group's explicit Deny wins over the user's Allow.
        self.iam.create_group(GroupName="no-regions")
        self.iam.put_group_policy(GroupName="no-regions", PolicyName="deny", PolicyDocument=json.dumps(
            {"Version": "2012-10-17",
             "Statement": [{"Effect": "Deny", "Action": "ec2:DescribeRegions", "Resource": "*"}]}))
        got = self.iam.get_group_policy(GroupName="no-regions", PolicyName="deny")
        self.assertEqual(got["PolicyDocument"]["Statement"][0]["Effect"], "Deny")  # botocore decodes it
        self.assertEqual(self.iam.list_group_policies(GroupName="no-regions")["PolicyNames"], ["deny"])
        self.iam.add_user_to_group(GroupName="no-regions", UserName="describer")
        self.assertEqual(error_code(mine.describe_regions), "UnauthorizedOperation")
        mine.describe_availability_zones()
        self.iam.delete_group_policy(GroupName="no-regions", PolicyName="deny")
        self.assertEqual(error_code(self.iam.get_group_policy, GroupName="no-regions", PolicyName="deny"),
                         "NoSuchEntity")
        mine.describe_regions()
        # Resource ARNs: StopInstances allowed on one instance id only.
        self.iam.put_user_policy(UserName="describer", PolicyName="stop-one", PolicyDocument=json.dumps(
            {"Statement": [{"Effect": "Allow", "Action": "ec2:StopInstances",
                            "Resource": "arn:aws:ec2:*:*:instance/i-0000000000000000a"}]}))
        self.assertEqual(error_code(mine.stop_instances, InstanceIds=["i-0000000000000000b"]), "UnauthorizedOperation")
        self.assertEqual(error_code(mine.stop_instances, InstanceIds=["i-0000000000000000a"]),
                         "InvalidInstanceID.NotFound")  # allowed, and then: no such instance
        # Malformed and oversized policies are refused; the old one stays.
        events_before = self.event_count()
        for bad in ["{", json.dumps({"Statement": [{"Effect": "Allow", "Action": "RunInstances", "Resource": "*"}]}),
                    json.dumps({"Statement": [{"Effect": "Allow", "Action": "ec2:*", "Resource": "*",
                                               "Principal": "*"}]})]:
            self.assertEqual(error_code(self.iam.put_user_policy, UserName="describer", PolicyName="p",
                                        PolicyDocument=bad), "MalformedPolicyDocument")
        self.assertEqual(error_code(self.iam.put_user_policy, UserName="describer", PolicyName="p",
                                    PolicyDocument=DESCRIBE_ONLY + " " * 3000), "LimitExceeded")
        self.assertEqual(self.iam.get_user_policy(UserName="describer", PolicyName="p")["PolicyDocument"],
                         json.loads(DESCRIBE_ONLY))
        self.assertEqual(sorted(self.iam.list_user_policies(UserName="describer")["PolicyNames"]), ["p", "stop-one"])
        self.assertEqual(error_code(self.iam.put_user_policy, UserName="nobody", PolicyName="p",
                                    PolicyDocument=DESCRIBE_ONLY), "NoSuchEntity")
        self.assertEqual(self.event_count(), events_before)
        self.iam.delete_user_policy(UserName="describer", PolicyName="p")
        self.assertEqual(error_code(mine.describe_regions), "UnauthorizedOperation")  # default deny
        self.assertEqual(error_code(self.iam.delete_user_policy, UserName="describer", PolicyName="p"),
                         "NoSuchEntity")

    def test_client_tokens_are_not_shared_between_users(self):
        """A token is scoped to the account, but another user repeating it gets
        IdempotentParameterMismatch, never the first caller's recorded response."""
        key, secret = self.new_user_with_key("token-user", json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ec2:*", "Resource": "*"}]}))
        user = client(self.k, key, secret)
        before = {v["VolumeId"] for v in self.ec2.describe_volumes()["Volumes"]}
        first = self.ec2.create_volume(Size=1, AvailabilityZone="kumo-1a", ClientToken="shared-token-1")["VolumeId"]
        self.assertEqual(error_code(user.create_volume, Size=1, AvailabilityZone="kumo-1a",
                                    ClientToken="shared-token-1"), "IdempotentParameterMismatch")
        # The owner's retry still gets its own response; exactly one volume was made.
        again = self.ec2.create_volume(Size=1, AvailabilityZone="kumo-1a", ClientToken="shared-token-1")["VolumeId"]
        self.assertEqual(again, first)
        after = {v["VolumeId"] for v in self.ec2.describe_volumes()["Volumes"]}
        self.assertEqual(after - before, {first})
        self.ec2.get_waiter("volume_available").wait(VolumeIds=[first], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        self.ec2.delete_volume(VolumeId=first)

    def test_global_signing_region_and_unknown_service(self):
        # IAM is global: SDKs may sign for us-east-1.
        east = boto3.client("iam", region_name="us-east-1", endpoint_url=self.k.endpoint,
                            aws_access_key_id=self.k.admin_key, aws_secret_access_key=self.k.admin_secret)
        east.list_users()
        # EC2 still wants this cloud's region, and other services are refused.
        ec2_east = boto3.client("ec2", region_name="us-east-1", endpoint_url=self.k.endpoint,
                                aws_access_key_id=self.k.admin_key, aws_secret_access_key=self.k.admin_secret)
        self.assertEqual(error_code(ec2_east.describe_regions), "AuthFailure")
        sts = boto3.client("sts", region_name=REGION, endpoint_url=self.k.endpoint,
                           aws_access_key_id=self.k.admin_key, aws_secret_access_key=self.k.admin_secret)
        self.assertEqual(error_code(sts.get_caller_identity), "AuthFailure")

    def test_another_account_sees_no_users(self):
        self.iam.create_user(UserName="private")
        out = self.k.kumoctl("account", "create", "other", "--json")
        self.assertEqual(out.returncode, 0, out.stderr)
        b = json.loads(out.stdout)
        other = iam_client(self.k, b["access_key_id"], b["secret_access_key"])
        self.assertNotIn("private", [x["UserName"] for x in other.list_users()["Users"]])
        self.assertEqual(error_code(other.get_user, UserName="private"), "NoSuchEntity")
        self.assertEqual(error_code(other.create_access_key, UserName="private"), "NoSuchEntity")
        other.create_user(UserName="private")  # names are per account
        self.assertNotEqual(other.get_user(UserName="private")["User"]["Arn"],
                            self.iam.get_user(UserName="private")["User"]["Arn"])

    def test_aws_cli(self):
        p = self.aws("iam", "create-user", "--user-name", "cli")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["User"]["UserName"], "cli")
        p = self.aws("iam", "create-access-key", "--user-name", "cli")
        self.assertEqual(p.returncode, 0, p.stderr)
        ak = json.loads(p.stdout)["AccessKey"]
        p = self.aws("iam", "create-group", "--group-name", "cli-group")
        self.assertEqual(p.returncode, 0, p.stderr)
        p = self.aws("iam", "add-user-to-group", "--group-name", "cli-group", "--user-name", "cli")
        self.assertEqual(p.returncode, 0, p.stderr)
        p = self.aws("iam", "put-group-policy", "--group-name", "cli-group", "--policy-name", "d",
                     "--policy-document", DESCRIBE_ONLY)
        self.assertEqual(p.returncode, 0, p.stderr)
        p = self.aws("iam", "get-group-policy", "--group-name", "cli-group", "--policy-name", "d")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["PolicyDocument"], json.loads(DESCRIBE_ONLY))
        p = self.aws("iam", "list-groups-for-user", "--user-name", "cli")
        self.assertEqual([g["GroupName"] for g in json.loads(p.stdout)["Groups"]], ["cli-group"])
        p = self.aws("iam", "list-users")
        self.assertIn("cli", [u["UserName"] for u in json.loads(p.stdout)["Users"]])
        # The user's key through the CLI: describe yes, run no.
        p = self.aws("ec2", "describe-regions", key=ak["AccessKeyId"], secret=ak["SecretAccessKey"])
        self.assertEqual(p.returncode, 0, p.stderr)
        p = self.aws("ec2", "run-instances", "--image-id", "emi-00000000000000000", "--count", "1",
                     key=ak["AccessKeyId"], secret=ak["SecretAccessKey"])
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("UnauthorizedOperation", p.stderr)
        p = self.aws("iam", "update-access-key", "--user-name", "cli", "--access-key-id", ak["AccessKeyId"],
                     "--status", "Inactive")
        self.assertEqual(p.returncode, 0, p.stderr)
        p = self.aws("ec2", "describe-regions", key=ak["AccessKeyId"], secret=ak["SecretAccessKey"])
        self.assertIn("AuthFailure", p.stderr)
        p = self.aws("iam", "get-user", "--user-name", "nobody")
        self.assertIn("NoSuchEntity", p.stderr)

    def test_users_survive_a_restart(self):
        key, secret = self.new_user_with_key("durable", DESCRIBE_ONLY)
        self.iam.create_group(GroupName="durable-g")
        self.iam.add_user_to_group(GroupName="durable-g", UserName="durable")
        data_dir = self.k.dir
        self.k.kill()  # SIGKILL: everything acknowledged is in the log
        type(self).k = Kumod(data_dir=data_dir)
        type(self).iam = iam_client(self.k, self.k.admin_key, self.k.admin_secret)
        type(self).ec2 = client(self.k, self.k.admin_key, self.k.admin_secret)
        client(self.k, key, secret).describe_regions()
        self.assertEqual(error_code(client(self.k, key, secret).create_key_pair, KeyName="x"), "UnauthorizedOperation")
        self.assertEqual([x["UserName"] for x in self.iam.get_group(GroupName="durable-g")["Users"]], ["durable"])
        out = self.k.kumoctl("verify")
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)


if __name__ == "__main__":
    unittest.main()
