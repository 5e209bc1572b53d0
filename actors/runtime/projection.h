// The projection runtime: an actor that folds the global log into a read model
// (what Describe* calls will read) and checkpoints it.
//
// A read model M is a plain class:
//   static constexpr const char* name;            // checkpoint key p/<name>
//   static constexpr uint32_t state_version;      // bump when save() changes shape
//   void apply(const persistence::event_record&); // ignores events it does not use
//   std::string save() const;  bool load(const std::string&);
//
// On start: load the checkpoint, read the log's tail, subscribe to the
// journal. Then every durable batch arrives as (committed_atom, events).
// Queries carry a `min_global_seq` (from a command_reply) and are answered
// only once the model has applied that event: a client reads its own writes.
// Include this header only from the .cpp that spawns a projection.
#pragma once

#include "actors/protocol/messages.h"
#include "persistence/event_store.h"

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include <functional>
#include <map>

namespace kumo::actors {

// Checkpoint after this many events, or on the periodic tick when dirty.
constexpr uint64_t checkpoint_every = 10'000;
constexpr auto checkpoint_interval = std::chrono::seconds(5);

template <class M>
struct projection_state {
  M model;
  uint64_t applied = 0;       // the last global seq folded into the model
  uint64_t checkpointed = 0;  // the global seq of the last written checkpoint
  bool stuck = false;         // an undecodable event stopped the fold (see the log)
  std::multimap<uint64_t, std::function<void()>> waiting;  // queries by min_global_seq
  std::function<void()> after_fold;  // optional: react to what was just folded (controllers)
  static inline const char* name = "projection";
};

// Builds M from the checkpoint (if its shape is current) plus the log after it.
template <class M>
persistence::status rebuild_model(persistence::event_store& store, M& model, uint64_t& applied,
                                  uint64_t up_to = UINT64_MAX) {
  persistence::status st;
  auto cp = store.get_checkpoint(M::name, st);
  if (!st.ok()) return st;
  if (cp && cp->state_version == M::state_version && model.load(cp->state)) {
    applied = cp->global_seq;
  } else {
    model = M{};
    applied = 0;
  }
  return store.read_all(applied + 1, [&](const persistence::event_record& r) {
    if (r.global_seq > up_to) return false;
    model.apply(r);
    applied = r.global_seq;
    return true;
  });
}

template <class M>
void write_checkpoint(caf::stateful_actor<projection_state<M>>* self,
                      persistence::event_store* store) {
  auto& st = self->state;
  if (st.checkpointed == st.applied) return;
  auto s = store->put_checkpoint(M::name, {st.applied, M::state_version, st.model.save()});
  if (!s.ok()) {
    spdlog::warn("projection {}: checkpoint failed ({}); it will replay further next start",
                 M::name, s.message);
    return;
  }
  st.checkpointed = st.applied;
}

template <class M>
void release_waiting(caf::stateful_actor<projection_state<M>>* self) {
  auto& w = self->state.waiting;
  auto end = w.upper_bound(self->state.applied);
  for (auto it = w.begin(); it != end; ++it) it->second();
  w.erase(w.begin(), end);
}

template <class M>
void fold(caf::stateful_actor<projection_state<M>>* self, persistence::event_store* store,
          const persistence::event_record& r) {
  auto& st = self->state;
  st.model.apply(r);
  st.applied = r.global_seq;
  if (st.applied - st.checkpointed >= checkpoint_every) write_checkpoint(self, store);
}

// Reads events (applied, up_to] from the store: fills gaps the push missed.
template <class M>
void catch_up(caf::stateful_actor<projection_state<M>>* self, persistence::event_store* store,
              uint64_t up_to) {
  auto& st = self->state;
  if (st.stuck || st.applied >= up_to) return;
  auto s = store->read_all(st.applied + 1, [&](const persistence::event_record& r) {
    if (r.global_seq > up_to) return false;
    fold(self, store, r);
    return true;
  });
  if (!s.ok()) {
    st.stuck = true;
    spdlog::error("projection {}: stopped at event #{}: {}; run `kumoctl verify`", M::name,
                  st.applied, s.message);
  }
}

// Answers a query with f() once the model has applied `min_global_seq`.
template <class M, class F>
void answer_when_applied(caf::stateful_actor<projection_state<M>>* self, uint64_t min_global_seq,
                         F f) {
  auto rp = self->make_response_promise();
  if (self->state.stuck) {  // never answer from a read model known to be behind
    rp.deliver(caf::make_error(caf::sec::runtime_error,
                               std::string("read model ") + M::name + " is stuck; run `kumoctl verify`"));
    return;
  }
  if (self->state.applied >= min_global_seq) {
    rp.deliver(f());
    return;
  }
  self->state.waiting.emplace(min_global_seq, [rp, f]() mutable { rp.deliver(f()); });
}

// The projection's behaviour: the runtime's handlers plus the model's queries.
template <class M, class... Queries>
caf::behavior projection_behavior(caf::stateful_actor<projection_state<M>>* self,
                                  persistence::event_store* store, caf::actor journal,
                                  Queries... queries) {
  auto& st = self->state;
  if (auto s = rebuild_model(*store, st.model, st.applied); !s.ok()) {
    st.stuck = true;
    spdlog::error("projection {}: cannot rebuild: {}; run `kumoctl verify`", M::name, s.message);
  }
  st.checkpointed = st.applied;
  spdlog::info("projection {}: at event #{}", M::name, st.applied);
  self->request(journal, caf::infinite, subscribe_atom::value, caf::actor_cast<caf::actor>(self))
      .then([=](uint64_t journal_last) {
        catch_up(self, store, journal_last);
        release_waiting(self);
        if (self->state.after_fold) self->state.after_fold();
      });
  self->delayed_send(self, checkpoint_interval, tick_atom::value);
  return {
      [=](committed_atom, const committed_events& events) {
        auto& st = self->state;
        if (events.empty() || st.stuck) return;
        catch_up(self, store, events.front().global_seq - 1);  // a gap: read it from disk
        for (const auto& r : events)
          if (r.global_seq == st.applied + 1) fold(self, store, r);
        release_waiting(self);
        if (st.after_fold) st.after_fold();
      },
      [=](checkpoint_atom) {
        write_checkpoint(self, store);
        return self->state.checkpointed;
      },
      [=](tick_atom) {
        write_checkpoint(self, store);
        self->delayed_send(self, checkpoint_interval, tick_atom::value);
      },
      [=](applied_atom) { return self->state.applied; },
      queries...,
  };
}

// A projection whose one query lists an account's resources:
//   (ListAtom, account_id, min_global_seq) -> std::vector<state>
template <class Model, class ListAtom>
caf::behavior account_list_view(caf::stateful_actor<projection_state<Model>>* self,
                                persistence::event_store* store, caf::actor journal) {
  return projection_behavior(self, store, journal,
                             [=](ListAtom, const std::string& account, uint64_t min_gseq) {
                               answer_when_applied(self, min_gseq, [self, account] {
                                 return self->state.model.list(account);
                               });
                             });
}

}  // namespace kumo::actors
