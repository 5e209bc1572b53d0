"""End-to-end LDAP: a real slapd (started here, 127.0.0.1, free port) and a
real kumod (fake hypervisor): sync, membership changes, removed users lose
access, password login to temporary keys, LDAP down, and SIGKILL during a
sync.

    KUMO_BIN_DIR=build/bin /usr/bin/python3 tests/e2e/test_ldap.py -v
"""
import json
import os
import subprocess
import time
import unittest
import urllib.parse
import urllib.request
import urllib.error

from ldap_server import Slapd, group_ldif, user_dn, user_ldif, GROUPS
from test_ec2_api import Kumod, client, error_code
from test_iam import iam_client, wait_until

DESCRIBE = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "ec2:Describe*", "Resource": "*"}]})


def members(iam, group):
    return sorted(u["UserName"] for u in iam.get_group(GroupName=group)["Users"])


class LdapTest(unittest.TestCase):
    """Steps in order (test_1..): they share one directory and one kumod."""

    @classmethod
    def setUpClass(cls):
        cls.ldap = Slapd()
        cls.ldap.add(user_ldif("alice", "alice-pw") + user_ldif("bob", "bob-pw") + user_ldif("carol", "carol-pw") +
                     group_ldif("devs", ["alice", "bob"]) + group_ldif("ops", ["carol"]))
        cls.k = Kumod("--hypervisor=fake", *cls.ldap.kumod_flags())
        cls.iam = iam_client(cls.k, cls.k.admin_key, cls.k.admin_secret)

    @classmethod
    def tearDownClass(cls):
        cls.k.stop()
        cls.ldap.destroy()

    def sync(self, ok=True):
        out = self.k.kumoctl("ldap", "sync")
        if ok:
            self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        return out

    def login(self, user, password):
        return subprocess.run([os.path.join(os.environ.get("KUMO_BIN_DIR", "build/bin"), "kumoctl"),
                               "--endpoint=" + self.k.endpoint, "login", user, "--json"],
                              capture_output=True, text=True, timeout=60, env=dict(os.environ, KUMO_PASSWORD=password))

    def users(self):
        return sorted(u["UserName"] for u in self.iam.list_users()["Users"])

    def test_1_sync_mirrors_users_and_groups(self):
        self.assertEqual(self.users(), [])
        out = self.sync()
        self.assertIn("create_user alice", out.stdout)
        self.assertEqual(self.users(), ["alice", "bob", "carol"])
        self.assertEqual(members(self.iam, "devs"), ["alice", "bob"])
        self.assertEqual(members(self.iam, "ops"), ["carol"])
        # A second sync changes nothing.
        out = self.sync()
        self.assertIn("ldap sync: 0 change(s)", out.stdout)
        audit = self.k.kumoctl("audit", "devs")
        self.assertIn("member_added", audit.stdout)
        self.assertIn("user=alice", audit.stdout)

    def test_2_membership_change_appears_after_next_sync(self):
        self.ldap.modify("dn: cn=devs,%s\nchangetype: modify\ndelete: member\nmember: %s\n-\nadd: member\nmember: %s\n"
                         % (GROUPS, user_dn("bob"), user_dn("carol")))
        self.assertEqual(members(self.iam, "devs"), ["alice", "bob"])  # not before the sync
        out = self.sync()
        self.assertIn("remove_member devs bob", out.stdout)
        self.assertIn("add_member devs carol", out.stdout)
        self.assertEqual(members(self.iam, "devs"), ["alice", "carol"])
        audit = self.k.kumoctl("audit", "devs").stdout
        self.assertIn("member_removed", audit)
        self.assertIn("user=bob", audit)

    def test_3_deleted_ldap_user_loses_access(self):
        key = self.iam.create_access_key(UserName="bob")["AccessKey"]
        self.iam.put_user_policy(UserName="bob", PolicyName="d", PolicyDocument=DESCRIBE)
        bob = client(self.k, key["AccessKeyId"], key["SecretAccessKey"])
        bob.describe_regions()
        self.ldap.delete(user_dn("bob"))
        self.sync()
        self.assertEqual(error_code(bob.describe_regions), "AuthFailure")
        self.assertEqual(error_code(self.iam.get_user, UserName="bob"), "NoSuchEntity")
        self.assertEqual(self.users(), ["alice", "carol"])
        r = self.login("bob", "bob-pw")
        self.assertNotEqual(r.returncode, 0)

    def test_4_password_login_gives_temporary_keys(self):
        self.iam.put_group_policy(GroupName="devs", PolicyName="describe", PolicyDocument=DESCRIBE)
        r = self.login("alice", "alice-pw")
        self.assertEqual(r.returncode, 0, r.stderr)
        creds = json.loads(r.stdout)
        self.assertTrue(creds["access_key_id"].startswith("ASIA"))
        self.assertTrue(creds["arn"].endswith(":user/alice"))
        alice = client(self.k, creds["access_key_id"], creds["secret_access_key"])
        self.assertEqual(error_code(alice.describe_regions), "AuthFailure")  # no session token
        import boto3
        from botocore.config import Config
        alice = boto3.client("ec2", region_name="kumo-1", endpoint_url=self.k.endpoint,
                             aws_access_key_id=creds["access_key_id"],
                             aws_secret_access_key=creds["secret_access_key"],
                             aws_session_token=creds["session_token"], config=Config(retries={"max_attempts": 1}))
        alice.describe_regions()  # devs' policy
        self.assertEqual(error_code(alice.create_key_pair, KeyName="nope"), "UnauthorizedOperation")
        # Not listed among the user's access keys; the login is an event.
        self.assertEqual(self.iam.list_access_keys(UserName="alice")["AccessKeyMetadata"], [])
        # Wrong password, unknown user, empty password: a clear refusal, no key.
        for user, pw in [("alice", "wrong"), ("nobody", "x"), ("alice", "")]:
            r = self.login(user, pw)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("AuthFailure", r.stderr)
            self.assertIn("wrong user name or password" if pw else "", r.stderr)
        # The raw API action: unsigned POST, IAM's XML.
        body = urllib.parse.urlencode({"Action": "KumoLogin", "Version": "2010-05-08", "UserName": "carol",
                                       "Password": "carol-pw"}).encode()
        with urllib.request.urlopen(urllib.request.Request(self.k.endpoint + "/", data=body)) as resp:
            xml = resp.read().decode()
        self.assertIn("<KumoLoginResult><Credentials><AccessKeyId>ASIA", xml)
        self.assertIn("<Expiration>", xml)
        # Any other unsigned action is still refused.
        body = urllib.parse.urlencode({"Action": "DescribeRegions", "Version": "2016-11-15"}).encode()
        with self.assertRaises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(urllib.request.Request(self.k.endpoint + "/", data=body))
        self.assertIn(e.exception.code, (400, 401, 403))
        type(self).alice = alice

    def test_5_ldap_down_is_a_clear_error_and_changes_nothing(self):
        before = self.k.kumoctl("events", "--json").stdout.count("\n")
        users, devs = self.users(), members(self.iam, "devs")
        self.ldap.stop()
        try:
            out = self.sync(ok=False)
            self.assertNotEqual(out.returncode, 0)
            self.assertIn("ServiceUnavailable", out.stderr)
            self.assertIn("Can't contact LDAP server", out.stderr)
            self.assertIn("changed nothing", out.stderr)
            r = self.login("alice", "alice-pw")
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("cannot be reached", r.stderr)
            self.alice.describe_regions()  # existing keys keep working
            self.assertEqual(self.users(), users)
            self.assertEqual(members(self.iam, "devs"), devs)
            self.assertEqual(self.k.kumoctl("events", "--json").stdout.count("\n"), before)
        finally:
            self.ldap.start()
        self.sync()

    def crowd_events(self, kind):
        events = [json.loads(l) for l in self.k.kumoctl("events", "--json").stdout.splitlines() if l.strip()]
        return [e for e in events if e["type"] == kind and e["stream"].endswith("/crowd")]

    def test_6_sigkill_during_sync_then_restart_converges(self):
        crowd = ["user%04d" % i for i in range(1000)]
        self.ldap.add("".join(user_ldif(u, "pw-" + u) for u in crowd) + group_ldif("crowd", crowd))
        sync = subprocess.Popen([os.path.join(os.environ.get("KUMO_BIN_DIR", "build/bin"), "kumoctl"),
                                 "--data-dir=" + self.k.dir, "--endpoint=" + self.k.endpoint, "ldap", "sync"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

        def adding_members():
            try:
                return len(members(self.iam, "crowd")) >= 20
            except Exception:  # the group is not there yet
                return False
        wait_until("the sync to be adding members to crowd", adding_members, 120)
        self.k.kill()
        sync.communicate(timeout=30)
        partial = len(self.crowd_events("member_added"))  # read offline from the log
        self.assertGreaterEqual(partial, 20)
        self.assertLess(partial, len(crowd), "the sync finished before the kill; nothing was interrupted")
        data_dir = self.k.dir
        type(self).k = Kumod("--hypervisor=fake", *self.ldap.kumod_flags(), data_dir=data_dir)
        type(self).iam = iam_client(self.k, self.k.admin_key, self.k.admin_secret)
        self.sync()
        self.assertEqual(self.users(), sorted(["alice", "carol"] + crowd))
        self.assertEqual(members(self.iam, "crowd"), crowd)
        self.assertEqual(members(self.iam, "devs"), ["alice", "carol"])
        # No duplicates: one user_created per user stream, one member_added per member.
        events = [json.loads(l) for l in self.k.kumoctl("events", "--json").stdout.splitlines() if l.strip()]
        created = [e["stream"] for e in events if e["type"] == "user_created"]
        self.assertEqual(len(created), len(set(created)))
        self.assertEqual(len(self.crowd_events("member_added")), len(crowd))
        self.assertIn("ldap sync: 0 change(s)", self.sync().stdout)
        out = self.k.kumoctl("verify")
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)

    def test_7_periodic_sync(self):
        self.ldap.add(user_ldif("dave", "dave-pw"))
        periodic = Kumod("--hypervisor=fake", *self.ldap.kumod_flags(sync_seconds=1))
        try:
            iam = iam_client(periodic, periodic.admin_key, periodic.admin_secret)
            def synced():
                try:
                    return members(iam, "ops") == ["carol"] and len(members(iam, "crowd")) == 1000
                except Exception:  # the groups come after the users
                    return False
            wait_until("the periodic sync", synced, 60)
            self.assertIn("dave", [u["UserName"] for u in iam.list_users()["Users"]])
        finally:
            periodic.stop()


class LdapTlsTest(unittest.TestCase):
    """StartTLS and ldaps:// against slapd with a self-signed certificate."""

    def test_starttls_and_ldaps_verify_the_server(self):
        ldap = Slapd(tls=True)
        try:
            ldap.add(user_ldif("erin", "erin-pw") + group_ldif("tls", ["erin"]))
            for flags in (ldap.kumod_flags() + ["--ldap-starttls=true", "--ldap-ca-file=" + ldap.ca],
                          ldap.kumod_flags(uri=ldap.ldaps_uri) + ["--ldap-ca-file=" + ldap.ca]):
                k = Kumod("--hypervisor=fake", *flags)
                try:
                    out = k.kumoctl("ldap", "sync")
                    self.assertEqual(out.returncode, 0, out.stderr)
                    iam = iam_client(k, k.admin_key, k.admin_secret)
                    self.assertEqual(members(iam, "tls"), ["erin"])
                    r = subprocess.run([os.path.join(os.environ.get("KUMO_BIN_DIR", "build/bin"), "kumoctl"),
                                        "--endpoint=" + k.endpoint, "login", "erin", "--json"], capture_output=True,
                                       text=True, timeout=60, env=dict(os.environ, KUMO_PASSWORD="erin-pw"))
                    self.assertEqual(r.returncode, 0, r.stderr)
                finally:
                    k.stop()
            # Without the CA the certificate is not trusted: a clear error, nothing written.
            k = Kumod("--hypervisor=fake", *ldap.kumod_flags(), "--ldap-starttls=true")
            try:
                out = k.kumoctl("ldap", "sync")
                self.assertNotEqual(out.returncode, 0)
                self.assertIn("StartTLS", out.stderr)
                iam = iam_client(k, k.admin_key, k.admin_secret)
                self.assertEqual(iam.list_users()["Users"], [])
            finally:
                k.stop()
        finally:
            ldap.destroy()


if __name__ == "__main__":
    unittest.main()
