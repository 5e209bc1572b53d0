// bench/replay: how fast kumo reads its log back.
//  1. builds a log of N events (default 1M; account streams of 4 events:
//     created + first key, second key, first key deleted) with the store's
//     group-commit path, 10k events per synced batch;
//  2. scans and decodes the whole global log (what every replay costs);
//  3. folds it into the accounts read model from scratch (a projection rebuild);
//  4. starts the real kumod on it twice and times exec -> "kumod ready":
//     cold (no usable checkpoint: the view replays everything) and warm
//     (from the checkpoint the first run wrote at shutdown).
//
// usage: replay [events, default 1000000] [dir, default: a fresh temp dir]
#include "actors/account/account.h"
#include "actors/account/accounts_view.h"
#include "persistence/event_store.h"
#include "persistence/time_format.h"
#include "tests/support/subprocess.h"

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

using namespace kumo;
using namespace kumo::actors::account;
using clock_type = std::chrono::steady_clock;

namespace {

double since(clock_type::time_point t) {
  return std::chrono::duration<double>(clock_type::now() - t).count();
}

void build_log(persistence::event_store& store, uint64_t events) {
  auto start = clock_type::now();
  uint64_t accounts = events / 4, written = 0;
  std::vector<persistence::append_request> batch;
  for (uint64_t a = 0; a < accounts; ++a) {
    char id[24];
    std::snprintf(id, sizeof id, "%012llu", (unsigned long long)(100000000000ull + a));
    auto stream = std::string("account/") + id;
    auto k1 = new_access_key(), k2 = new_access_key();
    persistence::append_request create{stream, 0, "bench", "rid-" + std::to_string(a), {}};
    create.events = {aggregate::encode(account_created{id, "bench-" + std::to_string(a), false}),
                     aggregate::encode(access_key_created{k1})};
    batch.push_back(std::move(create));
    batch.push_back({stream, 2, "bench", "rid", {aggregate::encode(access_key_created{k2})}});
    batch.push_back({stream, 3, "bench", "rid", {aggregate::encode(access_key_deleted{k1.access_key_id})}});
    if (batch.size() >= 7500 || a + 1 == accounts) {
      for (auto& o : store.append_batch(batch, persistence::now_ms()))
        if (!o.result.ok()) {
          std::fprintf(stderr, "append failed: %s\n", o.result.message.c_str());
          std::exit(1);
        }
      written += batch.size() / 3 * 4;
      batch.clear();
    }
  }
  double s = since(start);
  std::printf("  built log: %llu events in %.2f s (%.0f events/s, 10k events per synced batch)\n",
              (unsigned long long)written, s, written / s);
}

}  // namespace

int main(int argc, char** argv) {
  const uint64_t events = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1000000;
  std::unique_ptr<test::temp_dir> tmp;
  std::string dir;
  if (argc > 2) {
    dir = argv[2];
    std::filesystem::create_directories(dir);
  } else {
    tmp = std::make_unique<test::temp_dir>();
    dir = tmp->path();
  }
  std::printf("replay: log of %llu events in %s\n", (unsigned long long)events, dir.c_str());
  {
    persistence::status st;
    auto store = persistence::event_store::open(dir + "/events", persistence::open_mode::read_write, st);
    if (!store) {
      std::fprintf(stderr, "%s\n", st.message.c_str());
      return 1;
    }
    if (store->last_global_seq() < events) build_log(*store, events - store->last_global_seq());
    const uint64_t n = store->last_global_seq();

    auto t = clock_type::now();
    uint64_t scanned = 0, bytes = 0;
    store->read_all(1, [&](const persistence::event_record& r) {
      ++scanned;
      bytes += r.payload.size();
      return true;
    });
    double s = since(t);
    std::printf("  scan + decode envelopes: %.0f events/s (%llu events, %.1f MB payload, %.2f s)\n",
                scanned / s, (unsigned long long)scanned, bytes / 1e6, s);

    t = clock_type::now();
    accounts_model model;
    store->read_all(1, [&](const persistence::event_record& r) {
      model.apply(r);
      return true;
    });
    s = since(t);
    std::printf("  accounts view rebuilt from scratch: %.0f events/s (%llu events -> %zu accounts, %.2f s)\n",
                n / s, (unsigned long long)n, model.list().size(), s);
    // Make the next kumod start cold: a checkpoint of an unknown shape is ignored.
    store->put_checkpoint(accounts_model::name, {0, 0, ""});
  }
  for (const char* which : {"cold (no checkpoint, view replays the log)", "warm (from checkpoint)"}) {
    auto start = clock_type::now();
    test::subprocess k({test::binary("kumod"), "--data-dir=" + dir, "--listen=127.0.0.1:0", "--hypervisor=fake"});
    if (!k.wait_for("kumod ready", std::chrono::minutes(5))) {
      std::fprintf(stderr, "kumod did not start:\n%s\n", k.transcript().c_str());
      return 1;
    }
    double s = since(start);
    k.signal(SIGTERM);
    int rc = k.wait();
    std::printf("  kumod start, %s: %.2f s to ready (exit %d after SIGTERM)\n", which, s, rc);
  }
  return 0;
}
