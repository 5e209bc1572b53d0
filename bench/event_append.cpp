// bench/event_append: durable events per second through the journal actor
// with 1, 8 and 64 concurrent writer actors. Every append is synced
// (WriteOptions::sync = true); a writer sends its next append only after the
// previous one was acknowledged durable, as an aggregate does. Also measures
// the naive baseline: one synced RocksDB write per event, no journal.
//
// usage: event_append [events per writer count, default 100000]
#include "actors/journal/journal.h"
#include "actors/protocol/messages.h"
#include "persistence/event_store.h"
#include "persistence/time_format.h"
#include "tests/support/subprocess.h"
#include "tests/support/writers.h"

#include <caf/all.hpp>

#include <cstdio>
#include <cstdlib>

using namespace kumo;

namespace {

std::unique_ptr<persistence::event_store> open_fresh(const std::string& dir) {
  persistence::status st;
  auto s = persistence::event_store::open(dir + "/events", persistence::open_mode::read_write, st);
  if (!s) {
    std::fprintf(stderr, "open failed: %s\n", st.message.c_str());
    std::exit(1);
  }
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  const int total = argc > 1 ? std::atoi(argv[1]) : 100000;
  std::printf("event_append: %d durable events per run, sync=true, payload ~60 bytes JSON\n", total);

  // The store alone, no actors: what one synced WriteBatch costs by size.
  // 1 event per write is the naive one-fsync-per-event baseline.
  for (int per_write : {1, 8, 64, 100}) {
    test::temp_dir dir;
    auto store = open_fresh(dir.path());
    const int writes = std::max(200, std::min(total, 5000 * per_write) / per_write / 4);
    uint64_t version = 0;
    auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < writes; ++i) {
      std::vector<persistence::append_request> batch;
      for (int e = 0; e < per_write; ++e)
        batch.push_back({"bench/s" + std::to_string(e), version, "bench", "rid",
                         {{"bench_event", 1, test::default_payload}}});
      store->append_batch(batch, persistence::now_ms());
      ++version;
    }
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("  store only, %3d events per synced write: %9.0f events/s  (%.0f us per write)\n",
                per_write, writes * per_write / s, s / writes * 1e6);
  }

  for (int writers : {1, 8, 64}) {
    test::temp_dir dir;
    auto store = open_fresh(dir.path());
    caf::actor_system_config cfg;
    caf::actor_system sys{cfg};
    auto journal = actors::spawn_journal(sys, *store);
    int each = std::max(1, (writers == 1 ? std::min(total, 20000) : total) / writers);
    auto res = test::run_writers(sys, journal, writers, each, "bench/w");
    actors::journal_stats stats;
    caf::scoped_actor self{sys};
    self->request(journal, caf::infinite, actors::stats_atom::value)
        .receive([&](const actors::journal_stats& s) { stats = s; }, [](caf::error&) {});
    self->send_exit(journal, caf::exit_reason::user_shutdown);
    std::printf("  journal, %2d writer actors  : %9.0f events/s  (%llu events in %.2f s, %llu fsyncs, "
                "%.1f events/fsync, largest batch %llu, %llu failed)\n",
                writers, res.acknowledged / res.seconds, (unsigned long long)res.acknowledged,
                res.seconds, (unsigned long long)stats.batches,
                double(stats.events) / std::max<uint64_t>(1, stats.batches),
                (unsigned long long)stats.largest_batch, (unsigned long long)res.failed);
  }
  return 0;
}
