"""End-to-end: a real kumod on a free port, driven by boto3 and the aws CLI.

Run by ctest with Debian's python3 (boto3/botocore 1.29):
    KUMO_BIN_DIR=build/bin /usr/bin/python3 tests/e2e/test_ec2_api.py -v
"""
import base64
import datetime
import hashlib
import http.client
import json
import os
import socket
import re
import shutil
import subprocess
import tempfile
import threading
import unittest
import urllib.request
from unittest import mock

import boto3
import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

BIN = os.environ.get("KUMO_BIN_DIR", "build/bin")
REGION = "kumo-1"


def read_profile(path, profile):
    with open(path) as f:
        text = f.read()
    section = text.split("[" + profile + "]", 1)[1]
    key = re.search(r"aws_access_key_id = (\S+)", section).group(1)
    secret = re.search(r"aws_secret_access_key = (\S+)", section).group(1)
    return key, secret


class Kumod:
    """kumod in a temp dir; ready when it prints its ready line."""

    def __init__(self, *flags, data_dir=None):
        """`flags` replace the default --hypervisor=fake (no VMs needed).
        `data_dir`: start on that existing data dir (a restart) instead of a
        fresh temp dir."""
        self.dir = data_dir or tempfile.mkdtemp(prefix="kumo-e2e-")
        self.proc = subprocess.Popen(
            [os.path.join(BIN, "kumod"), "--data-dir=" + self.dir, "--listen=127.0.0.1:0"] +
            list(flags or ["--hypervisor=fake"]),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
        self.log = []
        for line in self.proc.stdout:
            self.log.append(line)
            m = re.search(r"kumod ready: listening on http://127\.0\.0\.1:(\d+)", line)
            if m:
                self.port = int(m.group(1))
                break
        else:
            raise RuntimeError("kumod did not start:\n" + "".join(self.log))
        # Keep reading its log, so kumod never blocks on a full pipe.
        threading.Thread(target=lambda: self.log.extend(self.proc.stdout), daemon=True).start()
        self.endpoint = "http://127.0.0.1:%d" % self.port
        self.creds_file = os.path.join(self.dir, "admin-credentials")
        self.admin_key, self.admin_secret = read_profile(self.creds_file, "kumo")

    def kumoctl(self, *args):
        return subprocess.run([os.path.join(BIN, "kumoctl"), "--data-dir=" + self.dir,
                               "--endpoint=" + self.endpoint] + list(args),
                              capture_output=True, text=True, timeout=60)

    def kill(self):
        """SIGKILL, as a crash: no shutdown at all; the data dir stays for a restart."""
        self.proc.kill()
        self.proc.wait(timeout=30)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)
        shutil.rmtree(self.dir, ignore_errors=True)


def client(k, key, secret):
    return boto3.client("ec2", region_name=REGION, endpoint_url=k.endpoint,
                        aws_access_key_id=key, aws_secret_access_key=secret,
                        config=Config(retries={"max_attempts": 1}))


def error_code(fn, **kwargs):
    try:
        fn(**kwargs)
    except ClientError as e:
        return e.response["Error"]["Code"]
    return None


class Ec2ApiTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.k = Kumod()
        cls.a = client(cls.k, cls.k.admin_key, cls.k.admin_secret)
        out = cls.k.kumoctl("account", "create", "team-b", "--json")
        assert out.returncode == 0, out.stderr
        b = json.loads(out.stdout)
        cls.b_account = b["account_id"]
        cls.b = client(cls.k, b["access_key_id"], b["secret_access_key"])

    @classmethod
    def tearDownClass(cls):
        cls.k.stop()

    # ---- helpers
    def signed(self, body, key=None, secret=None, when=None, content_type="application/x-www-form-urlencoded"):
        """POSTs a raw body signed by botocore's own SigV4 signer."""
        creds = Credentials(key or self.k.admin_key, secret or self.k.admin_secret)
        req = AWSRequest(method="POST", url=self.k.endpoint + "/", data=body,
                         headers={"Content-Type": content_type})
        if when:
            class Fixed(datetime.datetime):
                @classmethod
                def utcnow(cls):
                    return when
            with mock.patch("botocore.auth.datetime.datetime", Fixed):
                botocore.auth.SigV4Auth(creds, "ec2", REGION).add_auth(req)
        else:
            botocore.auth.SigV4Auth(creds, "ec2", REGION).add_auth(req)
        return self.raw("POST", "/", body, dict(req.headers.items()))

    def raw(self, method, path, body=b"", headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.k.port, timeout=30)
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read().decode("utf-8", "replace")
        conn.close()
        return resp.status, data

    def code_of(self, xml):
        m = re.search(r"<Code>([^<]+)</Code>", xml)
        return m.group(1) if m else None

    def assert_still_serving(self):
        regions = self.a.describe_regions()["Regions"]
        self.assertEqual([r["RegionName"] for r in regions], [REGION])

    # ---- regions, zones, account attributes
    def test_regions_zones_and_attributes(self):
        regions = self.a.describe_regions()["Regions"]
        self.assertEqual(regions, [{"Endpoint": "ec2.kumo-1.kumo", "RegionName": "kumo-1",
                                    "OptInStatus": "opt-in-not-required"}])
        self.assertEqual(len(self.a.describe_regions(
            Filters=[{"Name": "region-name", "Values": ["kumo-*"]}])["Regions"]), 1)
        self.assertEqual(self.a.describe_regions(
            Filters=[{"Name": "region-name", "Values": ["us-*"]}])["Regions"], [])
        self.assertEqual(error_code(self.a.describe_regions, RegionNames=["us-east-1"]),
                         "InvalidParameterValue")
        self.assertEqual(error_code(self.a.describe_regions,
                                    Filters=[{"Name": "colour", "Values": ["x"]}]),
                         "InvalidParameterValue")
        zones = self.a.describe_availability_zones()["AvailabilityZones"]
        self.assertEqual([(z["ZoneName"], z["ZoneId"], z["State"], z["RegionName"]) for z in zones],
                         [("kumo-1a", "kumo-1-az1", "available", "kumo-1")])
        self.assertEqual(error_code(self.a.describe_availability_zones, ZoneNames=["kumo-1z"]),
                         "InvalidParameterValue")
        attrs = self.a.describe_account_attributes(AttributeNames=["default-vpc"])["AccountAttributes"]
        self.assertEqual(attrs, [{"AttributeName": "default-vpc",
                                  "AttributeValues": [{"AttributeValue": "none"}]}])
        self.assertEqual(len(self.a.describe_account_attributes()["AccountAttributes"]), 6)
        self.assertEqual(error_code(self.a.describe_regions, DryRun=True), "DryRunOperation")

    # ---- key pairs
    def test_create_describe_delete_rsa_and_ed25519(self):
        rsa = self.a.create_key_pair(KeyName="e2e-rsa")
        self.assertTrue(rsa["KeyMaterial"].startswith("-----BEGIN RSA PRIVATE KEY-----"))
        self.assertRegex(rsa["KeyFingerprint"], r"^([0-9a-f]{2}:){19}[0-9a-f]{2}$")
        self.assertRegex(rsa["KeyPairId"], r"^key-[0-9a-f]{17}$")
        ed = self.a.create_key_pair(KeyName="e2e-ed", KeyType="ed25519", TagSpecifications=[
            {"ResourceType": "key-pair", "Tags": [{"Key": "team", "Value": "red"}]}])
        self.assertTrue(ed["KeyMaterial"].startswith("-----BEGIN OPENSSH PRIVATE KEY-----"))
        self.assertEqual(ed["Tags"], [{"Key": "team", "Value": "red"}])

        # The private keys are real: ssh-keygen derives their public halves,
        # which must be what DescribeKeyPairs reports.
        described = {k["KeyName"]: k for k in self.a.describe_key_pairs(
            KeyNames=["e2e-rsa", "e2e-ed"], IncludePublicKey=True)["KeyPairs"]}
        for name, created in (("e2e-rsa", rsa), ("e2e-ed", ed)):
            d = described[name]
            self.assertEqual(d["KeyPairId"], created["KeyPairId"])
            self.assertEqual(d["KeyFingerprint"], created["KeyFingerprint"])
            with tempfile.NamedTemporaryFile("w", delete=False) as f:
                f.write(created["KeyMaterial"])
            os.chmod(f.name, 0o600)
            derived = subprocess.run(["ssh-keygen", "-y", "-f", f.name], capture_output=True, text=True)
            os.unlink(f.name)
            self.assertEqual(derived.returncode, 0, derived.stderr)
            self.assertEqual(derived.stdout.split()[:2], d["PublicKey"].split()[:2])
        # ED25519 fingerprint: base64 SHA-256 of the public key blob, as EC2 gives it.
        blob = base64.b64decode(described["e2e-ed"]["PublicKey"].split()[1])
        self.assertEqual(ed["KeyFingerprint"], base64.b64encode(hashlib.sha256(blob).digest()).decode())
        self.assertEqual(described["e2e-ed"]["KeyType"], "ed25519")

        # Filters select exactly the right ones.
        by_tag = self.a.describe_key_pairs(Filters=[{"Name": "tag:team", "Values": ["red"]}])["KeyPairs"]
        self.assertEqual([k["KeyName"] for k in by_tag], ["e2e-ed"])
        by_type = self.a.describe_key_pairs(Filters=[{"Name": "key-type", "Values": ["rsa"]},
                                                     {"Name": "key-name", "Values": ["e2e-*"]}])["KeyPairs"]
        self.assertEqual([k["KeyName"] for k in by_type], ["e2e-rsa"])
        by_fp = self.a.describe_key_pairs(Filters=[{"Name": "fingerprint", "Values": [rsa["KeyFingerprint"]]}])
        self.assertEqual([k["KeyName"] for k in by_fp["KeyPairs"]], ["e2e-rsa"])
        by_id = self.a.describe_key_pairs(KeyPairIds=[ed["KeyPairId"]])["KeyPairs"]
        self.assertEqual([k["KeyName"] for k in by_id], ["e2e-ed"])

        self.assertEqual(error_code(self.a.create_key_pair, KeyName="e2e-rsa"), "InvalidKeyPair.Duplicate")
        self.assertEqual(error_code(self.a.create_key_pair, KeyName="x", KeyType="dsa"), "InvalidParameterValue")
        self.assertEqual(error_code(self.a.create_key_pair, KeyName="x" * 256), "InvalidParameterValue")

        self.a.delete_key_pair(KeyName="e2e-rsa")
        self.a.delete_key_pair(KeyName="e2e-rsa")  # EC2: deleting a missing name succeeds
        self.a.delete_key_pair(KeyPairId=ed["KeyPairId"])
        self.assertEqual(error_code(self.a.describe_key_pairs, KeyNames=["e2e-rsa"]), "InvalidKeyPair.NotFound")
        self.assertEqual(error_code(self.a.delete_key_pair, KeyPairId="key-00000000000000000"),
                         "InvalidKeyPair.NotFound")
        remaining = [k["KeyName"] for k in self.a.describe_key_pairs()["KeyPairs"]]
        self.assertNotIn("e2e-rsa", remaining)
        self.assertNotIn("e2e-ed", remaining)
        # The name is free again, with a new id.
        again = self.a.create_key_pair(KeyName="e2e-rsa")
        self.assertNotEqual(again["KeyPairId"], rsa["KeyPairId"])
        self.a.delete_key_pair(KeyName="e2e-rsa")

    def test_import_key_pair(self):
        d = tempfile.mkdtemp()
        try:
            subprocess.run(["ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", d + "/k"], check=True)
            with open(d + "/k.pub", "rb") as f:
                material = f.read()
            imported = self.a.import_key_pair(KeyName="e2e-imported", PublicKeyMaterial=material)
            # EC2's fingerprint of an imported RSA key: MD5 of the DER public key.
            der = subprocess.run("ssh-keygen -e -m pkcs8 -f %s/k.pub | openssl pkey -pubin -outform DER" % d,
                                 shell=True, capture_output=True, check=True).stdout
            md5 = hashlib.md5(der).hexdigest()
            self.assertEqual(imported["KeyFingerprint"], ":".join(md5[i:i + 2] for i in range(0, 32, 2)))
            got = self.a.describe_key_pairs(KeyNames=["e2e-imported"], IncludePublicKey=True)["KeyPairs"][0]
            self.assertEqual(got["PublicKey"].split()[:2], material.decode().split()[:2])
            self.assertEqual(got["KeyType"], "rsa")
        finally:
            shutil.rmtree(d)
        self.assertEqual(error_code(self.a.import_key_pair, KeyName="bad", PublicKeyMaterial=b"not a key"),
                         "InvalidKey.Format")
        self.assertEqual(error_code(self.a.import_key_pair, KeyName="bad",
                                    PublicKeyMaterial=b"ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIA=="),
                         "InvalidKey.Format")
        self.assertEqual(error_code(self.a.import_key_pair, KeyName="e2e-imported",
                                    PublicKeyMaterial=material), "InvalidKeyPair.Duplicate")
        self.a.delete_key_pair(KeyName="e2e-imported")

    def test_accounts_are_isolated(self):
        mine = self.a.create_key_pair(KeyName="e2e-private")
        try:
            self.assertEqual(error_code(self.b.describe_key_pairs, KeyNames=["e2e-private"]),
                             "InvalidKeyPair.NotFound")
            self.assertEqual(error_code(self.b.describe_key_pairs, KeyPairIds=[mine["KeyPairId"]]),
                             "InvalidKeyPair.NotFound")
            self.assertNotIn("e2e-private", [k["KeyName"] for k in self.b.describe_key_pairs()["KeyPairs"]])
            self.assertEqual(error_code(self.b.delete_key_pair, KeyPairId=mine["KeyPairId"]),
                             "InvalidKeyPair.NotFound")
            # B's own key of the same name is B's alone; deleting it leaves A's.
            theirs = self.b.create_key_pair(KeyName="e2e-private")
            self.assertNotEqual(theirs["KeyPairId"], mine["KeyPairId"])
            self.b.delete_key_pair(KeyName="e2e-private")
            still = self.a.describe_key_pairs(KeyNames=["e2e-private"])["KeyPairs"]
            self.assertEqual([k["KeyPairId"] for k in still], [mine["KeyPairId"]])
            # Only the admin account administers accounts.
            out = subprocess.run([os.path.join(BIN, "kumoctl"), "--endpoint=" + self.k.endpoint,
                                  "--credentials=/dev/null", "account", "list"], capture_output=True, text=True)
            self.assertEqual(out.returncode, 1)
        finally:
            self.a.delete_key_pair(KeyName="e2e-private")

    # ---- security groups
    def test_security_groups(self):
        default = self.a.describe_security_groups(GroupNames=["default"])["SecurityGroups"]
        self.assertEqual(len(default), 1)
        default_id = default[0]["GroupId"]
        self.assertRegex(default_id, r"^sg-[0-9a-f]{17}$")
        # The default group admits its own members and lets everything out.
        self.assertEqual(default[0]["IpPermissions"][0]["UserIdGroupPairs"][0]["GroupId"], default_id)
        self.assertEqual(default[0]["IpPermissionsEgress"][0]["IpRanges"], [{"CidrIp": "0.0.0.0/0"}])

        web = self.a.create_security_group(GroupName="e2e-web", Description="web tier", TagSpecifications=[
            {"ResourceType": "security-group", "Tags": [{"Key": "tier", "Value": "web"}]}])["GroupId"]
        db = self.a.create_security_group(GroupName="e2e-db", Description="db tier")["GroupId"]
        self.assertEqual(error_code(self.a.create_security_group, GroupName="e2e-web", Description="x"),
                         "InvalidGroup.Duplicate")
        self.a.authorize_security_group_ingress(GroupId=web, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
             "IpRanges": [{"CidrIp": "0.0.0.0/0", "Description": "https"}]}])
        self.a.authorize_security_group_ingress(GroupId=db, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "UserIdGroupPairs": [{"GroupId": web}]}])
        self.a.authorize_security_group_egress(GroupId=db, IpPermissions=[
            {"IpProtocol": "udp", "FromPort": 53, "ToPort": 53, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}])
        self.assertEqual(error_code(self.a.authorize_security_group_ingress, GroupId=web, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]),
            "InvalidPermission.Duplicate")
        self.assertEqual(error_code(self.a.authorize_security_group_ingress, GroupId=web, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 90, "ToPort": 80, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]),
            "InvalidParameterValue")
        self.assertEqual(error_code(self.a.authorize_security_group_ingress, GroupId=web, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 1, "ToPort": 2, "IpRanges": [{"CidrIp": "300.0.0.0/8"}]}]),
            "InvalidParameterValue")
        self.assertEqual(error_code(self.a.authorize_security_group_ingress, GroupId="sg-00000000000000000",
                                    IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]),
                         "InvalidGroup.NotFound")

        got = {g["GroupName"]: g for g in self.a.describe_security_groups(GroupIds=[web, db])["SecurityGroups"]}
        self.assertEqual(got["e2e-web"]["IpPermissions"], [
            {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "UserIdGroupPairs": [],
             "IpRanges": [{"CidrIp": "0.0.0.0/0", "Description": "https"}], "Ipv6Ranges": [], "PrefixListIds": []}])
        self.assertEqual(got["e2e-db"]["IpPermissions"][0]["UserIdGroupPairs"][0]["GroupId"], web)
        self.assertEqual(len(got["e2e-db"]["IpPermissionsEgress"]), 2)
        self.assertEqual(got["e2e-web"]["Tags"], [{"Key": "tier", "Value": "web"}])
        self.assertEqual(got["e2e-web"]["OwnerId"], got["e2e-db"]["OwnerId"])

        def names(**kw):
            return sorted(g["GroupName"] for g in self.a.describe_security_groups(**kw)["SecurityGroups"])
        self.assertEqual(names(Filters=[{"Name": "ip-permission.from-port", "Values": ["5432"]}]), ["e2e-db"])
        self.assertEqual(names(Filters=[{"Name": "ip-permission.group-id", "Values": [web]}]), ["e2e-db"])
        self.assertEqual(names(Filters=[{"Name": "tag:tier", "Values": ["web"]}]), ["e2e-web"])
        self.assertEqual(names(Filters=[{"Name": "group-name", "Values": ["e2e-*"]},
                                        {"Name": "egress.ip-permission.protocol", "Values": ["udp"]}]), ["e2e-db"])

        # Another account sees none of it and can reference none of it.
        self.assertEqual(error_code(self.b.describe_security_groups, GroupIds=[web]), "InvalidGroup.NotFound")
        self.assertNotIn("e2e-web", [g["GroupName"] for g in self.b.describe_security_groups()["SecurityGroups"]])
        self.assertEqual(error_code(self.b.delete_security_group, GroupId=web), "InvalidGroup.NotFound")
        self.assertEqual(error_code(self.b.authorize_security_group_ingress, GroupId=web, IpPermissions=[
            {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]), "InvalidGroup.NotFound")

        # Deletion: the default group never; a referenced group not until the rule goes.
        self.assertEqual(error_code(self.a.delete_security_group, GroupName="default"), "CannotDelete")
        self.assertEqual(error_code(self.a.delete_security_group, GroupId=web), "DependencyViolation")
        self.a.revoke_security_group_ingress(GroupId=db, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "UserIdGroupPairs": [{"GroupId": web}]}])
        self.assertEqual(error_code(self.a.revoke_security_group_ingress, GroupId=db, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "UserIdGroupPairs": [{"GroupId": web}]}]),
            "InvalidPermission.NotFound")
        self.a.delete_security_group(GroupId=web)
        self.a.delete_security_group(GroupName="e2e-db")
        self.assertEqual(names(Filters=[{"Name": "group-name", "Values": ["e2e-*"]}]), [])
        self.assertEqual(error_code(self.a.delete_security_group, GroupId=web), "InvalidGroup.NotFound")

    # ---- tags and pagination
    def test_tags(self):
        key = self.a.create_key_pair(KeyName="e2e-tagged")["KeyPairId"]
        sg = self.a.create_security_group(GroupName="e2e-tagged", Description="t")["GroupId"]
        try:
            self.a.create_tags(Resources=[key, sg], Tags=[{"Key": "env", "Value": "prod"},
                                                          {"Key": "owner", "Value": "ana"}])
            self.a.create_tags(Resources=[sg], Tags=[{"Key": "env", "Value": "test"}])  # overwrite

            def tags(**kw):
                return sorted((t["ResourceId"], t["ResourceType"], t["Key"], t["Value"])
                              for t in self.a.describe_tags(**kw)["Tags"])
            self.assertEqual(tags(Filters=[{"Name": "resource-id", "Values": [key, sg]}]), sorted([
                (key, "key-pair", "env", "prod"), (key, "key-pair", "owner", "ana"),
                (sg, "security-group", "env", "test"), (sg, "security-group", "owner", "ana")]))
            self.assertEqual(tags(Filters=[{"Name": "key", "Values": ["env"]},
                                           {"Name": "resource-type", "Values": ["key-pair"]}]),
                             [(key, "key-pair", "env", "prod")])
            # Tag filters work in the resources' own Describe calls too.
            self.assertEqual([k["KeyPairId"] for k in self.a.describe_key_pairs(
                Filters=[{"Name": "tag:env", "Values": ["prod"]}])["KeyPairs"]], [key])
            self.assertEqual([g["GroupId"] for g in self.a.describe_security_groups(
                Filters=[{"Name": "tag-key", "Values": ["owner"]}])["SecurityGroups"]], [sg])

            # DeleteTags: with a value only if it matches; without, whatever it is.
            self.a.delete_tags(Resources=[key], Tags=[{"Key": "env", "Value": "wrong"}])
            self.assertIn((key, "key-pair", "env", "prod"), tags(Filters=[{"Name": "resource-id", "Values": [key]}]))
            self.a.delete_tags(Resources=[key], Tags=[{"Key": "env"}])
            self.assertEqual(tags(Filters=[{"Name": "resource-id", "Values": [key]}]),
                             [(key, "key-pair", "owner", "ana")])
            self.a.delete_tags(Resources=[sg])
            self.assertEqual(tags(Filters=[{"Name": "resource-id", "Values": [sg]}]), [])

            # Another account can neither see nor change these tags.
            self.assertEqual(self.b.describe_tags(Filters=[{"Name": "resource-id", "Values": [key]}])["Tags"], [])
            self.assertEqual(error_code(self.b.create_tags, Resources=[key], Tags=[{"Key": "x", "Value": "y"}]),
                             "InvalidKeyPair.NotFound")
            self.assertEqual(error_code(self.b.delete_tags, Resources=[sg]), "InvalidGroup.NotFound")
            self.assertEqual(error_code(self.a.create_tags, Resources=["i-12345678"], Tags=[{"Key": "x", "Value": "y"}]),
                             "InvalidID")
            self.assertEqual(error_code(self.a.create_tags, Resources=[key], Tags=[{"Key": "aws:x", "Value": "y"}]),
                             "InvalidParameterValue")
            self.assertEqual(error_code(self.a.create_tags, Resources=[key],
                                        Tags=[{"Key": "k%d" % i, "Value": "v"} for i in range(51)]),
                             "TagLimitExceeded")
        finally:
            self.a.delete_key_pair(KeyName="e2e-tagged")
            self.a.delete_security_group(GroupName="e2e-tagged")

    def test_pagination(self):
        groups = [self.a.create_security_group(GroupName="e2e-page-%d" % i, Description="p")["GroupId"]
                  for i in range(7)]
        try:
            self.a.create_tags(Resources=groups, Tags=[{"Key": "page", "Value": "yes"}])
            flt = [{"Name": "key", "Values": ["page"]}]
            first = self.a.describe_tags(Filters=flt, MaxResults=5)
            self.assertEqual(len(first["Tags"]), 5)
            second = self.a.describe_tags(Filters=flt, MaxResults=5, NextToken=first["NextToken"])
            self.assertEqual(len(second["Tags"]), 2)
            self.assertNotIn("NextToken", second)
            seen = [t["ResourceId"] for t in first["Tags"] + second["Tags"]]
            self.assertEqual(sorted(seen), sorted(groups))
            # boto3's paginator walks the same pages.
            pages = self.a.get_paginator("describe_security_groups").paginate(
                Filters=[{"Name": "group-name", "Values": ["e2e-page-*"]}], PaginationConfig={"PageSize": 5})
            self.assertEqual(sorted(g["GroupId"] for p in pages for g in p["SecurityGroups"]), sorted(groups))
            # Tokens are tamper-proof and bound to the account.
            token = first["NextToken"]
            forged = "1" + token[1:] if not token.startswith("1") else "2" + token[1:]
            self.assertEqual(error_code(self.a.describe_tags, Filters=flt, MaxResults=5, NextToken=forged),
                             "InvalidParameterValue")
            self.assertEqual(error_code(self.b.describe_tags, MaxResults=5, NextToken=token),
                             "InvalidParameterValue")
            self.assertEqual(error_code(self.a.describe_tags, MaxResults=2), "InvalidParameterValue")
        finally:
            for g in groups:
                self.a.delete_security_group(GroupId=g)

    # ---- the log: every API write is an event carrying its request id
    def test_audit_and_replay_of_api_writes(self):
        created = self.a.create_security_group(GroupName="e2e-audit", Description="audited")
        rid = created["ResponseMetadata"]["RequestId"]
        sg = created["GroupId"]
        try:
            out = self.k.kumoctl("audit", sg, "--json")
            self.assertEqual(out.returncode, 0, out.stderr)
            events = [json.loads(l) for l in out.stdout.splitlines()]
            self.assertEqual(events[0]["type"], "security_group_created")
            self.assertEqual(events[0]["request_id"], rid)
            account = self.a.describe_security_groups(GroupIds=[sg])["SecurityGroups"][0]["OwnerId"]
            self.assertEqual(events[0]["principal"], "arn:aws:iam::%s:root" % account)
            now = datetime.datetime.utcnow() + datetime.timedelta(seconds=5)
            out = self.k.kumoctl("replay", "--json", "--at=" + now.strftime("%Y-%m-%dT%H:%M:%SZ"))
            self.assertEqual(out.returncode, 0, out.stderr)
            state = {a["account_id"]: a for a in json.loads(out.stdout)["accounts"]}
            self.assertIn(sg, [g["group_id"] for g in state[account]["security_groups"]])
            self.assertNotIn(sg, [g["group_id"] for g in state[self.b_account]["security_groups"]])
        finally:
            self.a.delete_security_group(GroupId=sg)

    # ---- authentication
    def test_bad_credentials_and_unsigned_requests_are_refused(self):
        wrong_secret = client(self.k, self.k.admin_key, "x" * 40)
        self.assertEqual(error_code(wrong_secret.describe_regions), "SignatureDoesNotMatch")
        unknown = client(self.k, "AKIAAAAAAAAAAAAAAAAA", "x" * 40)
        self.assertEqual(error_code(unknown.describe_regions), "AuthFailure")
        status, body = self.raw("POST", "/", b"Action=DescribeRegions&Version=2016-11-15",
                                {"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual((status, self.code_of(body)), (401, "MissingAuthenticationToken"))
        stale = datetime.datetime.utcnow() - datetime.timedelta(minutes=20)
        status, body = self.signed("Action=DescribeRegions&Version=2016-11-15", when=stale)
        self.assertEqual((status, self.code_of(body)), (400, "RequestExpired"))
        # A revoked key stops working.
        out = self.k.kumoctl("key", "create", self.b_account, "--json")
        self.assertEqual(out.returncode, 0, out.stderr)
        extra = json.loads(out.stdout)
        c = client(self.k, extra["access_key_id"], extra["secret_access_key"])
        self.assertEqual(len(c.describe_regions()["Regions"]), 1)
        self.assertEqual(self.k.kumoctl("key", "delete", self.b_account, extra["access_key_id"]).returncode, 0)
        self.assertEqual(error_code(c.describe_regions), "AuthFailure")

    def test_presigned_url(self):
        url = self.a.generate_presigned_url("describe_regions", Params={}, ExpiresIn=60, HttpMethod="GET")
        with urllib.request.urlopen(url) as resp:
            self.assertIn("<regionName>kumo-1</regionName>", resp.read().decode())
        # botocore signs EC2 presigned URLs for POST by default: the method is
        # part of the signature, so GET on such a URL is refused.
        url = self.a.generate_presigned_url("describe_regions", Params={}, ExpiresIn=60)
        with urllib.request.urlopen(urllib.request.Request(url, method="POST", data=b"")) as resp:
            self.assertIn("<regionName>kumo-1</regionName>", resp.read().decode())
        status, body = self.raw("GET", url[len(self.k.endpoint):])
        self.assertEqual((status, self.code_of(body)), (403, "SignatureDoesNotMatch"))

    def test_aws_cli(self):
        env = dict(os.environ, AWS_SHARED_CREDENTIALS_FILE=self.k.creds_file, AWS_CONFIG_FILE="/dev/null")
        base = ["/usr/bin/aws", "--profile", "kumo", "--region", REGION, "--endpoint-url", self.k.endpoint,
                "--output", "json", "ec2"]
        run = lambda *a: subprocess.run(base + list(a), env=env, capture_output=True, text=True, timeout=60)
        out = run("describe-regions")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(json.loads(out.stdout)["Regions"][0]["RegionName"], REGION)
        out = run("create-key-pair", "--key-name", "e2e-cli")
        self.assertEqual(out.returncode, 0, out.stderr)
        out = run("describe-key-pairs", "--key-names", "e2e-cli")
        self.assertEqual([k["KeyName"] for k in json.loads(out.stdout)["KeyPairs"]], ["e2e-cli"])
        self.assertEqual(run("delete-key-pair", "--key-name", "e2e-cli").returncode, 0)
        out = run("describe-key-pairs", "--key-names", "e2e-cli")
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("InvalidKeyPair.NotFound", out.stderr)

    # ---- bad input: a clean 4xx, and the server stays up
    def test_bad_input_gets_clean_errors(self):
        cases = [
            ("Action=DescribeRegions&Version=2016-11-15&RegionName.1=%zz", 400, "InvalidParameterValue"),
            ("Action=DescribeRegions&Version=2016-11-15&RegionName.1=%C3%28", 400, "InvalidParameterValue"),
            ("Version=2016-11-15", 400, "MissingParameter"),
            ("Action=DescribeRegions&Version=2009-01-01", 400, "NoSuchVersion"),
            ("Action=LaunchMissiles&Version=2016-11-15", 400, "InvalidAction"),
            ("Action=DescribeRegions&Version=2016-11-15&DryRun=maybe", 400, "InvalidParameterValue"),
            ("&".join(["Action=DescribeKeyPairs", "Version=2016-11-15"] +
                      ["KeyName.%d=k%d" % (i, i) for i in range(1, 10001)]), 400, "InvalidParameterValue"),
            ("Action=DescribeKeyPairs&Version=2016-11-15&KeyName.0x1=a", 400, "InvalidParameterValue"),
            # A misspelt parameter is refused, as EC2 does, not silently ignored.
            ("Action=DescribeRegions&Version=2016-11-15&RegionNames.1=kumo-1", 400, "UnknownParameter"),
            ("Action=CreateKeyPair&Version=2016-11-15&KeyName=x&KeyKind=rsa", 400, "UnknownParameter"),
        ]
        for body, status, code in cases:
            got_status, got = self.signed(body)
            self.assertEqual((got_status, self.code_of(got)), (status, code), body[:80])
            self.assertIn("<RequestID>", got)
            self.assert_still_serving()
        got_status, got = self.signed("Action=DescribeRegions&Version=2016-11-15", content_type="application/json")
        self.assertEqual((got_status, self.code_of(got)), (400, "InvalidParameterValue"))
        # A body over the 1 MiB limit is refused before anything else.
        got_status, got = self.raw("POST", "/", b"A=" + b"x" * (2 << 20),
                                   {"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual((got_status, self.code_of(got)), (413, "RequestEntityTooLarge"))
        self.assert_still_serving()
        # Garbage that is not HTTP at all.
        with socket.create_connection(("127.0.0.1", self.k.port), timeout=10) as s:
            s.sendall(b"\x00\x01\x02 NOT HTTP\r\n\r\n")
            reply = s.recv(4096)
        self.assertTrue(reply.startswith(b"HTTP/1.1 400"), reply[:40])
        self.assert_still_serving()


if __name__ == "__main__":
    unittest.main()
