// The storage role: the Volume and Snapshot aggregates and the storage
// controller, a level-triggered reconciler over the volumes/snapshots read
// model and the backing files:
//   desired  = the log: a creating volume needs its file, a deleting one
//              needs it gone, a pending snapshot needs its copy;
//   observed = the files under <data dir>/volumes and /snapshots;
//   act      = one detached worker per file operation, whose result goes back
//              to the aggregate as a command (file_ready, copy_done, ...).
// It runs on start, after every change and every `resync`, so a crash in the
// middle of any of these is finished (or undone) after restart, and a file
// nobody in the log owns is removed.
//
//   (list_volumes_atom, account, min_global_seq)   -> std::vector<volume::state>   the account's own
//   (list_snapshots_atom, account, min_global_seq) -> std::vector<snapshot::state> own, shared, public
//   (claim_device_atom, account, instance_id, target_dev, claimant, min_global_seq) -> bool
//       reserves a device of an instance for an AttachVolume in progress: false
//       when a volume of that instance has it or another attach claimed it
//   (release_device_atom, instance_id, target_dev, claimant)
#pragma once

#include "actors/protocol/messages.h"
#include "actors/storage/snapshot.h"
#include "actors/storage/volume.h"

#include <caf/actor.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/fwd.hpp>

#include <chrono>
#include <string>
#include <vector>

namespace kumo::actors {

using list_volumes_atom = caf::atom_constant<caf::atom("listvols")>;
using list_snapshots_atom = caf::atom_constant<caf::atom("listsnaps")>;
using claim_device_atom = caf::atom_constant<caf::atom("devclaim")>;
using release_device_atom = caf::atom_constant<caf::atom("devrelease")>;

struct storage_config {
  std::string data_dir;  // empty: no storage role in this process
  std::chrono::milliseconds resync{2000};
};

struct storage_actors {
  caf::actor volumes;     // Volume aggregate registry
  caf::actor snapshots;   // Snapshot aggregate registry
  caf::actor controller;  // the storage controller (and volumes/snapshots view)
};

storage_actors spawn_storage(caf::actor_system& sys, const caf::actor& journal, persistence::event_store& store,
                             storage_config cfg);

using volume_reply = command_reply<volume::aggregate>;
using snapshot_reply = command_reply<snapshot::aggregate>;

}  // namespace kumo::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kumo::actors::volume::command)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kumo::actors::volume_reply)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<kumo::actors::volume::state>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kumo::actors::snapshot::command)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kumo::actors::snapshot_reply)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<kumo::actors::snapshot::state>)
