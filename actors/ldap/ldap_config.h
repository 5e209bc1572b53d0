// How kumo reaches an LDAP directory. Set through kumod's --ldap-* flags or
// the config file's ldap-* keys (see set_option for the list).
#pragma once

#include <cstdint>
#include <string>

namespace kumo::actors::ldap {

struct ldap_config {
  std::string uri;             // ldap://host:389 or ldaps://host:636; empty = no directory
  std::string bind_dn;         // the service account that reads users and groups
  std::string bind_password;   // its password (prefer bind-password-file)
  std::string user_base;       // where users live, e.g. ou=people,dc=example,dc=org
  std::string user_filter = "(objectClass=inetOrgPerson)";
  std::string user_attribute = "uid";  // -> kumo user name
  std::string group_base;
  std::string group_filter = "(objectClass=groupOfNames)";
  std::string group_attribute = "cn";       // -> kumo group name
  std::string member_attribute = "member";  // DNs of members (or "memberUid": user names)
  bool starttls = false;            // StartTLS on an ldap:// connection
  std::string ca_file;              // CA certificates for ldaps:// / StartTLS
  std::string require_cert = "demand";  // demand | allow | never (TLS peer check)
  unsigned timeout_seconds = 5;     // network and operation timeout
  std::string account_id;           // the account users and groups are mirrored into (default: admin)
  unsigned sync_seconds = 300;      // periodic sync; 0 = only on demand
  unsigned session_seconds = 3600;  // lifetime of login keys

  bool enabled() const { return !uri.empty(); }
};

// Sets one option by its flag name without the "ldap-" prefix: uri, bind-dn,
// bind-password, bind-password-file, user-base, user-filter, user-attribute,
// group-base, group-filter, group-attribute, member-attribute, starttls
// (true|false), ca-file, require-cert, timeout-seconds, account,
// sync-seconds, session-seconds. False with `error` on a bad name or value.
bool set_option(ldap_config& c, const std::string& name, const std::string& value, std::string& error);
// What is missing for a working configuration, or empty.
std::string incomplete(const ldap_config& c);

}  // namespace kumo::actors::ldap
