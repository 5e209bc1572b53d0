// The LDAP actor: mirrors the directory into one account's IAM users and
// groups (periodically and on demand) and turns LDAP passwords into
// temporary access keys. It blocks on the network, so it runs detached
// (its own thread), and handles one sync or login at a time:
//   (ldap_sync_atom, request_meta)                          -> sync_report
//   (ldap_login_atom, user, password, request_meta)         -> login_reply
#pragma once

#include "actors/iam/user.h"
#include "actors/ldap/ldap_config.h"
#include "actors/ldap/sync_plan.h"
#include "actors/protocol/messages.h"

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/fwd.hpp>

#include <optional>

namespace kumo::actors {
using ldap_sync_atom = caf::atom_constant<caf::atom("ldapsync")>;
using ldap_login_atom = caf::atom_constant<caf::atom("ldaplogin")>;
}  // namespace kumo::actors

namespace kumo::actors::ldap {

struct sync_report {
  std::optional<api_error> error;  // set: the sync stopped (LDAP unreachable: nothing was written)
  std::vector<sync_step> applied;
  std::vector<std::string> skipped;
  uint64_t global_seq = 0;
};

struct login_reply {
  std::optional<api_error> error;
  std::string account_id;
  std::string user_name;
  std::string user_arn;
  iam::access_key key;
  uint64_t global_seq = 0;
};

caf::actor spawn_ldap(caf::actor_system& sys, ldap_config cfg, caf::actor users, caf::actor groups,
                      caf::actor iam_view);

}  // namespace kumo::actors::ldap

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kumo::actors::ldap::sync_report)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kumo::actors::ldap::login_reply)
