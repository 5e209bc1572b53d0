// The Account aggregate's pure logic: decide, apply, codec. No actors, no disk.
#include "actors/account/account.h"
#include "actors/account/accounts_view.h"

#include <gtest/gtest.h>

using namespace kumo;
using namespace kumo::actors::account;

namespace {

const std::string id = "123456789012";

state fold(const std::vector<event>& events, state s = {}) {
  for (const auto& e : events) s = aggregate::apply(std::move(s), e);
  return s;
}

state created(const access_key& k) {
  auto d = aggregate::decide(id, {}, create_account{"team-a", false, k});
  EXPECT_FALSE(d.error);
  return fold(d.events);
}

persistence::event_record stored(const event& e, uint64_t gseq, const std::string& stream = "account/" + id) {
  auto ne = aggregate::encode(e);
  return {stream, gseq, gseq, ne.type, ne.schema_version, 1000 + int64_t(gseq), "p", "r", ne.payload};
}

}  // namespace

TEST(Account, CreateEmitsAccountAndItsFirstKeyTogether) {
  auto k = new_access_key();
  auto d = aggregate::decide(id, {}, create_account{"team-a", true, k});
  ASSERT_FALSE(d.error);
  ASSERT_EQ(d.events.size(), 2u);
  auto s = fold(d.events);
  EXPECT_TRUE(s.exists);
  EXPECT_EQ(s.account_id, id);
  EXPECT_EQ(s.name, "team-a");
  EXPECT_TRUE(s.admin);
  ASSERT_EQ(s.keys.size(), 1u);
  EXPECT_EQ(s.keys[0], k);
}

TEST(Account, RefusesWhatAwsRefuses) {
  auto s = created(new_access_key());
  auto again = aggregate::decide(id, s, create_account{"x", false, new_access_key()});
  ASSERT_TRUE(again.error);
  EXPECT_EQ(again.error->code, "EntityAlreadyExists");
  EXPECT_TRUE(again.events.empty());

  auto nameless = aggregate::decide(id, {}, create_account{"", false, new_access_key()});
  ASSERT_TRUE(nameless.error);
  EXPECT_EQ(nameless.error->code, "InvalidParameterValue");

  auto no_account = aggregate::decide(id, {}, create_access_key{new_access_key()});
  ASSERT_TRUE(no_account.error);
  EXPECT_EQ(no_account.error->code, "NoSuchEntity");

  auto second = aggregate::decide(id, s, create_access_key{new_access_key()});
  ASSERT_FALSE(second.error);
  s = fold(second.events, s);
  auto third = aggregate::decide(id, s, create_access_key{new_access_key()});
  ASSERT_TRUE(third.error);
  EXPECT_EQ(third.error->code, "LimitExceeded");

  auto unknown = aggregate::decide(id, s, delete_access_key{"AKIANOTAKEY000000000"});
  ASSERT_TRUE(unknown.error);
  EXPECT_EQ(unknown.error->code, "NoSuchEntity");
  EXPECT_NE(unknown.error->message.find("AKIANOTAKEY000000000"), std::string::npos);
}

TEST(Account, DeleteRemovesOnlyThatKey) {
  auto k1 = new_access_key(), k2 = new_access_key();
  auto s = created(k1);
  s = fold(aggregate::decide(id, s, create_access_key{k2}).events, s);
  auto d = aggregate::decide(id, s, delete_access_key{k1.access_key_id});
  ASSERT_FALSE(d.error);
  s = fold(d.events, s);
  ASSERT_EQ(s.keys.size(), 1u);
  EXPECT_EQ(s.keys[0], k2);
}

TEST(Account, IdsHaveAwsShapes) {
  for (int i = 0; i < 100; ++i) {
    auto a = new_account_id();
    EXPECT_TRUE(aggregate::valid_id(a)) << a;
    auto k = new_access_key();
    EXPECT_EQ(k.access_key_id.size(), 20u);
    EXPECT_EQ(k.access_key_id.substr(0, 4), "AKIA");
    EXPECT_EQ(k.secret_access_key.size(), 40u);
  }
  EXPECT_FALSE(aggregate::valid_id("12345678901"));
  EXPECT_FALSE(aggregate::valid_id("12345678901a"));
  EXPECT_NE(new_access_key().access_key_id, new_access_key().access_key_id);
}

TEST(Account, EventsAndSnapshotsRoundTripThroughTheCodec) {
  auto k = new_access_key();
  std::vector<event> events{account_created{id, "n", true}, access_key_created{k},
                            access_key_deleted{k.access_key_id}};
  state direct, decoded;
  for (size_t i = 0; i < events.size(); ++i) {
    event back;
    ASSERT_TRUE(aggregate::decode(stored(events[i], i + 1), back).ok());
    direct = aggregate::apply(direct, events[i]);
    decoded = aggregate::apply(decoded, back);
  }
  EXPECT_EQ(direct, decoded);
  state loaded;
  ASSERT_TRUE(aggregate::load(aggregate::save(direct), loaded));
  EXPECT_EQ(loaded, direct);
  EXPECT_FALSE(aggregate::load("{not json", loaded));
}

TEST(Account, UnknownOrMalformedEventsAreClearErrors) {
  auto r = stored(account_created{id, "n", false}, 1);
  event out;
  r.type = "account_teleported";
  auto s = aggregate::decode(r, out);
  EXPECT_EQ(s.code, persistence::status_code::corrupt);
  EXPECT_NE(s.message.find("unknown event type 'account_teleported'"), std::string::npos);

  r = stored(account_created{id, "n", false}, 1);
  r.payload = "{\"name\": 5}";
  s = aggregate::decode(r, out);
  EXPECT_EQ(s.code, persistence::status_code::corrupt);
  EXPECT_NE(s.message.find("does not decode"), std::string::npos) << s.message;

  r = stored(account_created{id, "n", false}, 1);
  r.schema_version = 9;
  EXPECT_NE(aggregate::decode(r, out).message.find("schema version 9"), std::string::npos);
}

TEST(AccountsView, FoldsAccountsAndKeyOwnersAndSurvivesCheckpoint) {
  auto k1 = new_access_key(), k2 = new_access_key();
  accounts_model m;
  m.apply(stored(account_created{id, "admin", true}, 1));
  m.apply(stored(access_key_created{k1}, 2));
  m.apply(stored(access_key_created{k2}, 3));
  m.apply(stored(access_key_deleted{k1.access_key_id}, 4));
  m.apply({"instance/i-1", 1, 5, "instance_launched", 1, 1, "p", "r", "{}"});  // not ours: ignored

  EXPECT_FALSE(m.find_key(k1.access_key_id));
  ASSERT_TRUE(m.find_key(k2.access_key_id));
  EXPECT_EQ(m.find_key(k2.access_key_id)->account_id, id);
  EXPECT_EQ(m.find_key(k2.access_key_id)->secret_access_key, k2.secret_access_key);
  ASSERT_TRUE(m.admin());
  EXPECT_EQ(m.admin()->access_key_ids, std::vector<std::string>{k2.access_key_id});
  EXPECT_EQ(m.undecodable(), 0u);

  accounts_model restored;
  ASSERT_TRUE(restored.load(m.save()));
  EXPECT_EQ(restored.list(), m.list());
  EXPECT_EQ(restored.find_key(k2.access_key_id), m.find_key(k2.access_key_id));
}
