// The event store on a real RocksDB directory.
#include "actors/account/account.h"
#include "actors/runtime/decision.h"
#include "persistence/event_store.h"
#include "persistence/record_codec.h"
#include "../support/subprocess.h"

#include <gtest/gtest.h>

using namespace kumo;
using namespace kumo::persistence;

namespace {

std::unique_ptr<event_store> open_store(const std::string& dir) {
  status st;
  auto s = event_store::open(dir + "/events", open_mode::read_write, st);
  EXPECT_TRUE(st.ok()) << st.message;
  return s;
}

append_request req(const std::string& stream, uint64_t expected, std::vector<std::string> types,
                   const std::string& rid = "rid-1") {
  append_request r{stream, expected, "tester", rid, {}};
  int n = 0;
  for (auto& t : types) r.events.push_back({t, 1, "{\"n\":" + std::to_string(n++) + "}"});
  return r;
}

std::vector<event_record> read_stream(event_store& s, const std::string& stream, uint64_t from = 1) {
  std::vector<event_record> out;
  auto st = s.read_stream(stream, from, [&](const event_record& r) {
    out.push_back(r);
    return true;
  });
  EXPECT_TRUE(st.ok()) << st.message;
  return out;
}

std::vector<event_record> read_all(event_store& s, uint64_t from = 1) {
  std::vector<event_record> out;
  auto st = s.read_all(from, [&](const event_record& r) {
    out.push_back(r);
    return true;
  });
  EXPECT_TRUE(st.ok()) << st.message;
  return out;
}

}  // namespace

TEST(EventStore, AppendsAndReadsByStreamAndGlobally) {
  test::temp_dir dir;
  auto s = open_store(dir.path());
  auto out = s->append_batch({req("account/1", 0, {"a", "b"}), req("account/2", 0, {"c"}),
                              req("account/1", 2, {"d"})},
                             1000);
  ASSERT_EQ(out.size(), 3u);
  for (auto& o : out) ASSERT_TRUE(o.result.ok()) << o.result.message;
  EXPECT_EQ(out[2].stream_version, 3u);

  auto one = read_stream(*s, "account/1");
  ASSERT_EQ(one.size(), 3u);
  EXPECT_EQ(one[0].type, "a");
  EXPECT_EQ(one[1].type, "b");
  EXPECT_EQ(one[2].type, "d");
  EXPECT_EQ(one[2].stream_seq, 3u);
  EXPECT_EQ(one[2].global_seq, 4u);
  EXPECT_EQ(one[0].principal, "tester");
  EXPECT_EQ(one[0].request_id, "rid-1");
  EXPECT_EQ(one[0].time_ms, 1000);
  EXPECT_EQ(one[1].payload, "{\"n\":1}");
  // A stream whose id is a prefix of another's does not see the other's events.
  s->append_batch({req("account/10", 0, {"x"})}, 1001);
  EXPECT_EQ(read_stream(*s, "account/1").size(), 3u);
  EXPECT_EQ(read_stream(*s, "account/1", 3).size(), 1u);

  auto all = read_all(*s);
  ASSERT_EQ(all.size(), 5u);
  for (size_t i = 0; i < all.size(); ++i) EXPECT_EQ(all[i].global_seq, i + 1);
  EXPECT_EQ(all[2].stream, "account/2");
  EXPECT_EQ(read_all(*s, 4).front().global_seq, 4u);
  EXPECT_EQ(s->last_global_seq(), 5u);
  EXPECT_EQ(s->stream_version("account/1"), 3u);
  EXPECT_EQ(s->stream_version("account/404"), 0u);
}

TEST(EventStore, SurvivesReopen) {
  test::temp_dir dir;
  {
    auto s = open_store(dir.path());
    s->append_batch({req("account/1", 0, {"a", "b"})}, 5000);
  }
  auto s = open_store(dir.path());
  EXPECT_EQ(s->last_global_seq(), 2u);
  EXPECT_EQ(s->stream_version("account/1"), 2u);
  // The log's clock never runs backwards, even if the wall clock does.
  auto out = s->append_batch({req("account/1", 2, {"c"})}, 10);
  EXPECT_EQ(out[0].records[0].time_ms, 5000);
  EXPECT_EQ(out[0].records[0].global_seq, 3u);
}

TEST(EventStore, ConflictIsRejectedAloneAndNothingIsOverwritten) {
  test::temp_dir dir;
  auto s = open_store(dir.path());
  ASSERT_TRUE(s->append_batch({req("account/1", 0, {"a"})}, 1)[0].result.ok());

  // Same batch: one stale writer, one good one, and a second append to the
  // same stream that is correct only after the first lands.
  auto out = s->append_batch({req("account/1", 0, {"stale"}), req("account/2", 0, {"fresh"}),
                              req("account/1", 1, {"next"}), req("account/1", 1, {"racing"})},
                             2);
  EXPECT_EQ(out[0].result.code, status_code::conflict);
  EXPECT_NE(out[0].result.message.find("is at version 1, append expected 0"), std::string::npos)
      << out[0].result.message;
  EXPECT_EQ(out[0].stream_version, 1u);
  EXPECT_TRUE(out[1].result.ok());
  EXPECT_TRUE(out[2].result.ok());
  EXPECT_EQ(out[3].result.code, status_code::conflict);

  auto one = read_stream(*s, "account/1");
  ASSERT_EQ(one.size(), 2u);
  EXPECT_EQ(one[0].type, "a");
  EXPECT_EQ(one[1].type, "next");
  EXPECT_EQ(read_all(*s).size(), 3u);  // no gap left by the rejected appends
  EXPECT_TRUE(s->verify().problems.empty());
}

TEST(EventStore, RejectsMalformedAppends) {
  test::temp_dir dir;
  auto s = open_store(dir.path());
  auto out = s->append_batch({req(std::string("bad\0id", 6), 0, {"a"}), req("account/1", 0, {})},
                             1);
  EXPECT_EQ(out[0].result.code, status_code::invalid_argument);
  EXPECT_EQ(out[1].result.code, status_code::invalid_argument);
  EXPECT_EQ(s->last_global_seq(), 0u);
}

TEST(EventStore, SnapshotsAndCheckpointsRoundTrip) {
  test::temp_dir dir;
  auto s = open_store(dir.path());
  status st;
  EXPECT_FALSE(s->get_snapshot("account/1", st));
  EXPECT_TRUE(st.ok());
  ASSERT_TRUE(s->put_snapshot("account/1", {7, 2, "{\"x\":1}"}).ok());
  auto snap = s->get_snapshot("account/1", st);
  ASSERT_TRUE(snap);
  EXPECT_EQ(snap->stream_version, 7u);
  EXPECT_EQ(snap->state_version, 2u);
  EXPECT_EQ(snap->state, "{\"x\":1}");
  ASSERT_TRUE(s->put_checkpoint("accounts", {42, 1, "{}"}).ok());
  auto cp = s->get_checkpoint("accounts", st);
  ASSERT_TRUE(cp);
  EXPECT_EQ(cp->global_seq, 42u);
}

TEST(EventStore, CorruptRecordIsAClearErrorNotACrash) {
  test::temp_dir dir;
  auto s = open_store(dir.path());
  s->append_batch({req("account/1", 0, {"a", "b", "c"})}, 1);
  auto good = encode_record(read_all(*s)[1]);
  ASSERT_TRUE(s->put_raw_record(2, good.substr(0, good.size() - 5)).ok());

  std::vector<uint64_t> seen;
  auto st = s->read_all(1, [&](const event_record& r) {
    seen.push_back(r.global_seq);
    return true;
  });
  EXPECT_EQ(st.code, status_code::corrupt);
  EXPECT_NE(st.message.find("event #2"), std::string::npos) << st.message;
  EXPECT_NE(st.message.find("truncated"), std::string::npos) << st.message;
  EXPECT_EQ(seen, std::vector<uint64_t>{1});

  auto rep = s->verify();
  ASSERT_FALSE(rep.problems.empty());
  EXPECT_NE(rep.problems[0].find("event #2"), std::string::npos) << rep.problems[0];

  ASSERT_TRUE(s->put_raw_record(3, std::string("\x07garbage", 8)).ok());
  EXPECT_EQ(s->read_stream("account/1", 3, [](const event_record&) { return true; }).code,
            status_code::corrupt);
}

TEST(EventStore, VerifyFindsGlobalGaps) {
  test::temp_dir dir;
  auto s = open_store(dir.path());
  s->append_batch({req("account/1", 0, {"a"})}, 1);
  event_record orphan{"account/9", 1, 5, "a", 1, 1, "p", "r", "{}"};
  s->put_raw_record(5, encode_record(orphan));
  auto rep = s->verify();
  ASSERT_GE(rep.problems.size(), 2u);
  EXPECT_NE(rep.problems[0].find("global sequence gap: expected event #2, found #5"),
            std::string::npos)
      << rep.problems[0];
}

TEST(RecordCodec, RoundTripsEveryField) {
  event_record r{"volume/vol-1", 9, 123456789, "volume_created", 3, 1764050992123,
                 "arn:aws:iam::123456789012:root", "req-7", std::string("{\"a\":\"\0b\"}", 10)};
  event_record back;
  ASSERT_TRUE(decode_record(encode_record(r), back).ok());
  EXPECT_EQ(back.stream, r.stream);
  EXPECT_EQ(back.stream_seq, r.stream_seq);
  EXPECT_EQ(back.global_seq, r.global_seq);
  EXPECT_EQ(back.type, r.type);
  EXPECT_EQ(back.schema_version, r.schema_version);
  EXPECT_EQ(back.time_ms, r.time_ms);
  EXPECT_EQ(back.principal, r.principal);
  EXPECT_EQ(back.request_id, r.request_id);
  EXPECT_EQ(back.payload, r.payload);
  EXPECT_EQ(decode_record("", back).code, status_code::corrupt);
  EXPECT_EQ(decode_record(encode_record(r) + "x", back).code, status_code::corrupt);
}
