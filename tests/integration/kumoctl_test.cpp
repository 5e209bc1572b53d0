// kumoctl against a log this test makes with the real cloud core, read while
// the core still has the store open (RocksDB secondary mode).
#include "actors/account/account_actors.h"
#include "actors/cloud.h"
#include "persistence/data_dir.h"
#include "persistence/time_format.h"
#include "../support/subprocess.h"

#include <caf/all.hpp>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

using namespace kumo;
using namespace kumo::actors::account;
using json = nlohmann::json;

namespace {

std::vector<json> json_lines(const std::string& out) {
  std::vector<json> lines;
  std::istringstream in(out);
  for (std::string l; std::getline(in, l);)
    if (!l.empty()) lines.push_back(json::parse(l));
  return lines;
}

class KumoctlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data = dir.path();
    persistence::status st;
    store = persistence::event_store::open(persistence::events_path(data),
                                           persistence::open_mode::read_write, st);
    ASSERT_TRUE(store) << st.message;
    sys = std::make_unique<caf::actor_system>(cfg);
    cloud = actors::cloud_actors::spawn(*sys, *store);
    accounts = std::make_unique<client>(*sys, cloud.accounts, cloud.accounts_view);
    // alice creates account A; later bob creates B, adds a key, deletes A's... B's first key.
    auto a = accounts->create("team-a", false, {"arn:aws:iam::000000000000:user/alice", "req-alice-1"});
    ASSERT_FALSE(a.error);
    a_id = a.state.account_id;
    a_time = persistence::now_ms();
    while (persistence::now_ms() <= a_time + 1) {
    }  // the next events get a later timestamp than A's
    between = persistence::now_ms();
    while (persistence::now_ms() <= between + 1) {
    }
    auto b = accounts->create("team-b", false, {"arn:aws:iam::000000000000:user/bob", "req-bob-1"});
    ASSERT_FALSE(b.error);
    b_id = b.state.account_id;
    b_first_key = b.state.keys[0];
    b_second_key = new_access_key();
    ASSERT_FALSE(accounts->send(b_id, create_access_key{b_second_key}, {"arn:aws:iam::000000000000:user/bob", "req-bob-2"}).error);
    ASSERT_FALSE(accounts->send(b_id, delete_access_key{b_first_key.access_key_id}, {"arn:aws:iam::000000000000:user/carol", "req-carol-1"}).error);
  }
  void TearDown() override {
    accounts.reset();
    cloud.shutdown(*sys);
    sys.reset();
    store.reset();
  }

  test::run_result ctl(std::vector<std::string> args) {
    args.insert(args.begin(), {test::binary("kumoctl"), "--data-dir=" + data});
    return test::run(args);
  }

  test::temp_dir dir;
  std::string data;
  caf::actor_system_config cfg;
  std::unique_ptr<persistence::event_store> store;
  std::unique_ptr<caf::actor_system> sys;
  actors::cloud_actors cloud;
  std::unique_ptr<client> accounts;
  std::string a_id, b_id;
  access_key b_first_key, b_second_key;
  int64_t a_time = 0, between = 0;
};

}  // namespace

TEST_F(KumoctlTest, EventsListsTheLogWithFiltersAndRedactsSecrets) {
  auto all = ctl({"events", "--json"});
  ASSERT_EQ(all.exit_code, 0) << all.output;
  auto lines = json_lines(all.output);
  ASSERT_EQ(lines.size(), 6u);
  for (size_t i = 0; i < lines.size(); ++i) EXPECT_EQ(lines[i]["global_seq"], i + 1);
  EXPECT_EQ(lines[0]["stream"], "account/" + a_id);
  EXPECT_EQ(lines[0]["type"], "account_created");
  EXPECT_EQ(lines[0]["principal"], "arn:aws:iam::000000000000:user/alice");
  EXPECT_EQ(lines[0]["request_id"], "req-alice-1");
  EXPECT_EQ(lines[3]["payload"]["access_key_id"], b_first_key.access_key_id);
  EXPECT_EQ(lines[3]["payload"]["secret_access_key"], "***");
  EXPECT_EQ(all.output.find(b_first_key.secret_access_key), std::string::npos);

  EXPECT_EQ(json_lines(ctl({"events", "--json", "--stream=account/" + a_id}).output).size(), 2u);
  EXPECT_EQ(json_lines(ctl({"events", "--json", "--stream=account/"}).output).size(), 6u);
  auto deleted = json_lines(ctl({"events", "--json", "--type=access_key_deleted"}).output);
  ASSERT_EQ(deleted.size(), 1u);
  EXPECT_EQ(deleted[0]["principal"], "arn:aws:iam::000000000000:user/carol");
  auto since = json_lines(ctl({"events", "--json", "--since=" + persistence::format_time(between)}).output);
  ASSERT_EQ(since.size(), 4u);
  EXPECT_EQ(since[0]["stream"], "account/" + b_id);

  auto human = ctl({"events", "--type=account_created"});
  EXPECT_NE(human.output.find("account/" + b_id + "@1 account_created/v1 by arn:aws:iam::000000000000:user/bob rid=req-bob-1"),
            std::string::npos)
      << human.output;
}

TEST_F(KumoctlTest, AuditSaysWhoDidWhatToAResource) {
  auto r = ctl({"audit", b_id});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::istringstream in(r.output);
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  ASSERT_EQ(lines.size(), 4u) << r.output;
  EXPECT_NE(lines[0].find("user/bob  account_created  on account/" + b_id + "  (request req-bob-1"), std::string::npos) << lines[0];
  EXPECT_NE(lines[2].find("user/bob  access_key_created"), std::string::npos) << lines[2];
  EXPECT_NE(lines[3].find("user/carol  access_key_deleted  on account/" + b_id + "  (request req-carol-1"), std::string::npos) << lines[3];

  // An access key's history: created by bob's request, deleted by carol's.
  auto key = json_lines(ctl({"audit", b_first_key.access_key_id, "--json"}).output);
  ASSERT_EQ(key.size(), 2u);
  EXPECT_EQ(key[0]["type"], "access_key_created");
  EXPECT_EQ(key[0]["request_id"], "req-bob-1");
  EXPECT_EQ(key[1]["type"], "access_key_deleted");
  EXPECT_EQ(key[1]["request_id"], "req-carol-1");

  auto none = ctl({"audit", "999999999999"});
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_NE(none.output.find("no event mentions 999999999999"), std::string::npos);
}

TEST_F(KumoctlTest, ReplayAtRebuildsThePast) {
  auto before_b = ctl({"replay", "--json", "--at=" + persistence::format_time(between)});
  ASSERT_EQ(before_b.exit_code, 0) << before_b.output;
  auto past = json::parse(before_b.output);
  EXPECT_EQ(past["events_applied"], 2);
  ASSERT_EQ(past["accounts"].size(), 1u);
  EXPECT_EQ(past["accounts"][0]["account_id"], a_id);

  auto now = json::parse(ctl({"replay", "--json", "--at=" + persistence::format_time(persistence::now_ms() + 1000)}).output);
  EXPECT_EQ(now["events_applied"], 6);
  ASSERT_EQ(now["accounts"].size(), 2u);
  for (const auto& a : now["accounts"]) {
    if (a["account_id"] == b_id) {
      EXPECT_EQ(a["access_key_ids"], json::array({b_second_key.access_key_id}));
    }
  }

  auto epoch = json::parse(ctl({"replay", "--json", "--at=2000-01-01"}).output);
  EXPECT_EQ(epoch["events_applied"], 0);
  EXPECT_TRUE(epoch["accounts"].empty());
}

TEST_F(KumoctlTest, VerifyPassesAndBadUsageIsExplained) {
  auto v = ctl({"verify"});
  EXPECT_EQ(v.exit_code, 0) << v.output;
  EXPECT_NE(v.output.find("verify: ok: 6 events in 2 streams"), std::string::npos) << v.output;

  auto no_at = ctl({"replay"});
  EXPECT_EQ(no_at.exit_code, 2);
  EXPECT_NE(no_at.output.find("replay needs --at=TIME"), std::string::npos);
  auto bad_time = ctl({"replay", "--at=yesterday-ish"});
  EXPECT_EQ(bad_time.exit_code, 2);
  EXPECT_NE(bad_time.output.find("cannot read time 'yesterday-ish'"), std::string::npos);
  auto missing = test::run({test::binary("kumoctl"), "--data-dir=/nonexistent/kumo", "verify"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.output.find("no event store at /nonexistent/kumo/events"), std::string::npos);
}

TEST_F(KumoctlTest, VerifyReportsAnUndecodableEvent) {
  auto out = store->append_batch({{"account/" + a_id, 2, "p", "r", {{"account_teleported", 1, "{}"}}}}, persistence::now_ms());
  ASSERT_TRUE(out[0].result.ok());
  auto v = ctl({"verify"});
  EXPECT_EQ(v.exit_code, 1);
  EXPECT_NE(v.output.find("event #7 (account/" + a_id + "): unknown event type 'account_teleported'"), std::string::npos) << v.output;
}
