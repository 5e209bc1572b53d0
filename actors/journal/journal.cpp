#include "actors/journal/journal.h"

#include "actors/protocol/messages.h"
#include "persistence/time_format.h"

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

namespace kumo::actors {
namespace {

using persistence::append_request;

// Past this many queued appends the journal writes without waiting for the
// mailbox to drain, so one batch never grows without bound.
constexpr size_t max_batch_appends = 8192;

struct journal_state {
  std::vector<append_request> pending;
  std::vector<caf::response_promise> waiting;  // one per pending append
  bool flush_queued = false;
  std::vector<caf::actor> subscribers;
  journal_stats stats;
  static inline const char* name = "journal";
};

// Writes everything pending as one synced batch and answers every writer.
void flush(caf::stateful_actor<journal_state>* self, persistence::event_store& store) {
  auto& st = self->state;
  st.flush_queued = false;
  if (st.pending.empty()) return;
  auto outcomes = store.append_batch(st.pending, persistence::now_ms());
  committed_events committed;
  for (size_t i = 0; i < outcomes.size(); ++i) {
    auto& out = outcomes[i];
    append_reply reply{out.result, out.stream_version, 0};
    if (out.result.ok()) {
      reply.last_global_seq = out.records.back().global_seq;
      st.stats.events += out.records.size();
      for (auto& r : out.records) committed.push_back(std::move(r));
    } else if (out.result.code != persistence::status_code::conflict) {
      spdlog::error("rid={} journal: append to {} failed: {}", st.pending[i].request_id,
                    st.pending[i].stream, out.result.message);
    }
    st.waiting[i].deliver(std::move(reply));
  }
  st.stats.batches++;
  st.stats.appends += st.pending.size();
  st.stats.largest_batch = std::max<uint64_t>(st.stats.largest_batch, st.pending.size());
  st.pending.clear();
  st.waiting.clear();
  if (!committed.empty() && !st.subscribers.empty()) {
    auto msg = caf::make_message(committed_atom::value, std::move(committed));
    for (auto& sub : st.subscribers) self->send(sub, msg);
  }
}

caf::behavior journal(caf::stateful_actor<journal_state>* self,
                      persistence::event_store* store) {
  self->set_down_handler([=](const caf::down_msg& dm) {
    auto& subs = self->state.subscribers;
    subs.erase(std::remove_if(subs.begin(), subs.end(),
                              [&](const caf::actor& a) { return a.address() == dm.source; }),
               subs.end());
  });
  return {
      [=](append_atom, append_request& req) {
        auto& st = self->state;
        st.pending.push_back(std::move(req));
        st.waiting.push_back(self->make_response_promise());
        if (st.pending.size() >= max_batch_appends) {
          flush(self, *store);
        } else if (!st.flush_queued) {
          // The flush message queues behind every append already in the
          // mailbox, so they all land in the same WriteBatch.
          st.flush_queued = true;
          self->send(self, flush_atom::value);
        }
      },
      [=](flush_atom) { flush(self, *store); },
      [=](subscribe_atom, const caf::actor& subscriber) -> uint64_t {
        self->monitor(subscriber);
        self->state.subscribers.push_back(subscriber);
        // Everything after this sequence number will be pushed to the subscriber.
        return store->last_global_seq();
      },
      [=](stats_atom) { return self->state.stats; },
  };
}

}  // namespace

caf::actor spawn_journal(caf::actor_system& sys, persistence::event_store& store) {
  return sys.spawn<caf::detached>(journal, &store);
}

}  // namespace kumo::actors
