// The Account aggregate and the accounts view as actors, and the messages
// that reach them:
//   registry: (std::string account_id, account::command, request_meta) -> account_reply
//             (std::string account_id, get_state_atom)                  -> account_reply
//   view:     (find_key_atom, access_key_id, min_global_seq)    -> std::optional<key_owner>
//             (find_account_atom, account_id, min_global_seq)   -> std::optional<account_summary>
//             (admin_atom, min_global_seq)                      -> std::optional<account_summary>
//             (list_atom, min_global_seq)                       -> std::vector<account_summary>
//             plus the projection runtime's checkpoint_atom / applied_atom.
#pragma once

#include "actors/account/account.h"
#include "actors/account/accounts_view.h"
#include "actors/protocol/messages.h"

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/fwd.hpp>

#include <chrono>
#include <optional>

namespace kumo::actors {

using find_key_atom = caf::atom_constant<caf::atom("findkey")>;
using find_account_atom = caf::atom_constant<caf::atom("findacct")>;
using admin_atom = caf::atom_constant<caf::atom("admin")>;
using list_atom = caf::atom_constant<caf::atom("list")>;

}  // namespace kumo::actors

namespace kumo::actors::account {

// The reply to every account command (see actors/runtime/decision.h).
using account_reply = command_reply<aggregate>;

caf::actor spawn_registry(caf::actor_system& sys, const caf::actor& journal,
                          persistence::event_store& store);
caf::actor spawn_view(caf::actor_system& sys, const caf::actor& journal,
                      persistence::event_store& store);

// Blocking helpers for callers outside the actor world (the daemon's
// bootstrap, tools, tests). A timeout or dead actor comes back as an
// InternalError reply from commands, and as std::runtime_error from queries.
class client {
 public:
  client(caf::actor_system& sys, caf::actor registry, caf::actor view,
         std::chrono::milliseconds timeout = std::chrono::seconds(30));
  ~client();

  account_reply send(const std::string& account_id, command cmd, const request_meta& meta);
  // A fresh account id; retried on the (astronomically unlikely) id collision.
  account_reply create(const std::string& name, bool admin, const request_meta& meta);
  account_reply get(const std::string& account_id);

  std::optional<account_summary> admin(uint64_t min_global_seq = 0);
  std::optional<key_owner> find_key(const std::string& access_key_id, uint64_t min_global_seq = 0);
  std::vector<account_summary> list(uint64_t min_global_seq = 0);

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace kumo::actors::account

// Local to the cloud role (see actors/protocol/messages.h).
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kumo::actors::account::command)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kumo::actors::account::account_reply)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::optional<kumo::actors::account::key_owner>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::optional<kumo::actors::account::account_summary>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<kumo::actors::account::account_summary>)
