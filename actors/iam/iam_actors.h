// The User and Group aggregates and the IAM directory view as actors:
//   users:  (std::string "<account>/<user>", iam::user_command, request_meta)   -> user_reply
//   groups: (std::string "<account>/<group>", iam::group_command, request_meta) -> group_reply
//   view:   (iam_key_atom, access_key_id, min_global_seq) -> std::optional<caller_identity>
//           (iam_dir_atom, account_id, min_global_seq)    -> iam::directory
//           (iam_user_atom, account_id, user, min_global_seq) -> iam::directory (directory_model::of_user)
#pragma once

#include "actors/iam/directory.h"
#include "actors/protocol/messages.h"

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/actor.hpp>
#include <caf/fwd.hpp>

namespace kumo::actors {
using iam_key_atom = caf::atom_constant<caf::atom("iamkey")>;
using iam_dir_atom = caf::atom_constant<caf::atom("iamdir")>;
using iam_user_atom = caf::atom_constant<caf::atom("iamuser")>;
}  // namespace kumo::actors

namespace kumo::actors::iam {

using user_reply = command_reply<user_aggregate>;
using group_reply = command_reply<group_aggregate>;

struct iam_actors {
  caf::actor users;
  caf::actor groups;
  caf::actor view;
};

iam_actors spawn_iam(caf::actor_system& sys, const caf::actor& journal, persistence::event_store& store);

}  // namespace kumo::actors::iam

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kumo::actors::iam::user_command)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kumo::actors::iam::group_command)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kumo::actors::iam::user_reply)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kumo::actors::iam::group_reply)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::optional<kumo::actors::iam::caller_identity>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kumo::actors::iam::directory)
