#include "ldap.h"

#include "actors/ldap/ldap_actors.h"

#include <spdlog/spdlog.h>

namespace kumo::daemon {

bool start_ldap(caf::actor_system& sys, const config& cfg, actors::account::client& accounts,
                actors::cloud_actors& cloud, std::string& error) {
  if (!cfg.ldap.enabled()) return true;
  auto ldap = cfg.ldap;
  if (ldap.account_id.empty()) {
    auto admin = accounts.admin();
    if (!admin) {
      error = "LDAP: no admin account to mirror the directory into";
      return false;
    }
    ldap.account_id = admin->account_id;
  } else if (!accounts.get(ldap.account_id).state.exists) {
    error = "--ldap-account=" + ldap.account_id + " is not an account of this cloud";
    return false;
  }
  spdlog::info("kumod: LDAP directory {} (users under {}, groups under {}) mirrored into account {}{}; sync every {} s",
               ldap.uri, ldap.user_base, ldap.group_base, ldap.account_id, ldap.starttls ? " with StartTLS" : "",
               ldap.sync_seconds);
  cloud.ldap = actors::ldap::spawn_ldap(sys, ldap, cloud.users, cloud.groups, cloud.iam_view);
  return true;
}

}  // namespace kumo::daemon
