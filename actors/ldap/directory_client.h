// Reading an LDAP directory with libldap (OpenLDAP): every user and group
// in one go, and password checks by a simple bind as the user's DN. Blocking
// calls with timeouts; run them off the actor scheduler (a detached actor).
#pragma once

#include "actors/ldap/ldap_config.h"

#include <optional>
#include <set>
#include <string>
#include <vector>

namespace kumo::actors::ldap {

struct ldap_user {
  std::string name;  // the user attribute (uid)
  std::string dn;
  bool operator==(const ldap_user&) const = default;
};

struct ldap_group {
  std::string name;  // the group attribute (cn)
  std::string dn;
  std::set<std::string> members;  // user names (member DNs resolved through the users read)
  bool operator==(const ldap_group&) const = default;
};

struct ldap_snapshot {
  std::vector<ldap_user> users;
  std::vector<ldap_group> groups;
};

// Everything or nothing: any failure (server down, bad bind, a search error)
// returns nullopt with `error` saying what and where.
std::optional<ldap_snapshot> read_directory(const ldap_config& cfg, std::string& error);

enum class password_check { ok, rejected, unavailable };

// Finds the user's DN (with the service account) and binds as it with
// `password`. An empty password is always rejected (it would be an
// unauthenticated bind). `dn` is set on success.
password_check check_password(const ldap_config& cfg, const std::string& user_name, const std::string& password,
                              std::string& dn, std::string& error);

// "uid=a, ou=People,DC=x" -> "uid=a,ou=people,dc=x": how member DNs are compared.
std::string normalize_dn(const std::string& dn);
// RFC 4515 escaping of a value inside a search filter.
std::string escape_filter_value(const std::string& value);

}  // namespace kumo::actors::ldap
