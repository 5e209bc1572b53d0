#include "actors/ldap/ldap_config.h"

#include <fstream>
#include <sstream>

namespace kumo::actors::ldap {
namespace {

bool number(const std::string& value, unsigned& out) {
  if (value.empty() || value.size() > 7 || value.find_first_not_of("0123456789") != std::string::npos) return false;
  out = static_cast<unsigned>(std::stoul(value));
  return true;
}

}  // namespace

bool set_option(ldap_config& c, const std::string& name, const std::string& value, std::string& error) {
  auto bad = [&](const std::string& what) {
    error = "--ldap-" + name + " " + what + ", got '" + value.substr(0, 64) + "'";
    return false;
  };
  if (name == "uri") {
    if (value.rfind("ldap://", 0) != 0 && value.rfind("ldaps://", 0) != 0) return bad("must be ldap://HOST[:PORT] or ldaps://...");
    c.uri = value;
  } else if (name == "bind-dn") c.bind_dn = value;
  else if (name == "bind-password") c.bind_password = value;
  else if (name == "bind-password-file") {
    std::ifstream in(value);
    if (!in) return bad("is not a readable file");
    std::stringstream ss;
    ss << in.rdbuf();
    c.bind_password = ss.str();
    while (!c.bind_password.empty() && (c.bind_password.back() == '\n' || c.bind_password.back() == '\r'))
      c.bind_password.pop_back();
  } else if (name == "user-base") c.user_base = value;
  else if (name == "user-filter") c.user_filter = value;
  else if (name == "user-attribute") c.user_attribute = value;
  else if (name == "group-base") c.group_base = value;
  else if (name == "group-filter") c.group_filter = value;
  else if (name == "group-attribute") c.group_attribute = value;
  else if (name == "member-attribute") c.member_attribute = value;
  else if (name == "starttls") {
    if (value != "true" && value != "false") return bad("must be true or false");
    c.starttls = value == "true";
  } else if (name == "ca-file") c.ca_file = value;
  else if (name == "require-cert") {
    if (value != "demand" && value != "allow" && value != "never") return bad("must be demand, allow or never");
    c.require_cert = value;
  } else if (name == "timeout-seconds") {
    if (!number(value, c.timeout_seconds) || c.timeout_seconds == 0) return bad("must be a whole number of seconds");
  } else if (name == "account") {
    if (value.size() != 12 || value.find_first_not_of("0123456789") != std::string::npos) return bad("must be a 12-digit account id");
    c.account_id = value;
  } else if (name == "sync-seconds") {
    if (!number(value, c.sync_seconds)) return bad("must be a whole number of seconds");
  } else if (name == "session-seconds") {
    if (!number(value, c.session_seconds) || c.session_seconds < 60 || c.session_seconds > 129600)
      return bad("must be 60 to 129600 seconds");
  } else {
    error = "unknown setting 'ldap-" + name + "'";
    return false;
  }
  return true;
}

std::string incomplete(const ldap_config& c) {
  if (!c.enabled()) return {};
  if (c.user_base.empty()) return "--ldap-user-base is required with --ldap-uri";
  if (c.group_base.empty()) return "--ldap-group-base is required with --ldap-uri";
  return {};
}

}  // namespace kumo::actors::ldap
