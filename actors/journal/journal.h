// The journal: the single writer of the event store.
//
// Every aggregate sends (append_atom, append_request) here. At most one synced
// WriteBatch is in flight; appends that arrive meanwhile are committed
// together in the next one (group commit). Each sender is answered only once
// its events are durable. After each batch the stored records go to every subscriber as
// (committed_atom, committed_events).
#pragma once

#include "persistence/event_store.h"

#include <caf/fwd.hpp>

namespace kumo::actors {

// The blocking write runs in a linked actor on its own thread, so fsync never
// stalls CAF's scheduler. `store` must outlive the actor.
caf::actor spawn_journal(caf::actor_system& sys, persistence::event_store& store);

}  // namespace kumo::actors
