// The actor spine on a real RocksDB: journal group commit, aggregates spawned
// on demand and rebuilt by replay (with snapshots), projections with
// checkpoints and read-your-writes.
#include "actors/account/account_actors.h"
#include "actors/cloud.h"
#include "actors/runtime/aggregate.h"
#include "actors/runtime/projection.h"
#include "../support/subprocess.h"
#include "../support/writers.h"

#include <caf/all.hpp>
#include <gtest/gtest.h>

#include <thread>

using namespace kumo;
using namespace kumo::actors;
using namespace kumo::actors::account;

namespace {

const request_meta meta{"arn:aws:iam::000000000000:root", "rid-test"};

// One running cloud core on a data dir; destroy and re-create it to "restart".
struct core {
  explicit core(const std::string& dir) {
    persistence::status st;
    store = persistence::event_store::open(dir + "/events", persistence::open_mode::read_write, st);
    if (!store) throw std::runtime_error(st.message);
    sys = std::make_unique<caf::actor_system>(cfg);
    cloud = cloud_actors::spawn(*sys, *store);
    accounts = std::make_unique<client>(*sys, cloud.accounts, cloud.accounts_view,
                                        std::chrono::seconds(20));
  }
  ~core() {
    accounts.reset();
    cloud.shutdown(*sys);
    sys.reset();
    store.reset();
  }
  journal_stats stats() {
    caf::scoped_actor self{*sys};
    journal_stats out;
    self->request(cloud.journal, caf::infinite, stats_atom::value).receive(
        [&](const journal_stats& s) { out = s; }, [](caf::error&) {});
    return out;
  }

  caf::actor_system_config cfg;
  std::unique_ptr<persistence::event_store> store;
  std::unique_ptr<caf::actor_system> sys;
  cloud_actors cloud;
  std::unique_ptr<client> accounts;
};

}  // namespace

TEST(Journal, GroupCommitsConcurrentWritersAndAnswersEach) {
  test::temp_dir dir;
  core c(dir.path());
  auto res = test::run_writers(*c.sys, c.cloud.journal, 64, 40, "bench/w");
  EXPECT_EQ(res.acknowledged, 64u * 40u);
  EXPECT_EQ(res.failed, 0u);
  auto stats = c.stats();
  EXPECT_EQ(stats.appends, 64u * 40u);
  // With 64 writers waiting on fsync, appends must have shared batches.
  EXPECT_LT(stats.batches, stats.appends);
  EXPECT_GT(stats.largest_batch, 1u);
  // Every acknowledged event is on disk, globally contiguous, streams intact.
  EXPECT_EQ(c.store->last_global_seq(), 64u * 40u);
  auto rep = c.store->verify();
  EXPECT_TRUE(rep.problems.empty()) << rep.problems.front();
  EXPECT_EQ(rep.streams, 64u);
}

TEST(Aggregate, CommandsPersistAndActorsRebuildFromTheLog) {
  test::temp_dir dir;
  std::string id;
  access_key second = new_access_key();
  {
    core c(dir.path());
    auto r = c.accounts->create("team-a", false, meta);
    ASSERT_FALSE(r.error) << r.error->message;
    id = r.state.account_id;
    auto k = c.accounts->send(id, create_access_key{second}, meta);
    ASSERT_FALSE(k.error) << k.error->message;
    EXPECT_EQ(k.version, 3u);
    // Read your own write through the projection.
    auto owner = c.accounts->find_key(second.access_key_id, k.global_seq);
    ASSERT_TRUE(owner);
    EXPECT_EQ(owner->account_id, id);
    EXPECT_EQ(owner->secret_access_key, second.secret_access_key);
  }
  core c(dir.path());  // restart: the actor is rebuilt by replay
  auto got = c.accounts->get(id);
  ASSERT_FALSE(got.error);
  EXPECT_EQ(got.version, 3u);
  EXPECT_EQ(got.state.name, "team-a");
  ASSERT_EQ(got.state.keys.size(), 2u);
  EXPECT_EQ(got.state.keys[1], second);
  // And it keeps deciding on the replayed state.
  auto third = c.accounts->send(id, create_access_key{new_access_key()}, meta);
  ASSERT_TRUE(third.error);
  EXPECT_EQ(third.error->code, "LimitExceeded");
  auto missing = c.accounts->get("999999999999");
  ASSERT_FALSE(missing.error);
  EXPECT_FALSE(missing.state.exists);
  auto bad = c.accounts->get("not-an-id");
  ASSERT_TRUE(bad.error);
  EXPECT_EQ(bad.error->code, "InvalidParameterValue");
}

TEST(Aggregate, ConcurrentCommandsOnOneAggregateAreDecidedOneAtATime) {
  test::temp_dir dir;
  core c(dir.path());
  auto r = c.accounts->create("team-a", false, meta);
  ASSERT_FALSE(r.error);
  const auto id = r.state.account_id;
  // Ten clients race for the one free key slot: exactly one may win.
  std::vector<std::thread> clients;
  std::atomic<int> won{0}, limited{0};
  for (int i = 0; i < 10; ++i)
    clients.emplace_back([&] {
      client mine(*c.sys, c.cloud.accounts, c.cloud.accounts_view);
      auto res = mine.send(id, create_access_key{new_access_key()}, meta);
      if (!res.error) won++;
      else if (res.error->code == "LimitExceeded") limited++;
    });
  for (auto& t : clients) t.join();
  EXPECT_EQ(won.load(), 1);
  EXPECT_EQ(limited.load(), 9);
  EXPECT_EQ(c.store->stream_version("account/" + id), 3u);
}

TEST(Aggregate, SnapshotPlusTailEqualsFullReplay) {
  test::temp_dir dir;
  core c(dir.path());
  auto r = c.accounts->create("busy", false, meta);
  ASSERT_FALSE(r.error);
  const auto id = r.state.account_id;
  // Rotate keys until the stream is well past one snapshot interval.
  std::string current = r.state.keys[0].access_key_id;
  for (int i = 0; i < 40; ++i) {
    auto k = new_access_key();
    ASSERT_FALSE(c.accounts->send(id, create_access_key{k}, meta).error);
    ASSERT_FALSE(c.accounts->send(id, delete_access_key{current}, meta).error);
    current = k.access_key_id;
  }
  persistence::status st;
  auto snap = c.store->get_snapshot("account/" + id, st);
  ASSERT_TRUE(snap) << "no snapshot after " << c.store->stream_version("account/" + id) << " events";
  EXPECT_GE(snap->stream_version, snapshot_every);
  EXPECT_LT(snap->stream_version, c.store->stream_version("account/" + id));

  state from_snapshot, from_scratch;
  uint64_t v1 = 0, v2 = 0;
  ASSERT_TRUE(load_aggregate<aggregate>(*c.store, id, from_snapshot, v1, true).ok());
  ASSERT_TRUE(load_aggregate<aggregate>(*c.store, id, from_scratch, v2, false).ok());
  EXPECT_EQ(v1, 82u);
  EXPECT_EQ(v1, v2);
  EXPECT_EQ(from_snapshot, from_scratch);
  ASSERT_EQ(from_snapshot.keys.size(), 1u);
  EXPECT_EQ(from_snapshot.keys[0].access_key_id, current);
}

TEST(Aggregate, UndecodableStreamIsReportedNotCrashedOn) {
  test::temp_dir dir;
  core c(dir.path());
  const std::string id = "111111111111";
  auto out = c.store->append_batch(
      {{"account/" + id, 0, "p", "r", {{"account_created", 1, "{\"account_id\":\"" + id + "\",\"name\":\"x\"}"},
                                       {"account_vanished", 1, "{}"}}}},
      1);
  ASSERT_TRUE(out[0].result.ok());
  auto got = c.accounts->get(id);
  ASSERT_TRUE(got.error);
  EXPECT_EQ(got.error->code, "InternalError");
  EXPECT_NE(got.error->message.find("unknown event type 'account_vanished'"), std::string::npos)
      << got.error->message;
  auto cmd = c.accounts->send(id, create_access_key{new_access_key()}, meta);
  ASSERT_TRUE(cmd.error);  // refuses to decide on a state it could not rebuild
  EXPECT_EQ(c.store->stream_version("account/" + id), 2u);
  // Other accounts are unaffected.
  EXPECT_FALSE(c.accounts->create("fine", false, meta).error);
}

TEST(Projection, CheckpointPlusTailEqualsFullRebuild) {
  test::temp_dir dir;
  uint64_t checkpointed_at = 0;
  {
    core c(dir.path());
    for (int i = 0; i < 5; ++i) ASSERT_FALSE(c.accounts->create("a" + std::to_string(i), false, meta).error);
    caf::scoped_actor self{*c.sys};
    self->request(c.cloud.accounts_view, caf::infinite, checkpoint_atom::value)
        .receive([&](uint64_t at) { checkpointed_at = at; }, [](caf::error&) {});
    EXPECT_EQ(checkpointed_at, 10u);
    // Tail after the checkpoint; kill the core without a final checkpoint by
    // making the view exit first.
    self->send_exit(c.cloud.accounts_view, caf::exit_reason::kill);
    for (int i = 0; i < 3; ++i) ASSERT_FALSE(c.accounts->create("b" + std::to_string(i), false, meta).error);
  }
  persistence::status st;
  {
    persistence::event_store* raw = nullptr;
    auto store = persistence::event_store::open(dir.path() + "/events", persistence::open_mode::read_write, st);
    raw = store.get();
    auto cp = raw->get_checkpoint("accounts", st);
    ASSERT_TRUE(cp);
    EXPECT_EQ(cp->global_seq, checkpointed_at);

    accounts_model from_checkpoint, from_scratch;
    uint64_t a1 = 0;
    ASSERT_TRUE(rebuild_model(*raw, from_checkpoint, a1).ok());
    raw->read_all(1, [&](const persistence::event_record& r) {
      from_scratch.apply(r);
      return true;
    });
    EXPECT_EQ(a1, 16u);
    EXPECT_EQ(from_checkpoint.list().size(), 8u);
    EXPECT_EQ(from_checkpoint.list(), from_scratch.list());
  }
  // A restarted view serves the tail too.
  core c(dir.path());
  EXPECT_EQ(c.accounts->list(16).size(), 8u);
}

TEST(Aggregate, IdleActorsArePassivatedWithoutLosingRequests) {
  test::temp_dir dir;
  core c(dir.path());
  // A registry whose actors give up after 1 ms idle: passivation races with
  // every request, which must still all be answered correctly.
  auto registry = spawn_aggregate_registry<aggregate>(*c.sys, c.cloud.journal, *c.store,
                                                      std::chrono::milliseconds(1));
  client fast(*c.sys, registry, c.cloud.accounts_view);
  std::vector<std::string> ids;
  for (int i = 0; i < 10; ++i) {
    auto r = fast.create("p" + std::to_string(i), false, meta);
    ASSERT_FALSE(r.error) << r.error->message;
    ids.push_back(r.state.account_id);
  }
  for (int round = 0; round < 30; ++round)
    for (const auto& id : ids) {
      auto k = new_access_key();
      auto added = fast.send(id, create_access_key{k}, meta);
      ASSERT_FALSE(added.error) << added.error->message;
      ASSERT_EQ(added.version, 3u + 2 * round);
      auto removed = fast.send(id, delete_access_key{k.access_key_id}, meta);
      ASSERT_FALSE(removed.error) << removed.error->message;
    }
  caf::scoped_actor self{*c.sys};
  auto live = [&] {
    uint64_t n = 999;
    self->request(registry, caf::infinite, stats_atom::value).receive([&](uint64_t x) { n = x; },
                                                                       [](caf::error&) {});
    return n;
  };
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (live() != 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::yield();
  EXPECT_EQ(live(), 0u) << "idle aggregates were not passivated";
  // Asked again, they come back from the log as they were.
  for (const auto& id : ids) {
    auto got = fast.get(id);
    ASSERT_FALSE(got.error);
    EXPECT_EQ(got.version, 62u);
    EXPECT_EQ(got.state.keys.size(), 1u);
  }
  self->send_exit(registry, caf::exit_reason::user_shutdown);
}
