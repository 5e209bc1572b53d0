// The journal: the single writer of the event store.
//
// Every aggregate sends (append_atom, append_request) here. Appends that queue
// up while a write is in flight are committed together in one synced
// WriteBatch (group commit); each sender is answered only once its events are
// durable. After each batch the stored records go to every subscriber as
// (committed_atom, committed_events).
#pragma once

#include "persistence/event_store.h"

#include <caf/fwd.hpp>

namespace kumo::actors {

// Runs on its own thread (fsync blocks; it must not block CAF's scheduler).
// `store` must outlive the actor.
caf::actor spawn_journal(caf::actor_system& sys, persistence::event_store& store);

}  // namespace kumo::actors
