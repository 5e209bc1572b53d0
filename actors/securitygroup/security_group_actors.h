// The SecurityGroup aggregate and the security groups view as actors:
//   registry: (std::string "<account>/<name>", security_group::command, request_meta)
//             -> security_group_reply
//   view:     (list_groups_atom, account_id, min_global_seq) -> std::vector<security_group::state>
#pragma once

#include "actors/protocol/messages.h"
#include "actors/securitygroup/security_group.h"

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/fwd.hpp>

namespace kumo::actors {
using list_groups_atom = caf::atom_constant<caf::atom("listgroups")>;
}  // namespace kumo::actors

namespace kumo::actors::security_group {

using security_group_reply = command_reply<aggregate>;

caf::actor spawn_registry(caf::actor_system& sys, const caf::actor& journal,
                          persistence::event_store& store);
caf::actor spawn_view(caf::actor_system& sys, const caf::actor& journal,
                      persistence::event_store& store);

}  // namespace kumo::actors::security_group

// Local to the cloud role (see actors/protocol/messages.h).
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kumo::actors::security_group::command)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kumo::actors::security_group::security_group_reply)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<kumo::actors::security_group::state>)
