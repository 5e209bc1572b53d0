// Starts the LDAP actor when a directory is configured (--ldap-uri).
#pragma once

#include "config.h"

#include "actors/account/account_actors.h"
#include "actors/cloud.h"

namespace kumo::daemon {

// Sets cloud.ldap (users and groups go to --ldap-account, default the admin
// account). True when there is nothing to start, or it started.
bool start_ldap(caf::actor_system& sys, const config& cfg, actors::account::client& accounts,
                actors::cloud_actors& cloud, std::string& error);

}  // namespace kumo::daemon
