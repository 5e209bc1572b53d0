#include "actors/journal/journal.h"

#include "actors/protocol/messages.h"
#include "persistence/time_format.h"

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

namespace kumo::actors {
namespace {

using persistence::append_outcome;
using persistence::append_request;
using write_atom = caf::atom_constant<caf::atom("write")>;
using batch = std::vector<append_request>;
using outcomes = std::vector<append_outcome>;

}  // namespace
}  // namespace kumo::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kumo::actors::batch)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kumo::actors::outcomes)

namespace kumo::actors {
namespace {

// One write carries at most this many appends; the rest wait for the next.
constexpr size_t max_batch_appends = 8192;

// The disk writer owns the blocking part: one synced WriteBatch per message.
// It runs on its own thread so fsync never stalls CAF's scheduler.
caf::behavior disk_writer(caf::event_based_actor*, persistence::event_store* store) {
  return {
      [=](write_atom, batch& appends) -> outcomes {
        auto results = store->append_batch(appends, persistence::now_ms());
        for (size_t i = 0; i < results.size(); ++i) {
          const auto& r = results[i].result;
          if (!r.ok() && r.code != persistence::status_code::conflict)
            spdlog::error("rid={} journal: append to {} failed: {}", appends[i].request_id,
                          appends[i].stream, r.message);
        }
        return results;
      },
  };
}

// Group commit: at most one write is in flight. Appends that arrive meanwhile
// queue up and all go into the next write, so the batch grows exactly as
// fast as the disk is slow.
struct journal_state {
  caf::actor disk;
  batch pending;
  std::vector<caf::response_promise> pending_replies;  // one per pending append
  bool writing = false;
  uint64_t committed_gseq = 0;
  std::vector<caf::actor> subscribers;
  journal_stats stats;
  static inline const char* name = "journal";
};

using journal_actor = caf::stateful_actor<journal_state>;

void finish_write(journal_actor* self, std::vector<caf::response_promise>& replies,
                  outcomes& results) {
  auto& st = self->state;
  committed_events committed;
  for (size_t i = 0; i < results.size(); ++i) {
    auto& out = results[i];
    append_reply reply{out.result, out.stream_version, 0};
    if (out.result.ok()) {
      reply.last_global_seq = out.records.back().global_seq;
      st.committed_gseq = std::max(st.committed_gseq, reply.last_global_seq);
      st.stats.events += out.records.size();
      for (auto& r : out.records) committed.push_back(std::move(r));
    }
    replies[i].deliver(std::move(reply));
  }
  st.stats.batches++;
  st.stats.appends += results.size();
  st.stats.largest_batch = std::max<uint64_t>(st.stats.largest_batch, results.size());
  if (!committed.empty() && !st.subscribers.empty()) {
    auto msg = caf::make_message(committed_atom::value, std::move(committed));
    for (auto& sub : st.subscribers) self->send(sub, msg);
  }
}

void start_write(journal_actor* self) {
  auto& st = self->state;
  if (st.writing || st.pending.empty()) return;
  st.writing = true;
  batch appends;
  std::vector<caf::response_promise> replies;
  if (st.pending.size() <= max_batch_appends) {
    appends.swap(st.pending);
    replies.swap(st.pending_replies);
  } else {
    auto cut = static_cast<std::ptrdiff_t>(max_batch_appends);
    appends.assign(std::make_move_iterator(st.pending.begin()),
                   std::make_move_iterator(st.pending.begin() + cut));
    replies.assign(st.pending_replies.begin(), st.pending_replies.begin() + cut);
    st.pending.erase(st.pending.begin(), st.pending.begin() + cut);
    st.pending_replies.erase(st.pending_replies.begin(), st.pending_replies.begin() + cut);
  }
  auto waiting = std::make_shared<std::vector<caf::response_promise>>(std::move(replies));
  self->request(st.disk, caf::infinite, write_atom::value, std::move(appends))
      .then(
          [=](outcomes& results) {
            finish_write(self, *waiting, results);
            self->state.writing = false;
            start_write(self);
          },
          [=](caf::error& err) {
            auto why = persistence::status::error(
                persistence::status_code::io_error,
                "event store writer failed: " + self->system().render(err));
            spdlog::error("journal: {}", why.message);
            for (auto& rp : *waiting) rp.deliver(append_reply{why, 0, 0});
            self->state.writing = false;
            start_write(self);
          });
}

caf::behavior journal(journal_actor* self, persistence::event_store* store) {
  self->state.committed_gseq = store->last_global_seq();
  self->state.disk = self->spawn<caf::detached + caf::linked>(disk_writer, store);
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
        st.pending_replies.push_back(self->make_response_promise());
        start_write(self);
      },
      [=](subscribe_atom, const caf::actor& subscriber) -> uint64_t {
        self->monitor(subscriber);
        self->state.subscribers.push_back(subscriber);
        // Every event after this one will be pushed to the subscriber.
        return self->state.committed_gseq;
      },
      [=](stats_atom) { return self->state.stats; },
  };
}

}  // namespace

caf::actor spawn_journal(caf::actor_system& sys, persistence::event_store& store) {
  return sys.spawn(journal, &store);
}

}  // namespace kumo::actors
