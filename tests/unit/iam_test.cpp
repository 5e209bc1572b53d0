// IAM's pure logic: policy parsing and evaluation, the User and Group
// aggregates, the directory read model, instance sharing rules and the LDAP
// sync plan. No actors, no disk, no network.
#include "actors/iam/directory.h"
#include "actors/iam/group.h"
#include "actors/iam/policy.h"
#include "actors/iam/sharing.h"
#include "actors/iam/user.h"
#include "actors/ldap/directory_client.h"
#include "actors/ldap/sync_plan.h"
#include "tests/support/aggregate_checks.h"

#include <gtest/gtest.h>

using namespace kumo;
using namespace kumo::actors::iam;
namespace ldap = kumo::actors::ldap;

namespace {

const std::string kAcct = "123456789012";

policy parsed(const std::string& doc) {
  std::string err;
  auto p = parse_policy(doc, err);
  EXPECT_TRUE(p) << err << " in " << doc;
  return p.value_or(policy{});
}

std::string allow(const std::string& action, const std::string& resource = "*") {
  return R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":")" + action + R"(","Resource":")" +
         resource + R"("}]})";
}
std::string deny(const std::string& action, const std::string& resource = "*") {
  return R"({"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":[")" + action + R"("],"Resource":[")" +
         resource + R"("]}})";
}

template <class A>
typename A::state run(const std::string& id, typename A::state s, const typename A::command& c) {
  auto d = A::decide(id, s, c);
  EXPECT_FALSE(d.error) << d.error->code << ": " << d.error->message;
  return checks::fold<A>(d.events, std::move(s));
}

template <class A>
std::string refused(const std::string& id, const typename A::state& s, const typename A::command& c) {
  auto d = A::decide(id, s, c);
  EXPECT_TRUE(d.events.empty());
  return d.error ? d.error->code : "";
}

persistence::event_record record(const std::string& stream, uint64_t seq, uint64_t gseq,
                                 const persistence::new_event& ne, const std::string& principal = "p") {
  return {stream, seq, gseq, ne.type, ne.schema_version, 1000, principal, "r", ne.payload};
}

}  // namespace

TEST(Policy, WildcardsMatchLikeIam) {
  EXPECT_TRUE(wildcard_match("ec2:Describe*", "ec2:DescribeInstances", true));
  EXPECT_TRUE(wildcard_match("ec2:describe*", "ec2:DescribeInstances", true));
  EXPECT_FALSE(wildcard_match("ec2:describe*", "ec2:DescribeInstances", false));
  EXPECT_FALSE(wildcard_match("ec2:Describe*", "ec2:RunInstances", true));
  EXPECT_TRUE(wildcard_match("ec2:*Instances", "ec2:StopInstances", true));
  EXPECT_TRUE(wildcard_match("ec2:St?pInstances", "ec2:StopInstances", true));
  EXPECT_TRUE(wildcard_match("*", "", true));
  EXPECT_TRUE(wildcard_match("a*b*c", "aXXbYYbZc", false));
  EXPECT_FALSE(wildcard_match("a*b*c", "aXXbYYbZ", false));
}

TEST(Policy, ExplicitDenyWinsThenAllowElseDeny) {
  auto describe = parsed(allow("ec2:Describe*"));
  auto no_regions = parsed(deny("ec2:DescribeRegions"));
  EXPECT_EQ(evaluate({describe}, "ec2:DescribeInstances", {"*"}), verdict::allow);
  EXPECT_EQ(evaluate({describe}, "ec2:RunInstances", {"*"}), verdict::implicit_deny);
  EXPECT_EQ(evaluate({}, "ec2:DescribeInstances", {"*"}), verdict::implicit_deny);
  EXPECT_EQ(evaluate({describe, no_regions}, "ec2:DescribeRegions", {"*"}), verdict::explicit_deny);
  EXPECT_EQ(evaluate({no_regions, describe}, "ec2:DescribeRegions", {"*"}), verdict::explicit_deny);
  EXPECT_EQ(evaluate({describe, no_regions}, "ec2:DescribeImages", {"*"}), verdict::allow);
  EXPECT_EQ(evaluate({parsed(allow("*"))}, "iam:CreateUser", {"*"}), verdict::allow);
}

TEST(Policy, ResourcesAreArnsWithWildcards) {
  const std::string i1 = "arn:aws:ec2:kumo-1:" + kAcct + ":instance/i-1";
  const std::string i2 = "arn:aws:ec2:kumo-1:" + kAcct + ":instance/i-2";
  auto only_i1 = parsed(allow("ec2:StopInstances", i1));
  EXPECT_EQ(evaluate({only_i1}, "ec2:StopInstances", {i1}), verdict::allow);
  EXPECT_EQ(evaluate({only_i1}, "ec2:StopInstances", {i2}), verdict::implicit_deny);
  // Every resource of a request must be allowed.
  EXPECT_EQ(evaluate({only_i1}, "ec2:StopInstances", {i1, i2}), verdict::implicit_deny);
  // An ARN pattern does not cover requests without resource ARNs.
  EXPECT_EQ(evaluate({only_i1}, "ec2:StopInstances", {"*"}), verdict::implicit_deny);
  auto all_instances = parsed(allow("ec2:*", "arn:aws:ec2:*:" + kAcct + ":instance/*"));
  EXPECT_EQ(evaluate({all_instances}, "ec2:TerminateInstances", {i1, i2}), verdict::allow);
  EXPECT_EQ(evaluate({all_instances, parsed(deny("ec2:TerminateInstances", i2))}, "ec2:TerminateInstances", {i1, i2}),
            verdict::explicit_deny);
}

TEST(Policy, NotActionAllowsEverythingElse) {
  auto p = parsed(R"({"Statement":[{"Effect":"Allow","NotAction":"iam:*","Resource":"*"}]})");
  EXPECT_EQ(evaluate({p}, "ec2:RunInstances", {"*"}), verdict::allow);
  EXPECT_EQ(evaluate({p}, "iam:CreateUser", {"*"}), verdict::implicit_deny);
}

TEST(Policy, MalformedDocumentsAreRefusedWithAReason) {
  for (const std::string doc :
       {"", "not json", "[]", R"({"Version":"2012-10-17"})", R"({"Statement":[]})",
        R"({"Version":"2001-01-01","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}})",
        R"({"Statement":{"Effect":"Maybe","Action":"*","Resource":"*"}})",
        R"({"Statement":{"Effect":"Allow","Resource":"*"}})", R"({"Statement":{"Effect":"Allow","Action":"*"}})",
        R"({"Statement":{"Effect":"Allow","Action":"RunInstances","Resource":"*"}})",
        R"({"Statement":{"Effect":"Allow","Action":"ec2:*","Resource":"i-123"}})",
        R"({"Statement":{"Effect":"Allow","Action":[],"Resource":"*"}})",
        R"({"Statement":{"Effect":"Allow","Action":"ec2:*","Resource":"*","Principal":"*"}})",
        R"({"Statement":{"Effect":"Allow","Action":"ec2:*","Resource":"*","Condition":{}}})",
        R"({"Statement":{"Effect":"Allow","Action":"ec2:*","Resource":"*","Bogus":1}})"}) {
    std::string why;
    EXPECT_FALSE(parse_policy(doc, why)) << doc;
    EXPECT_FALSE(why.empty()) << doc;
  }
  auto too_big = allow("ec2:Describe*") + std::string(3000, ' ');
  EXPECT_EQ(check_policy_document(too_big, max_user_policy_size)->code, "LimitExceeded");
  EXPECT_EQ(check_policy_document("{", max_user_policy_size)->code, "MalformedPolicyDocument");
  EXPECT_FALSE(check_policy_document(allow("ec2:*"), max_user_policy_size));
}

TEST(User, LifecycleKeysAndPolicies) {
  using U = user_aggregate;
  const auto id = member_id(kAcct, "alice");
  auto s = run<U>(id, {}, create_user{"AIDAX", "/", 1});
  EXPECT_EQ(refused<U>(id, s, create_user{"AIDAY", "/", 2}), "EntityAlreadyExists");
  auto k1 = new_access_key(1), k2 = new_access_key(2), k3 = new_access_key(3);
  s = run<U>(id, s, create_access_key{k1});
  s = run<U>(id, s, create_access_key{k2});
  EXPECT_EQ(refused<U>(id, s, create_access_key{k3}), "LimitExceeded");
  // Temporary keys do not count against the two.
  auto t1 = new_temporary_key(10, 20);
  s = run<U>(id, s, issue_temporary_key{t1, 10});
  EXPECT_EQ(s.keys.size(), 3u);
  auto t2 = new_temporary_key(30, 90);
  s = run<U>(id, s, issue_temporary_key{t2, 30});  // t1 expired: dropped in the same command
  ASSERT_EQ(s.keys.size(), 3u);
  EXPECT_EQ(s.keys.back().access_key_id, t2.access_key_id);
  EXPECT_EQ(t2.access_key_id.substr(0, 4), "ASIA");
  s = run<U>(id, s, update_access_key{k1.access_key_id, "Inactive"});
  EXPECT_EQ(s.keys.front().status, "Inactive");
  EXPECT_EQ(refused<U>(id, s, update_access_key{k1.access_key_id, "Sleeping"}), "ValidationError");
  EXPECT_EQ(refused<U>(id, s, delete_access_key{"AKIANOPE000000000000"}), "NoSuchEntity");
  EXPECT_EQ(refused<U>(id, s, put_user_policy{"p", "{}"}), "MalformedPolicyDocument");
  s = run<U>(id, s, put_user_policy{"p", allow("ec2:*")});
  EXPECT_EQ(refused<U>(id, s, delete_user{}), "DeleteConflict");
  EXPECT_EQ(refused<U>(id, s, delete_user_policy{"q"}), "NoSuchEntity");
  auto gone = run<U>(id, s, delete_user{true});  // the directory sync: keys and policies go too
  EXPECT_FALSE(gone.exists);
  auto d = U::decide(id, s, delete_user{true});
  EXPECT_EQ(std::count_if(d.events.begin(), d.events.end(),
                          [](const user_event& e) { return std::holds_alternative<user_key_deleted>(e); }),
            3);
  EXPECT_EQ(refused<U>(id, {}, create_access_key{k1}), "NoSuchEntity");
  EXPECT_FALSE(U::valid_id(kAcct + "/bad name"));
  EXPECT_FALSE(U::valid_id(kAcct + "/" + std::string(65, 'a')));
  EXPECT_TRUE(U::valid_id(kAcct + "/a.b+c=d,e@f_g-h"));
}

TEST(User, EventsAndSnapshotsRoundTrip) {
  auto k = new_access_key(5);
  checks::expect_codec_round_trip<user_aggregate>(
      {user_created{kAcct, "alice", {"AIDAX", "/eng/", 1, "ldap", "uid=alice,dc=x"}}, user_key_created{k},
       user_key_created{new_temporary_key(6, 7)}, user_key_status_changed{k.access_key_id, "Inactive"},
       user_policy_put{"p", allow("ec2:*")}, user_policy_deleted{"p"}, user_key_deleted{k.access_key_id}});
}

TEST(Group, MembershipPoliciesAndSharing) {
  using G = group_aggregate;
  const auto id = member_id(kAcct, "devs");
  EXPECT_EQ(refused<G>(id, {}, add_member{"alice"}), "NoSuchEntity");
  auto s = run<G>(id, {}, create_group{"AGPAX", "/", 1});
  s = run<G>(id, s, add_member{"alice"});
  EXPECT_TRUE(G::decide(id, s, add_member{"alice"}).events.empty());  // idempotent, as IAM
  EXPECT_EQ(refused<G>(id, s, remove_member{"bob"}), "NoSuchEntity");
  EXPECT_EQ(refused<G>(id, s, delete_group{}), "DeleteConflict");
  s = run<G>(id, s, put_group_policy{"p", allow("ec2:*")});
  s = run<G>(id, s, share_resource{"i-1", "arn:aws:iam::" + kAcct + ":user/alice"});
  EXPECT_TRUE(G::decide(id, s, share_resource{"i-1", "x"}).events.empty());
  EXPECT_EQ(refused<G>(id, s, unshare_resource{"i-2"}), "InvalidParameterValue");
  EXPECT_EQ(s.shared.size(), 1u);
  auto gone = run<G>(id, s, delete_group{true});
  EXPECT_FALSE(gone.exists);
  checks::expect_codec_round_trip<G>({group_created{kAcct, "devs", {"AGPAX", "/", 1, "ldap", "cn=devs"}},
                                      member_added{"alice"}, member_added{"bob"}, member_removed{"alice"},
                                      group_policy_put{"p", allow("ec2:*")}, resource_shared{"i-1", "o"},
                                      resource_unshared{"i-1"}, group_policy_deleted{"p"}});
}

TEST(Directory, KeysResolveToUsersWithUserAndGroupPolicies) {
  directory_model m;
  uint64_t g = 0;
  auto alice = member_id(kAcct, "alice");
  auto key = new_access_key(1);
  auto ue = [&](const user_event& e, uint64_t seq) {
    m.apply(record("user/" + alice, seq, ++g, user_aggregate::encode(e)));
  };
  auto ge = [&](const group_event& e, uint64_t seq) {
    m.apply(record("group/" + member_id(kAcct, "devs"), seq, ++g, group_aggregate::encode(e)));
  };
  ue(user_created{kAcct, "alice", {"AIDAX", "/", 1}}, 1);
  ue(user_key_created{key}, 2);
  ue(user_policy_put{"own", allow("ec2:Describe*")}, 3);
  ge(group_created{kAcct, "devs", {"AGPAX", "/", 1}}, 1);
  ge(group_policy_put{"team", deny("ec2:RunInstances")}, 2);
  m.apply(record("instance/" + kAcct + "/i-1", 1, ++g, {"instance_launched", 1, "{}"}, "arn:aws:iam::" + kAcct + ":user/alice"));
  auto who = m.find_key(key.access_key_id);
  ASSERT_TRUE(who);
  EXPECT_EQ(who->user_arn, "arn:aws:iam::" + kAcct + ":user/alice");
  EXPECT_EQ(who->policies.size(), 1u);  // not a member yet
  ge(member_added{"alice"}, 3);
  who = m.find_key(key.access_key_id);
  EXPECT_EQ(who->policies.size(), 2u);
  EXPECT_EQ(evaluate_documents(who->policies, "ec2:RunInstances", {"*"}), verdict::explicit_deny);
  // Checkpoint and reload: same answers.
  directory_model again;
  ASSERT_TRUE(again.load(m.save()));
  EXPECT_EQ(again.find_key(key.access_key_id)->policies, who->policies);
  EXPECT_EQ(again.of_account(kAcct).resource_owners.at("i-1"), "arn:aws:iam::" + kAcct + ":user/alice");
  EXPECT_TRUE(again.of_account("999999999999").users.empty());
  auto mine = again.of_user(kAcct, "alice");
  ASSERT_EQ(mine.users.size(), 1u);
  ASSERT_EQ(mine.groups.size(), 1u);
  EXPECT_EQ(mine.resource_owners.size(), 1u);
  EXPECT_TRUE(again.of_user(kAcct, "bob").groups.empty());
  ue(user_key_deleted{key.access_key_id}, 4);
  EXPECT_FALSE(m.find_key(key.access_key_id));
}

TEST(Sharing, MembersSeeOwnersAndGrantedGroupsManage) {
  directory d;
  const auto arn = [](const std::string& u) { return "arn:aws:iam::" + kAcct + ":user/" + u; };
  user_state a, b, c;
  a.exists = b.exists = c.exists = true;
  a.user_name = "a";
  b.user_name = "b";
  c.user_name = "c";
  d.users = {a, b, c};
  group_state g;
  g.exists = true;
  g.group_name = "g";
  g.members = {"a", "b"};
  d.groups = {g};
  d.resource_owners["i-1"] = arn("a");
  const caller A{arn("a"), "a"}, B{arn("b"), "b"}, C{arn("c"), "c"}, root{"arn:aws:iam::" + kAcct + ":root", ""};
  const std::string i1 = "arn:aws:ec2:kumo-1:" + kAcct + ":instance/i-1";
  EXPECT_TRUE(may_see_resource(d, A, "i-1"));
  EXPECT_FALSE(may_see_resource(d, B, "i-1"));  // not shared yet
  EXPECT_TRUE(may_see_resource(d, root, "i-1"));
  EXPECT_EQ(check_share(d, B, "i-1", "g")->code, "UnauthorizedOperation");  // not the owner
  EXPECT_EQ(check_share(d, A, "i-1", "nope")->code, "InvalidGroup.NotFound");
  EXPECT_FALSE(check_share(d, A, "i-1", "g"));
  d.groups[0].shared["i-1"] = arn("a");
  EXPECT_TRUE(may_see_resource(d, B, "i-1"));
  EXPECT_FALSE(may_see_resource(d, C, "i-1"));
  EXPECT_FALSE(may_manage_resource(d, B, "i-1", "ec2:TerminateInstances", i1));
  EXPECT_TRUE(may_manage_resource(d, A, "i-1", "ec2:TerminateInstances", i1));
  EXPECT_TRUE(may_manage_resource(d, root, "i-1", "ec2:TerminateInstances", i1));
  d.groups[0].policies["ops"] = allow("ec2:TerminateInstances", "arn:aws:ec2:*:*:instance/*");
  EXPECT_TRUE(may_manage_resource(d, B, "i-1", "ec2:TerminateInstances", i1));
  EXPECT_FALSE(may_manage_resource(d, B, "i-1", "ec2:ModifyInstanceAttribute", i1));
  // Images: the root's are the account's catalogue; a user's are private until shared.
  d.resource_owners["emi-root"] = root.principal;
  d.resource_owners["emi-a"] = arn("a");
  EXPECT_TRUE(may_see_image(d, C, "emi-root"));
  EXPECT_TRUE(may_see_image(d, A, "emi-a"));
  EXPECT_FALSE(may_see_image(d, B, "emi-a"));
  d.groups[0].shared["emi-a"] = arn("a");
  EXPECT_TRUE(may_see_image(d, B, "emi-a"));
  EXPECT_FALSE(may_see_image(d, C, "emi-a"));
  // A member of another group that is not a member of g cannot share with g.
  d.resource_owners["i-2"] = arn("c");
  EXPECT_EQ(check_share(d, C, "i-2", "g")->code, "UnauthorizedOperation");
}

TEST(LdapSync, PlanCreatesChangesAndRemovesOnlyLdapEntries) {
  ldap::ldap_snapshot dir;
  dir.users = {{"alice", "uid=alice,ou=people,dc=x"}, {"bob", "uid=bob,ou=people,dc=x"}, {"bad name", "uid=bad name"}};
  dir.groups = {{"devs", "cn=devs,ou=groups,dc=x", {"alice", "bob", "ghost"}}};
  directory kumo;
  auto plan = ldap::plan_sync(dir, kumo);
  using S = ldap::sync_step;
  std::vector<S> want{{S::create_user, "alice", "", "uid=alice,ou=people,dc=x"},
                      {S::create_user, "bob", "", "uid=bob,ou=people,dc=x"},
                      {S::create_group, "devs", "", "cn=devs,ou=groups,dc=x"},
                      {S::add_member, "devs", "alice", ""},
                      {S::add_member, "devs", "bob", ""}};
  EXPECT_EQ(plan.steps, want);
  EXPECT_EQ(plan.skipped.size(), 1u);

  // kumo after that sync, plus an IAM user "carol" and an IAM group "ops" with bob.
  auto user = [](const std::string& n, const std::string& source) {
    user_state u;
    u.exists = true;
    u.user_name = n;
    u.spec.source = source;
    return u;
  };
  auto group = [](const std::string& n, const std::string& source, std::set<std::string> members) {
    group_state g;
    g.exists = true;
    g.group_name = n;
    g.spec.source = source;
    g.members = std::move(members);
    return g;
  };
  kumo.users = {user("alice", "ldap"), user("bob", "ldap"), user("carol", "iam")};
  kumo.groups = {group("devs", "ldap", {"alice", "bob"}), group("ops", "iam", {"bob", "carol"}),
                 group("old", "ldap", {"alice"})};
  EXPECT_TRUE(ldap::plan_sync(dir, kumo).steps.empty() == false);  // "old" left LDAP
  // bob leaves LDAP, alice leaves devs, carol appears in LDAP (an IAM user: skipped), "old" is gone.
  dir.users = {{"alice", "uid=alice"}, {"carol", "uid=carol"}};
  dir.groups = {{"devs", "cn=devs", {"carol"}}};
  plan = ldap::plan_sync(dir, kumo);
  std::vector<S> want2{{S::remove_member, "devs", "alice", ""}, {S::remove_member, "devs", "bob", ""},
                       {S::remove_member, "ops", "bob", ""},    {S::delete_group, "old", "", ""},
                       {S::delete_user, "bob", "", ""}};
  EXPECT_EQ(plan.steps, want2);
  EXPECT_EQ(plan.skipped.size(), 1u);  // carol is an IAM user
  // Already in sync: nothing to do (a second sync is a no-op).
  kumo.users = {user("alice", "ldap"), user("carol", "iam")};
  kumo.groups = {group("devs", "ldap", {}), group("ops", "iam", {"carol"})};
  EXPECT_TRUE(ldap::plan_sync(dir, kumo).steps.empty());
}

TEST(LdapSync, DnsAndFilterValuesAreNormalisedAndEscaped) {
  EXPECT_EQ(ldap::normalize_dn("uid=Alice, ou=People,DC=Example"), "uid=alice,ou=people,dc=example");
  EXPECT_EQ(ldap::escape_filter_value("a*(b)\\"), "a\\2a\\28b\\29\\5c");
}
