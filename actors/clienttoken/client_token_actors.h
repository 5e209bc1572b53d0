// The ClientToken aggregate as an actor (registry in actors::cloud_actors):
//   (std::string "<account>/<token>", client_token::command, request_meta) -> client_token_reply
#pragma once

#include "actors/clienttoken/client_token.h"
#include "actors/protocol/messages.h"

#include <caf/allowed_unsafe_message_type.hpp>

namespace kumo::actors::client_token {
using client_token_reply = command_reply<aggregate>;
}  // namespace kumo::actors::client_token

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kumo::actors::client_token::command)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kumo::actors::client_token::client_token_reply)
