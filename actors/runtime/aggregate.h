// The aggregate runtime: one actor per resource, event-sourced.
//
// An aggregate definition A (see actors/account/account.h for a real one) is a
// struct with:
//   using state = ...;   using event = std::variant<...>;   using command = std::variant<...>;
//   static constexpr const char* kind = "account";        // stream = kind + "/" + id
//   static constexpr uint32_t state_version = 1;          // bump when `state` changes shape
//   static bool valid_id(const std::string&);
//   static decision<A> decide(const std::string& id, const state&, const command&);  // pure
//   static state apply(state, const event&);                    // pure; replay uses it
//   static persistence::new_event encode(const event&);
//   static persistence::status decode(const persistence::event_record&, event&);
//   static std::string save(const state&);                      // snapshot JSON
//   static bool load(const std::string&, state&);
//
// The actor is thin glue: command -> decide -> journal (durable) -> apply -> reply.
// Include this header only from the .cpp that spawns A's registry: it pulls in CAF.
#pragma once

#include "actors/protocol/messages.h"
#include "actors/runtime/decision.h"
#include "persistence/event_store.h"

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include <optional>
#include <string>
#include <unordered_map>
#include <variant>
#include <vector>

namespace kumo::actors {

// Snapshot every this many events: bounds the replay of a busy stream.
constexpr uint64_t snapshot_every = 64;

// Rebuilds an aggregate from its latest snapshot plus the events after it.
// Used by the actor on start, and by tests and kumoctl to prove replay.
template <class A>
persistence::status load_aggregate(persistence::event_store& store, const std::string& id,
                                   typename A::state& state, uint64_t& version,
                                   bool use_snapshot = true) {
  const auto stream = stream_of<A>(id);
  state = {};
  version = 0;
  persistence::status st;
  if (use_snapshot) {
    auto snap = store.get_snapshot(stream, st);
    if (!st.ok()) return st;
    if (snap && snap->state_version == A::state_version && A::load(snap->state, state))
      version = snap->stream_version;
    else
      state = {};  // missing or old-shaped snapshot: replay from the start
  }
  persistence::status failure;
  st = store.read_stream(stream, version + 1, [&](const persistence::event_record& r) {
    typename A::event ev;
    if (r.stream_seq != version + 1) {
      failure = persistence::status::error(
          persistence::status_code::corrupt,
          stream + ": expected event seq " + std::to_string(version + 1) + ", found " +
              std::to_string(r.stream_seq));
      return false;
    }
    if (auto d = A::decode(r, ev); !d.ok()) {
      failure = persistence::status::error(d.code, stream + " event seq " +
                                                        std::to_string(r.stream_seq) + ": " +
                                                        d.message);
      return false;
    }
    state = A::apply(std::move(state), ev);
    version = r.stream_seq;
    return true;
  });
  return st.ok() ? failure : st;
}

template <class A>
struct aggregate_actor_state {
  typename A::state value;
  uint64_t version = 0;
  uint64_t since_snapshot = 0;
  std::string id;
  std::optional<api_error> broken;  // set when replay failed: every command gets it
  uint64_t handled = 0;             // messages from the registry, for passivation
  static inline const char* name = "aggregate";
};

// An aggregate actor idle this long offers to stop (its state is in the log);
// the registry accepts only if nothing is on its way to it, so no request is
// ever lost and no two actors of one id ever run at once.
constexpr auto default_idle_timeout = std::chrono::minutes(2);

template <class A>
command_reply<A> reply_with_error(api_error err) {
  command_reply<A> r;
  r.error = std::move(err);
  return r;
}

template <class A>
caf::behavior aggregate_actor(caf::stateful_actor<aggregate_actor_state<A>>* self,
                              std::string id, caf::actor journal,
                              persistence::event_store* store, caf::actor registry,
                              caf::timespan idle_timeout) {
  auto& st = self->state;
  st.id = id;
  if (auto s = load_aggregate<A>(*store, id, st.value, st.version); !s.ok()) {
    spdlog::error("{} {}: cannot rebuild from the log: {}", A::kind, id, s.message);
    st.broken = api_error{"InternalError", "resource " + id +
                                               " cannot be loaded from the event log (" +
                                               s.message + "); run `kumoctl verify`"};
  }
  return {
      [=](typename A::command& cmd, request_meta& meta) {
        auto rp = self->make_response_promise();
        auto& st = self->state;
        ++st.handled;
        if (st.broken) {
          rp.deliver(reply_with_error<A>(*st.broken));
          return;
        }
        auto d = A::decide(st.id, st.value, cmd);
        if (d.error) {
          rp.deliver(reply_with_error<A>(*d.error));
          return;
        }
        if (d.events.empty()) {  // nothing to do (idempotent repeat)
          command_reply<A> r;
          r.state = st.value;
          r.version = st.version;
          rp.deliver(std::move(r));
          return;
        }
        persistence::append_request req{stream_of<A>(st.id), st.version, meta.principal,
                                        meta.request_id, {}};
        for (const auto& ev : d.events) req.events.push_back(A::encode(ev));
        // await: no other command is decided until this one is durable.
        self->request(journal, caf::infinite, append_atom::value, std::move(req))
            .await(
                [=](append_reply& ar) mutable {
                  auto& st = self->state;
                  if (!ar.result.ok()) {
                    spdlog::error("rid={} {} {}: append failed: {}", meta.request_id, A::kind,
                                  st.id, ar.result.message);
                    // Another writer moved the stream (should never happen in one
                    // process): re-read the truth before the next command.
                    if (auto s = load_aggregate<A>(*store, st.id, st.value, st.version); !s.ok())
                      st.broken = api_error{"InternalError", s.message};
                    rp.deliver(reply_with_error<A>(
                        {"InternalError", "could not record the change to " + st.id +
                                              " (request " + meta.request_id + "): " +
                                              ar.result.message}));
                    return;
                  }
                  for (const auto& ev : d.events) st.value = A::apply(std::move(st.value), ev);
                  st.version = ar.stream_version;
                  st.since_snapshot += d.events.size();
                  if (st.since_snapshot >= snapshot_every) {
                    st.since_snapshot = 0;
                    store->put_snapshot(stream_of<A>(st.id),
                                        {st.version, A::state_version, A::save(st.value)});
                  }
                  command_reply<A> r;
                  r.events = std::move(d.events);
                  r.state = st.value;
                  r.version = st.version;
                  r.global_seq = ar.last_global_seq;
                  rp.deliver(std::move(r));
                },
                [=](caf::error& err) mutable {
                  rp.deliver(reply_with_error<A>(
                      {"InternalError", "journal unavailable for " + self->state.id +
                                            " (request " + meta.request_id +
                                            "): " + self->system().render(err)}));
                });
      },
      [=](get_state_atom) {
        auto& st = self->state;
        ++st.handled;
        if (st.broken) return reply_with_error<A>(*st.broken);
        command_reply<A> r;
        r.state = st.value;
        r.version = st.version;
        return r;
      },
      [=](stop_atom) { self->quit(); },
      caf::after(idle_timeout) >>
          [=] { self->send(registry, idle_atom::value, self->state.id, self->state.handled); },
  };
}

struct registry_child {
  caf::actor actor;
  uint64_t delegated = 0;  // messages sent to it so far
};

struct registry_state {
  std::unordered_map<std::string, registry_child> children;
  static inline const char* name = "registry";
};

// Routes (id, command, meta) and (id, get_state_atom) to the one actor of that
// id, spawning it (and so replaying it) on first use, and lets idle ones go.
// (stats_atom) -> number of live aggregate actors.
template <class A>
caf::behavior aggregate_registry(caf::stateful_actor<registry_state>* self, caf::actor journal,
                                 persistence::event_store* store, caf::timespan idle_timeout) {
  auto child = [=](const std::string& id) {
    auto& c = self->state.children[id];
    if (!c.actor)  // linked: stopping the registry stops its aggregates
      c.actor = self->template spawn<caf::linked>(aggregate_actor<A>, id, journal, store,
                                                  caf::actor_cast<caf::actor>(self), idle_timeout);
    ++c.delegated;
    return c.actor;
  };
  auto bad_id = [](const std::string& id) {
    return reply_with_error<A>({"InvalidParameterValue",
                                std::string("'") + id + "' is not a valid " + A::kind + " id"});
  };
  return {
      // Handlers answer through the child (delegate) or a promise, never both.
      [=](const std::string& id, typename A::command& cmd, request_meta& meta) {
        if (!A::valid_id(id)) {
          self->make_response_promise().deliver(bad_id(id));
          return;
        }
        self->delegate(child(id), std::move(cmd), std::move(meta));
      },
      [=](const std::string& id, get_state_atom g) {
        if (!A::valid_id(id)) {
          self->make_response_promise().deliver(bad_id(id));
          return;
        }
        self->delegate(child(id), g);
      },
      // Passivation: the child has handled `handled` messages and been idle.
      // If that is all we ever sent it, nothing is in flight: let it go.
      [=](idle_atom, const std::string& id, uint64_t handled) {
        auto it = self->state.children.find(id);
        if (it == self->state.children.end() || it->second.delegated != handled ||
            it->second.actor.address() != self->current_sender())
          return;
        self->send(it->second.actor, stop_atom::value);
        self->state.children.erase(it);
      },
      [=](stats_atom) { return static_cast<uint64_t>(self->state.children.size()); },
  };
}

template <class A>
caf::actor spawn_aggregate_registry(caf::actor_system& sys, const caf::actor& journal,
                                    persistence::event_store& store,
                                    caf::timespan idle_timeout = default_idle_timeout) {
  return sys.spawn(aggregate_registry<A>, journal, &store, idle_timeout);
}

}  // namespace kumo::actors
