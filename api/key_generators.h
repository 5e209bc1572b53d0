// Key generation off the request path. RSA 2048 costs tens of milliseconds
// of CPU; done inside request actors, a few clients looping CreateKeyPair
// would hold every scheduler thread and stall every other request. The
// generators are a bounded pool of detached actors (threads of their own),
// so at most `workers` cores ever generate keys.
#pragma once

#include "api/ssh_keys.h"

#include <caf/atom.hpp>
#include <caf/fwd.hpp>
#include <caf/meta/type_name.hpp>

#include <cstddef>

namespace kumo::api {

using generate_key_atom = caf::atom_constant<caf::atom("genkey")>;

// (generate_key_atom, std::string type) -> generated_key, or an error when
// libcrypto fails. Round robin over `workers` detached actors.
caf::actor spawn_key_generators(caf::actor_system& sys, size_t workers);

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, generated_key& k) {
  return f(caf::meta::type_name("kumo::api::generated_key"), k.private_key, k.public_key, k.fingerprint);
}

}  // namespace kumo::api
