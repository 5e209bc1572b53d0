#include "actors/ldap/directory_client.h"

#include <ldap.h>

#include <cctype>
#include <map>
#include <memory>

namespace kumo::actors::ldap {
namespace {

struct connection {
  LDAP* ld = nullptr;
  ~connection() {
    if (ld) ldap_unbind_ext_s(ld, nullptr, nullptr);
  }
};

std::string describe(LDAP* ld, int rc) {
  std::string out = ldap_err2string(rc);
  char* diag = nullptr;
  if (ld && ldap_get_option(ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &diag) == LDAP_OPT_SUCCESS && diag) {
    if (*diag) out += std::string(" (") + diag + ")";
    ldap_memfree(diag);
  }
  return out;
}

// Connects (and StartTLS when configured); binds as `dn` with `password`.
// Returns the LDAP result code of the bind (or of what failed before it).
int open_and_bind(const ldap_config& cfg, connection& conn, const std::string& dn, const std::string& password,
                  std::string& error) {
  int rc = ldap_initialize(&conn.ld, cfg.uri.c_str());
  if (rc != LDAP_SUCCESS) {
    error = "LDAP URI " + cfg.uri + " is not usable: " + ldap_err2string(rc);
    return rc;
  }
  int version = LDAP_VERSION3;
  ldap_set_option(conn.ld, LDAP_OPT_PROTOCOL_VERSION, &version);
  ldap_set_option(conn.ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
  struct timeval tv{static_cast<time_t>(cfg.timeout_seconds), 0};
  ldap_set_option(conn.ld, LDAP_OPT_NETWORK_TIMEOUT, &tv);
  ldap_set_option(conn.ld, LDAP_OPT_TIMEOUT, &tv);
  if (!cfg.ca_file.empty()) ldap_set_option(conn.ld, LDAP_OPT_X_TLS_CACERTFILE, cfg.ca_file.c_str());
  int require = cfg.require_cert == "never" ? LDAP_OPT_X_TLS_NEVER
                : cfg.require_cert == "allow" ? LDAP_OPT_X_TLS_ALLOW
                                               : LDAP_OPT_X_TLS_DEMAND;
  ldap_set_option(conn.ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &require);
  int fresh = 0;
  ldap_set_option(conn.ld, LDAP_OPT_X_TLS_NEWCTX, &fresh);
  if (cfg.starttls) {
    rc = ldap_start_tls_s(conn.ld, nullptr, nullptr);
    if (rc != LDAP_SUCCESS) {
      error = "StartTLS with " + cfg.uri + " failed: " + describe(conn.ld, rc);
      return rc;
    }
  }
  berval cred{static_cast<ber_len_t>(password.size()), const_cast<char*>(password.data())};
  rc = ldap_sasl_bind_s(conn.ld, dn.empty() ? nullptr : dn.c_str(), LDAP_SASL_SIMPLE, &cred, nullptr, nullptr,
                        nullptr);
  if (rc != LDAP_SUCCESS)
    error = "LDAP bind as '" + (dn.empty() ? std::string("anonymous") : dn) + "' at " + cfg.uri +
            " failed: " + describe(conn.ld, rc);
  return rc;
}

struct entry {
  std::string dn;
  std::map<std::string, std::vector<std::string>> attributes;  // lower-case names
};

std::string lower(std::string s) {
  for (auto& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

bool search(const ldap_config& cfg, connection& conn, const std::string& base, const std::string& filter,
            std::vector<std::string> attrs, std::vector<entry>& out, std::string& error) {
  std::vector<char*> names;
  for (auto& a : attrs) names.push_back(a.data());
  names.push_back(nullptr);
  struct timeval tv{static_cast<time_t>(cfg.timeout_seconds), 0};
  LDAPMessage* res = nullptr;
  int rc = ldap_search_ext_s(conn.ld, base.c_str(), LDAP_SCOPE_SUBTREE, filter.c_str(), names.data(), 0, nullptr,
                             nullptr, &tv, 0, &res);
  std::unique_ptr<LDAPMessage, int (*)(LDAPMessage*)> guard(res, ldap_msgfree);
  if (rc != LDAP_SUCCESS) {
    error = "LDAP search of '" + base + "' with " + filter + " failed: " + describe(conn.ld, rc);
    return false;
  }
  for (auto* e = ldap_first_entry(conn.ld, res); e; e = ldap_next_entry(conn.ld, e)) {
    entry item;
    char* dn = ldap_get_dn(conn.ld, e);
    if (dn) {
      item.dn = dn;
      ldap_memfree(dn);
    }
    for (const auto& a : attrs) {
      berval** values = ldap_get_values_len(conn.ld, e, a.c_str());
      if (!values) continue;
      for (int i = 0; values[i]; ++i) item.attributes[lower(a)].emplace_back(values[i]->bv_val, values[i]->bv_len);
      ldap_value_free_len(values);
    }
    out.push_back(std::move(item));
  }
  return true;
}

std::string first(const entry& e, const std::string& attr) {
  auto it = e.attributes.find(lower(attr));
  return it == e.attributes.end() || it->second.empty() ? "" : it->second.front();
}

}  // namespace

std::string normalize_dn(const std::string& dn) {
  std::string out;
  bool after_separator = true;
  for (char ch : dn) {
    if (after_separator && ch == ' ') continue;
    out += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    after_separator = ch == ',' || ch == '=';
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

std::string escape_filter_value(const std::string& value) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned char ch : value) {
    if (ch == '*' || ch == '(' || ch == ')' || ch == '\\' || ch == 0) {
      out += '\\';
      out += hex[ch >> 4];
      out += hex[ch & 15];
    } else {
      out += static_cast<char>(ch);
    }
  }
  return out;
}

std::optional<ldap_snapshot> read_directory(const ldap_config& cfg, std::string& error) {
  connection conn;
  if (open_and_bind(cfg, conn, cfg.bind_dn, cfg.bind_password, error) != LDAP_SUCCESS) return std::nullopt;
  std::vector<entry> users, groups;
  if (!search(cfg, conn, cfg.user_base, cfg.user_filter, {cfg.user_attribute}, users, error)) return std::nullopt;
  if (!search(cfg, conn, cfg.group_base, cfg.group_filter, {cfg.group_attribute, cfg.member_attribute}, groups,
              error))
    return std::nullopt;
  ldap_snapshot snap;
  std::map<std::string, std::string> name_by_dn;
  for (const auto& u : users) {
    auto name = first(u, cfg.user_attribute);
    if (name.empty()) continue;
    snap.users.push_back({name, u.dn});
    name_by_dn[normalize_dn(u.dn)] = name;
  }
  const bool by_uid = lower(cfg.member_attribute) == "memberuid";
  for (const auto& g : groups) {
    ldap_group group{first(g, cfg.group_attribute), g.dn, {}};
    if (group.name.empty()) continue;
    auto members = g.attributes.find(lower(cfg.member_attribute));
    if (members != g.attributes.end())
      for (const auto& m : members->second) {
        if (by_uid) {
          group.members.insert(m);
        } else if (auto it = name_by_dn.find(normalize_dn(m)); it != name_by_dn.end()) {
          group.members.insert(it->second);
        }
      }
    snap.groups.push_back(std::move(group));
  }
  return snap;
}

password_check check_password(const ldap_config& cfg, const std::string& user_name, const std::string& password,
                              std::string& dn, std::string& error) {
  if (password.empty()) {
    error = "an empty password is not accepted";
    return password_check::rejected;
  }
  connection service;
  int rc = open_and_bind(cfg, service, cfg.bind_dn, cfg.bind_password, error);
  if (rc != LDAP_SUCCESS) return password_check::unavailable;
  std::vector<entry> found;
  auto filter = "(&" + cfg.user_filter + "(" + cfg.user_attribute + "=" + escape_filter_value(user_name) + "))";
  if (!search(cfg, service, cfg.user_base, filter, {cfg.user_attribute}, found, error))
    return password_check::unavailable;
  if (found.size() != 1) {
    error = "no single LDAP user '" + user_name + "' under " + cfg.user_base;
    return password_check::rejected;
  }
  connection as_user;
  rc = open_and_bind(cfg, as_user, found.front().dn, password, error);
  if (rc == LDAP_INVALID_CREDENTIALS) {
    error = "LDAP rejected the password of '" + user_name + "'";
    return password_check::rejected;
  }
  if (rc != LDAP_SUCCESS) return password_check::unavailable;
  dn = found.front().dn;
  return password_check::ok;
}

}  // namespace kumo::actors::ldap
