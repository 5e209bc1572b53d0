// KeyPair and SecurityGroup aggregates and the shared tag logic: pure
// decide/apply/codec, no actors or disk.
#include "actors/keypair/keypair.h"
#include "actors/securitygroup/security_group.h"
#include "actors/tags.h"
#include "tests/support/aggregate_checks.h"

#include <gtest/gtest.h>

using namespace kumo;
using namespace kumo::actors;

namespace {

using kumo::checks::expect_codec_round_trip;
using kumo::checks::fold;

const std::string account_id = "123456789012";

}  // namespace

TEST(KeyPair, NamesAreUniquePerAccountAndDeleteIsIdempotent) {
  using A = keypair::aggregate;
  const auto id = keypair::aggregate_id(account_id, "deploy");
  EXPECT_TRUE(A::valid_id(id));
  EXPECT_FALSE(A::valid_id("12345/deploy"));
  EXPECT_FALSE(A::valid_id(account_id + "/"));
  EXPECT_FALSE(A::valid_id(account_id + "/bad\x01name"));

  keypair::create_key_pair key{"key-0123456789abcdef0", "ed25519", "fp", "ssh-ed25519 AAAA", 5, {{"a", "b"}}};
  auto d = A::decide(id, {}, key);
  ASSERT_FALSE(d.error);
  auto s = fold<A>(d.events);
  EXPECT_TRUE(s.exists);
  EXPECT_EQ(s.account_id, account_id);
  EXPECT_EQ(s.key_name, "deploy");
  EXPECT_EQ(s.key, key);

  auto dup = A::decide(id, s, key);
  ASSERT_TRUE(dup.error);
  EXPECT_EQ(dup.error->code, "InvalidKeyPair.Duplicate");
  auto bad_type = A::decide(id, {}, keypair::create_key_pair{"key-1", "dsa"});
  ASSERT_TRUE(bad_type.error);
  EXPECT_EQ(bad_type.error->code, "InvalidParameterValue");

  auto del = A::decide(id, s, keypair::delete_key_pair{});
  ASSERT_EQ(del.events.size(), 1u);
  auto gone = fold<A>(del.events, s);
  EXPECT_FALSE(gone.exists);
  auto again = A::decide(id, gone, keypair::delete_key_pair{});
  EXPECT_FALSE(again.error);
  EXPECT_TRUE(again.events.empty());
  auto tag_missing = A::decide(id, gone, change_tags{{{"k", "v"}}, {}});
  ASSERT_TRUE(tag_missing.error);
  EXPECT_EQ(tag_missing.error->code, "InvalidKeyPair.NotFound");

  expect_codec_round_trip<A>({keypair::key_pair_created{account_id, "deploy", key},
                              tags_changed{{{"env", "prod"}}, {{"a", true, ""}}},
                              keypair::key_pair_deleted{key.key_pair_id}});
}

TEST(SecurityGroup, RulesAreSetsAndDefaultGroupIsSpecial) {
  using A = security_group::aggregate;
  using security_group::rule;
  const auto id = security_group::aggregate_id(account_id, "web");
  EXPECT_TRUE(A::valid_id(id));
  EXPECT_FALSE(A::valid_id(account_id + "/sg-looks-like-an-id"));

  auto s = fold<A>(A::decide(id, {}, security_group::create_group{"sg-1", "web tier", 1, {}}).events);
  EXPECT_TRUE(s.exists);
  EXPECT_EQ(s.group_id, "sg-1");
  EXPECT_TRUE(s.ingress.empty());
  EXPECT_EQ(s.egress, security_group::default_egress());

  rule ssh{"tcp", 22, 22, "10.0.0.0/8", "", "admins"};
  auto grant = A::decide(id, s, security_group::authorize{security_group::direction::ingress, {ssh}});
  ASSERT_FALSE(grant.error);
  s = fold<A>(grant.events, s);
  ASSERT_EQ(s.ingress.size(), 1u);
  // The same rule with another description is still the same rule.
  rule ssh_again = ssh;
  ssh_again.description = "other";
  auto dup = A::decide(id, s, security_group::authorize{security_group::direction::ingress, {ssh_again}});
  ASSERT_TRUE(dup.error);
  EXPECT_EQ(dup.error->code, "InvalidPermission.Duplicate");
  auto twice = A::decide(id, s, security_group::authorize{security_group::direction::egress,
                                                           {rule{"udp", 53, 53, "10.0.0.0/8"}, rule{"udp", 53, 53, "10.0.0.0/8"}}});
  ASSERT_TRUE(twice.error);

  auto missing = A::decide(id, s, security_group::revoke{security_group::direction::ingress, {rule{"tcp", 80, 80, "0.0.0.0/0"}}});
  ASSERT_TRUE(missing.error);
  EXPECT_EQ(missing.error->code, "InvalidPermission.NotFound");
  s = fold<A>(A::decide(id, s, security_group::revoke{security_group::direction::ingress, {ssh_again}}).events, s);
  EXPECT_TRUE(s.ingress.empty());

  const auto default_id = security_group::aggregate_id(account_id, "default");
  auto def = fold<A>(A::decide(default_id, {}, security_group::create_group{"sg-d", "default", 1, {}}).events);
  ASSERT_EQ(def.ingress.size(), 1u);
  EXPECT_EQ(def.ingress[0].source_group_id, "sg-d");  // members reach each other
  auto del = A::decide(default_id, def, security_group::delete_group{});
  ASSERT_TRUE(del.error);
  EXPECT_EQ(del.error->code, "CannotDelete");
  auto del_web = A::decide(id, s, security_group::delete_group{});
  ASSERT_FALSE(del_web.error);
  EXPECT_FALSE(fold<A>(del_web.events, s).exists);

  expect_codec_round_trip<A>({security_group::group_created{account_id, "web", {"sg-1", "d", 1, {{"t", "v"}}}},
                              security_group::rules_authorized{security_group::direction::egress, {ssh}},
                              security_group::rules_revoked{security_group::direction::egress, {ssh}},
                              tags_changed{{{"x", "y"}}, {}}});
}

TEST(Tags, ChangesUpsertRemoveAndRespectTheLimit) {
  std::vector<resource_tag> tags{{"env", "prod"}, {"owner", "ana"}};
  auto next = apply_tag_change(tags, {{{"env", "test"}, {"new", ""}}, {{"owner", false, "bob"}}});
  EXPECT_EQ(next, (std::vector<resource_tag>{{"env", "test"}, {"owner", "ana"}, {"new", ""}}));
  next = apply_tag_change(next, {{}, {{"owner", false, "ana"}, {"new", true, ""}}});
  EXPECT_EQ(next, (std::vector<resource_tag>{{"env", "test"}}));
  std::vector<resource_tag> many;
  for (int i = 0; i < 50; ++i) many.push_back({"k" + std::to_string(i), ""});
  EXPECT_FALSE(check_tag_change(many, {{{"k1", "overwrite"}}, {}}));
  auto err = check_tag_change(many, {{{"k50", ""}}, {}});
  ASSERT_TRUE(err);
  EXPECT_EQ(err->code, "TagLimitExceeded");
}
