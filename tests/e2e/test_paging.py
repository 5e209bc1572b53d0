"""End-to-end paging as EC2 does it (issue 16, item 2), on the fake hypervisor.

The paginated operations are taken from botocore's own model of EC2 (every
operation whose input has MaxResults and that has a paginator); each one kumo
serves must accept MaxResults=1000. For the eight kumo pages -- DescribeInstances,
DescribeInstanceStatus, DescribeInstanceTypes, DescribeSecurityGroups,
DescribeSnapshots, DescribeTags, DescribeVolumeStatus, DescribeVolumes:
  * MaxResults=5 pages walked with NextToken give exactly the unpaged set;
  * a MaxResults above the operation's ceiling is served as the ceiling
    (DescribeInstanceTypes is started with 120 types, so its ceiling of 100 shows);
  * below 5, or not an integer: InvalidParameterValue; with an id list:
    InvalidParameterCombination; nothing changes on any of these;
  * a NextToken is bound to the action, the account and the filters/parameters,
    and still works after kumod is SIGKILLed and restarted on its data dir;
  * both aws CLIs (Debian's 2.9 and, if on PATH, 1.45+) list everything, also
    with --page-size 5, --page-size 1000 (MaxResults=1000 above the ceilings of
    DescribeVolumes and DescribeInstanceTypes) and --max-items/--starting-token.

    KUMO_BIN_DIR=build/bin /usr/bin/python3 tests/e2e/test_paging.py -v
"""
import concurrent.futures
import http.client
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest
import urllib.parse

import botocore.auth
from botocore import xform_name
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from test_ec2_api import REGION, Kumod, client, error_code
from test_volumes import eventually, new_account, sparse_disk

MODEL = "/usr/lib/python3/dist-packages/botocore/data/ec2/2016-11-15/"
ZONE = "kumo-1a"
N = 7  # of each resource: two pages of at most 5

# EC2's documented ceilings.
CEILING = {
    "DescribeInstances": 1000, "DescribeInstanceStatus": 1000, "DescribeInstanceTypes": 100,
    "DescribeSecurityGroups": 1000, "DescribeSnapshots": 1000, "DescribeTags": 1000,
    "DescribeVolumeStatus": 1000, "DescribeVolumes": 500,
}
# Id lists that cannot go with MaxResults: boto3 name, query name.
ID_LISTS = {
    "DescribeInstances": ("InstanceIds", "instances"), "DescribeInstanceStatus": ("InstanceIds", "instances"),
    "DescribeSnapshots": ("SnapshotIds", "snapshots"), "DescribeVolumes": ("VolumeIds", "volumes"),
    "DescribeVolumeStatus": ("VolumeIds", "volumes"),
}

# Default instance types (t1.micro ... c1.xlarge) plus enough more to pass
# DescribeInstanceTypes' ceiling of 100.
DEFAULT_TYPES = ["t1.micro:1:256:5", "m1.small:1:256:5", "m1.medium:1:512:10", "c1.medium:2:512:10",
                 "m1.large:2:512:10", "m1.xlarge:2:1024:10", "c1.xlarge:2:2048:10"]
TYPES = DEFAULT_TYPES + ["pg%d.nano:1:128:1" % i for i in range(113)]
FLAGS = ("--hypervisor=fake", "--instance-types=" + ",".join(TYPES))


def ids_of(op, response):
    """The items of one page, as comparable ids."""
    if op == "DescribeInstances":
        return [i["InstanceId"] for r in response["Reservations"] for i in r["Instances"]]
    if op == "DescribeInstanceStatus":
        return [s["InstanceId"] for s in response["InstanceStatuses"]]
    if op == "DescribeInstanceTypes":
        return [t["InstanceType"] for t in response["InstanceTypes"]]
    if op == "DescribeSecurityGroups":
        return [g["GroupId"] for g in response["SecurityGroups"]]
    if op == "DescribeSnapshots":
        return [s["SnapshotId"] for s in response["Snapshots"]]
    if op == "DescribeTags":
        return [(t["ResourceId"], t["Key"]) for t in response["Tags"]]
    if op == "DescribeVolumeStatus":
        return [s["VolumeId"] for s in response["VolumeStatuses"]]
    if op == "DescribeVolumes":
        return [v["VolumeId"] for v in response["Volumes"]]
    raise KeyError(op)


def paginated_operations_from_model():
    with open(MODEL + "service-2.json") as f:
        service = json.load(f)
    with open(MODEL + "paginators-1.json") as f:
        paginators = json.load(f)["pagination"]
    out = []
    for name, op in service["operations"].items():
        if "input" not in op or name not in paginators:
            continue
        shape = service["shapes"][op["input"]["shape"]]
        if "MaxResults" in shape.get("members", {}):
            out.append((name, shape.get("required", [])))
    return out


def signed(k, body, key, secret):
    """POSTs a raw query body signed by botocore's own SigV4 signer (boto3
    would refuse to send a MaxResults that is not an integer)."""
    req = AWSRequest(method="POST", url=k.endpoint + "/", data=body,
                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    botocore.auth.SigV4Auth(Credentials(key, secret), "ec2", REGION).add_auth(req)
    conn = http.client.HTTPConnection("127.0.0.1", k.port, timeout=30)
    conn.request("POST", "/", body=body, headers=dict(req.headers.items()))
    resp = conn.getresponse()
    text = resp.read().decode("utf-8", "replace")
    conn.close()
    m = re.search(r"<Code>([^<]+)</Code>", text)
    return resp.status, (m.group(1) if m else None), text


def newer_aws_cli():
    """The aws CLI on PATH other than Debian's, if it reports aws-cli/1.45 or later."""
    try:
        paths = subprocess.run(["which", "-a", "aws"], capture_output=True, text=True).stdout.split()
    except OSError:
        return None
    for p in paths:
        if os.path.realpath(p) in (os.path.realpath("/usr/bin/aws"), os.path.realpath("/bin/aws")):
            continue
        try:
            out = subprocess.run([p, "--version"], capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            continue
        m = re.search(r"aws-cli/(\d+)\.(\d+)", out.stdout + out.stderr)
        if m and (int(m.group(1)), int(m.group(2))) >= (1, 45) and int(m.group(1)) == 1:
            return p
    return None


class PagingTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.k = Kumod(*FLAGS)
        cls.tmp = tempfile.mkdtemp(prefix="kumo-e2e-paging-")
        try:
            cls.make_resources()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def make_resources(cls):
        cls.a = client(cls.k, cls.k.admin_key, cls.k.admin_secret)
        cls.b_account, cls.b = new_account(cls.k, "team-b")
        a = cls.a
        image = a.register_image(Name="paging-disk", ImageLocation=sparse_disk(cls.tmp))["ImageId"]
        cls.instances = [i["InstanceId"] for i in a.run_instances(
            ImageId=image, MinCount=N, MaxCount=N, InstanceType="t1.micro")["Instances"]]
        cls.volumes = [a.create_volume(Size=1, AvailabilityZone=ZONE)["VolumeId"] for _ in range(N)]
        cls.groups = [a.create_security_group(GroupName="pg-%d" % i, Description="paging")["GroupId"]
                      for i in range(N)]
        for i, g in enumerate(cls.groups):
            a.create_tags(Resources=[g], Tags=[{"Key": "paging", "Value": "g%d" % i}])
        eventually(lambda: all(v["State"] == "available"
                               for v in a.describe_volumes(VolumeIds=cls.volumes)["Volumes"]), 60, "volumes available")
        cls.snapshots = [a.create_snapshot(VolumeId=cls.volumes[0], Description="p%d" % i)["SnapshotId"]
                         for i in range(N)]
        eventually(lambda: all(s["State"] == "completed"
                               for s in a.describe_snapshots(SnapshotIds=cls.snapshots)["Snapshots"]),
                   60, "snapshots completed")
        eventually(lambda: all(i["State"]["Name"] == "running"
                               for r in a.describe_instances(InstanceIds=cls.instances)["Reservations"]
                               for i in r["Instances"]), 60, "instances running")

    @classmethod
    def tearDownClass(cls):
        cls.k.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    # ---- helpers
    def call(self, op, ec2=None, **kw):
        return getattr(ec2 or self.a, xform_name(op))(**kw)

    def raw(self, params, key=None, secret=None):
        body = urllib.parse.urlencode([("Version", "2016-11-15")] + list(params))
        return signed(self.k, body, key or self.k.admin_key, secret or self.k.admin_secret)

    def walk(self, op, page_size=5, ec2=None, **kw):
        """All pages of `op` with MaxResults=page_size; returns the list of pages' ids."""
        pages, token = [], None
        for _ in range(200):
            args = dict(kw, MaxResults=page_size)
            if token:
                args["NextToken"] = token
            got = self.call(op, ec2, **args)
            pages.append(ids_of(op, got))
            token = got.get("NextToken")
            if not token:
                return pages
        self.fail("%s: no last page after 200 pages" % op)

    def counts(self):
        return tuple(len(ids_of(op, self.call(op))) for op in sorted(CEILING))

    def first_token(self, op, ec2=None, **kw):
        got = self.call(op, ec2, MaxResults=5, **kw)
        self.assertIn("NextToken", got, (op, kw))
        return got["NextToken"]

    # ---- the operations, from botocore's model
    def test_1_every_paginated_operation_kumo_serves_takes_max_results_1000(self):
        ops = paginated_operations_from_model()
        self.assertGreater(len(ops), 50)
        served = []
        for op, required in ops:
            status, code, text = self.raw([("Action", op), ("MaxResults", "1000")])
            if code == "InvalidAction":
                continue
            served.append(op)
            self.assertEqual((status, code), (200, None), (op, text[:300]))
            self.assertEqual(required, [], op)  # boto3 can call it with MaxResults alone
            got = self.call(op, MaxResults=1000)
            self.assertEqual(got["ResponseMetadata"]["HTTPStatusCode"], 200, op)
        self.assertTrue(set(CEILING) <= set(served), sorted(set(CEILING) - set(served)))

    def one_filter_each(self):
        """A filter per paginated operation that selects some of this account's items."""
        return {
            "DescribeInstances": [{"Name": "instance-state-name", "Values": ["running"]}],
            "DescribeInstanceStatus": [{"Name": "availability-zone", "Values": [ZONE]}],
            "DescribeInstanceTypes": [{"Name": "vcpu-info.default-vcpus", "Values": ["1"]}],
            "DescribeSecurityGroups": [{"Name": "group-name", "Values": ["pg-*"]}],
            "DescribeSnapshots": [{"Name": "volume-id", "Values": [self.volumes[0]]}],
            "DescribeTags": [{"Name": "key", "Values": ["paging"]}],
            "DescribeVolumeStatus": [{"Name": "availability-zone", "Values": [ZONE]}],
            "DescribeVolumes": [{"Name": "size", "Values": ["1"]}],
        }

    # ---- walking pages
    def test_2_pages_of_five_give_exactly_the_unpaged_set(self):
        expected_at_least = {
            "DescribeInstances": set(self.instances), "DescribeInstanceStatus": set(self.instances),
            "DescribeInstanceTypes": {t.split(":")[0] for t in TYPES},
            "DescribeSecurityGroups": set(self.groups), "DescribeSnapshots": set(self.snapshots),
            "DescribeTags": {(g, "paging") for g in self.groups},
            "DescribeVolumeStatus": set(self.volumes), "DescribeVolumes": set(self.volumes),
        }
        filtered = self.one_filter_each()  # one filtered walk each, the filter kept on every page
        for op in sorted(CEILING):
            for kw in ({}, {"Filters": filtered[op]}):
                with self.subTest(op=op, **kw):
                    unpaged = ids_of(op, self.call(op, **kw))
                    if kw:  # every filter above selects more than a page
                        self.assertGreater(len(unpaged), 5, (op, unpaged))
                    else:
                        self.assertTrue(expected_at_least[op] <= set(unpaged), (op, unpaged))
                    pages = self.walk(op, **kw)
                    walked = [i for p in pages for i in p]
                    self.assertEqual(len(walked), len(set(walked)), "duplicates: %s" % pages)
                    self.assertEqual(set(walked), set(unpaged))
                    self.assertTrue(all(len(p) <= 5 for p in pages), [len(p) for p in pages])
                    self.assertGreaterEqual(len(pages), 2)
        # boto3's own paginator walks the same.
        for op in ("DescribeVolumes", "DescribeInstanceTypes"):
            got = [i for page in self.a.get_paginator(xform_name(op)).paginate(PaginationConfig={"PageSize": 5})
                   for i in ids_of(op, page)]
            self.assertEqual(sorted(got), sorted(ids_of(op, self.call(op))), op)

    # ---- above the ceiling: the ceiling, never an error
    def test_3_max_results_above_the_ceiling_is_served_as_the_ceiling(self):
        for op, ceiling in sorted(CEILING.items()):
            unpaged = ids_of(op, self.call(op))
            for n in sorted({ceiling, 1000, ceiling + 100, 2147483647}):
                with self.subTest(op=op, max_results=n):
                    got = self.call(op, MaxResults=n)
                    if len(unpaged) <= ceiling:
                        self.assertEqual(sorted(ids_of(op, got)), sorted(unpaged))
                        self.assertNotIn("NextToken", got)
                    else:  # more than a page: the ceiling, then the rest
                        first = ids_of(op, got)
                        self.assertEqual(len(first), ceiling)
                        rest = self.call(op, MaxResults=n, NextToken=got["NextToken"])
                        self.assertNotIn("NextToken", rest)
                        self.assertEqual(sorted(first + ids_of(op, rest)), sorted(unpaged))
        # The instance types pass their ceiling: a page of 100, then 20.
        self.assertEqual(len(ids_of("DescribeInstanceTypes", self.call("DescribeInstanceTypes"))), 120)
        # DescribeVolumes' ceiling is 500: 600 is served, not refused.
        got = self.a.describe_volumes(MaxResults=600)
        self.assertEqual(sorted(ids_of("DescribeVolumes", got)), sorted(self.volumes))
        self.assertNotIn("NextToken", got)

    # ---- bad MaxResults, ids with MaxResults: errors, and nothing changes
    def test_4_bad_max_results_and_ids_with_max_results_are_refused(self):
        before = self.counts()
        for op in sorted(CEILING):
            for value in ("4", "0", "-5", "abc", "5x", "5.5", "1e3", ""):
                with self.subTest(op=op, max_results=value):
                    status, code, text = self.raw([("Action", op), ("MaxResults", value)])
                    self.assertEqual((status, code), (400, "InvalidParameterValue"), text[:300])
            for token in ("abc", "5", "5.", "0." + "0" * 32):
                with self.subTest(op=op, next_token=token):
                    status, code, text = self.raw([("Action", op), ("MaxResults", "5"), ("NextToken", token)])
                    self.assertEqual((status, code), (400, "InvalidParameterValue"), text[:300])
        ids = {"instances": self.instances, "snapshots": self.snapshots, "volumes": self.volumes}
        for op, (param, which) in sorted(ID_LISTS.items()):
            with self.subTest(op=op, ids=param):
                self.assertEqual(error_code(getattr(self.a, xform_name(op)), **{param: ids[which][:2]},
                                            MaxResults=5), "InvalidParameterCombination")
                self.assertEqual(error_code(getattr(self.a, xform_name(op)), **{param: ids[which][:1]},
                                            MaxResults=1000), "InvalidParameterCombination")
                # The ids alone are still fine.
                self.assertEqual(len(ids_of(op, self.call(op, **{param: ids[which][:2]}))), 2)
        self.assertEqual(self.counts(), before)

    # ---- NextToken is bound to the action, the account and the filters
    def test_5_next_token_is_bound_to_action_account_and_filters(self):
        before = self.counts()
        tokens = {op: self.first_token(op) for op in CEILING}
        for op, token in sorted(tokens.items()):
            # The token works where it was made.
            self.assertIn(ids_of(op, self.call(op, MaxResults=5, NextToken=token))[0],
                          set(ids_of(op, self.call(op))), op)
            for other in sorted(CEILING):
                if other != op:
                    with self.subTest(token_of=op, used_with=other):
                        self.assertEqual(error_code(getattr(self.a, xform_name(other)), MaxResults=5,
                                                    NextToken=token), "InvalidParameterValue")
            with self.subTest(token_of=op, used_by="another account"):
                self.assertEqual(error_code(getattr(self.b, xform_name(op)), MaxResults=5, NextToken=token),
                                 "InvalidParameterValue")
            with self.subTest(token_of=op, forged=True):
                forged = ("B" if token[0] != "B" else "C") + token[1:]
                self.assertEqual(error_code(getattr(self.a, xform_name(op)), MaxResults=5, NextToken=forged),
                                 "InvalidParameterValue")
        # Other filters (even ones that select the same items), and the other way round.
        other_filters = self.one_filter_each()
        for op, flt in sorted(other_filters.items()):
            fn = getattr(self.a, xform_name(op))
            with self.subTest(op=op, token_from="no filter", used_with=flt):
                self.assertEqual(error_code(fn, MaxResults=5, NextToken=tokens[op], Filters=flt),
                                 "InvalidParameterValue")
            filtered = self.first_token(op, Filters=flt)
            with self.subTest(op=op, token_from=flt, used_with="no filter"):
                self.assertEqual(error_code(fn, MaxResults=5, NextToken=filtered), "InvalidParameterValue")
            changed = [dict(flt[0], Values=flt[0]["Values"] + ["zz-other"])]
            with self.subTest(op=op, token_from=flt, used_with=changed):
                self.assertEqual(error_code(fn, MaxResults=5, NextToken=filtered, Filters=changed),
                                 "InvalidParameterValue")
            # The same filters: the token is good.
            self.assertNotEqual(ids_of(op, fn(MaxResults=5, NextToken=filtered, Filters=flt)), [], op)
        # Other parameters: DescribeSnapshots' owners, DescribeInstanceStatus' IncludeAllInstances.
        own = self.first_token("DescribeSnapshots", OwnerIds=["self"])
        self.assertEqual(error_code(self.a.describe_snapshots, MaxResults=5, NextToken=own),
                         "InvalidParameterValue")
        self.assertEqual(error_code(self.a.describe_snapshots, MaxResults=5, NextToken=tokens["DescribeSnapshots"],
                                    OwnerIds=["self"]), "InvalidParameterValue")
        self.assertEqual(error_code(self.a.describe_instance_status, MaxResults=5,
                                    NextToken=tokens["DescribeInstanceStatus"], IncludeAllInstances=True),
                         "InvalidParameterValue")
        # Another account's own token does not work for this one either.
        _, c = new_account(self.k, "team-c")
        for i in range(6):
            c.create_security_group(GroupName="c-%d" % i, Description="c")
        c_token = self.first_token("DescribeSecurityGroups", ec2=c)
        self.assertEqual(error_code(self.a.describe_security_groups, MaxResults=5, NextToken=c_token),
                         "InvalidParameterValue")
        self.assertEqual(self.counts(), before)

    # ---- both aws CLIs
    def test_6_aws_clis_list_everything(self):
        env = dict(os.environ, AWS_ACCESS_KEY_ID=self.k.admin_key, AWS_SECRET_ACCESS_KEY=self.k.admin_secret,
                   AWS_DEFAULT_REGION=REGION, AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null",
                   AWS_PAGER="", AWS_EC2_METADATA_DISABLED="true")
        env.pop("AWS_PROFILE", None)
        clis = ["/usr/bin/aws"]
        newer = newer_aws_cli()
        if newer:
            clis.append(newer)
        else:
            print("\n(no aws-cli 1.45+ on PATH: only Debian's aws CLI is tried)")
        want = {
            "describe-volumes": ("Volumes", "VolumeId", sorted(self.volumes), []),
            "describe-snapshots": ("Snapshots", "SnapshotId", sorted(ids_of(
                "DescribeSnapshots", self.a.describe_snapshots(OwnerIds=["self"]))), ["--owner-ids", "self"]),
            "describe-instances": ("Reservations", "InstanceId", sorted(self.instances), []),
            "describe-tags": ("Tags", "ResourceId", sorted(r for r, _ in ids_of("DescribeTags", self.a.describe_tags())), []),
            "describe-security-groups": ("SecurityGroups", "GroupId",
                                         sorted(ids_of("DescribeSecurityGroups", self.a.describe_security_groups())), []),
            "describe-instance-types": ("InstanceTypes", "InstanceType", sorted(t.split(":")[0] for t in TYPES), []),
        }

        def run(cli, *args):
            return subprocess.run([cli, "ec2"] + list(args) + ["--endpoint-url", self.k.endpoint, "--output", "json"],
                                  capture_output=True, text=True, env=env, timeout=120)

        def items(command, out):
            key, field, _, _ = want[command]
            doc = json.loads(out.stdout)
            if key == "Reservations":
                return [i[field] for r in doc[key] for i in r["Instances"]], doc
            return [x[field] for x in doc[key]], doc

        jobs = []
        for cli in clis:
            for command, (_, _, _, extra) in want.items():
                jobs.append((cli, command, tuple([command] + extra)))
            jobs.append((cli, "describe-volumes", ("describe-volumes", "--page-size", "5")))
            # MaxResults=1000, above the ceilings of 500 and 100: served, and the CLI follows the token.
            jobs.append((cli, "describe-volumes", ("describe-volumes", "--page-size", "1000")))
            jobs.append((cli, "describe-instance-types", ("describe-instance-types", "--page-size", "1000")))
            jobs.append((cli, "describe-instance-types", ("describe-instance-types", "--page-size", "5")))
            jobs.append((cli, "describe-volumes", ("describe-volumes", "--max-items", "3")))
        with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
            results = list(pool.map(lambda j: run(j[0], *j[2]), jobs))
        continued = []
        for (cli, command, args), out in zip(jobs, results):
            with self.subTest(cli=cli, args=args):
                self.assertEqual(out.returncode, 0, out.stderr[-2000:])
                got, doc = items(command, out)
                if "--max-items" in args:
                    self.assertEqual(len(got), 3)
                    self.assertIn("NextToken", doc)
                    continued.append((cli, got, doc["NextToken"]))
                else:
                    self.assertEqual(sorted(got), want[command][2])
        # The CLI's own token (--starting-token) gives the rest.
        for cli, first, token in continued:
            with self.subTest(cli=cli, starting_token=True):
                out = run(cli, "describe-volumes", "--starting-token", token)
                self.assertEqual(out.returncode, 0, out.stderr[-2000:])
                rest, _ = items("describe-volumes", out)
                self.assertEqual(sorted(first + rest), sorted(self.volumes))

    # ---- a token outlives a SIGKILL of kumod (last: it replaces kumod)
    def test_9_next_token_still_valid_after_a_restart(self):
        pages = self.walk("DescribeVolumes")
        self.assertEqual(len(pages), 2)
        first = self.a.describe_volumes(MaxResults=5)
        self.assertEqual(ids_of("DescribeVolumes", first), pages[0])
        token = first["NextToken"]
        self.assertTrue(os.path.exists(os.path.join(self.k.dir, "api-token.key")))
        self.k.kill()
        k = type(self).k = Kumod(*FLAGS, data_dir=self.k.dir)
        self.k = k
        a = type(self).a = client(k, k.admin_key, k.admin_secret)
        second = a.describe_volumes(MaxResults=5, NextToken=token)
        self.assertEqual(ids_of("DescribeVolumes", second), pages[1])
        self.assertNotIn("NextToken", second)
        # Still bound after the restart: another action refuses it.
        self.assertEqual(error_code(a.describe_snapshots, MaxResults=5, NextToken=token), "InvalidParameterValue")


if __name__ == "__main__":
    unittest.main()
