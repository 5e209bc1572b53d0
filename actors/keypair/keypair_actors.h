// The KeyPair aggregate and the key pairs view as actors:
//   registry: (std::string "<account>/<name>", keypair::command, request_meta) -> keypair_reply
//   view:     (list_key_pairs_atom, account_id, min_global_seq) -> std::vector<keypair::state>
#pragma once

#include "actors/keypair/keypair.h"
#include "actors/protocol/messages.h"

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/fwd.hpp>

namespace kumo::actors {
using list_key_pairs_atom = caf::atom_constant<caf::atom("listkeys")>;
}  // namespace kumo::actors

namespace kumo::actors::keypair {

using keypair_reply = command_reply<aggregate>;

caf::actor spawn_registry(caf::actor_system& sys, const caf::actor& journal,
                          persistence::event_store& store);
caf::actor spawn_view(caf::actor_system& sys, const caf::actor& journal,
                      persistence::event_store& store);

}  // namespace kumo::actors::keypair

// Local to the cloud role (see actors/protocol/messages.h).
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kumo::actors::keypair::command)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kumo::actors::keypair::keypair_reply)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<kumo::actors::keypair::state>)
