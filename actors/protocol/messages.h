// What actors say to each other inside the cloud role. Every atom and shared
// message type is here, so the protocol is visible in one place.
#pragma once

#include "actors/runtime/decision.h"
#include "persistence/event_store.h"

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace kumo::actors {

// Journal
using append_atom = caf::atom_constant<caf::atom("append")>;        // (append, append_request) -> append_reply
using subscribe_atom = caf::atom_constant<caf::atom("subscribe")>;  // (subscribe, actor) -> last global seq
using committed_atom = caf::atom_constant<caf::atom("committed")>;  // journal -> subscribers
using stats_atom = caf::atom_constant<caf::atom("stats")>;          // -> journal_stats
// Aggregates
using get_state_atom = caf::atom_constant<caf::atom("getstate")>;   // (id, getstate) -> command_reply
using idle_atom = caf::atom_constant<caf::atom("idle")>;            // aggregate -> registry: may I stop?
using stop_atom = caf::atom_constant<caf::atom("stop")>;            // registry -> aggregate: yes
// Projections
using checkpoint_atom = caf::atom_constant<caf::atom("checkpnt")>;  // write a checkpoint now -> global seq
using tick_atom = caf::atom_constant<caf::atom("tick")>;            // periodic housekeeping
using applied_atom = caf::atom_constant<caf::atom("applied")>;      // (applied) -> last applied global seq

// Who asks, and on behalf of which request: travels with every command into
// every event it causes.
struct request_meta {
  std::string principal;
  std::string request_id;
};

// The journal's answer to one append. The stored records themselves go to
// the subscribers (projections), not back to the writer, which already has
// its events.
struct append_reply {
  persistence::status result;
  uint64_t stream_version = 0;
  uint64_t last_global_seq = 0;
};

struct journal_stats {
  uint64_t batches = 0;
  uint64_t appends = 0;
  uint64_t events = 0;
  uint64_t largest_batch = 0;  // appends in the largest group commit
};

using committed_events = std::vector<persistence::event_record>;

}  // namespace kumo::actors

// These messages stay inside one process (the cloud role) for now, so they
// are allowed without a CAF serializer. A message that crosses CAF nodes (the
// node and storage roles) needs an `inspect` overload instead.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kumo::persistence::append_request)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kumo::actors::append_reply)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kumo::actors::journal_stats)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kumo::actors::committed_events)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kumo::actors::request_meta)
