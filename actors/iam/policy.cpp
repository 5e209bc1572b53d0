#include "actors/iam/policy.h"

#include <nlohmann/json.hpp>

#include <cctype>

namespace kumo::actors::iam {
namespace {

using json = nlohmann::json;

bool same_char(char a, char b, bool ignore_case) {
  return ignore_case ? std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b))
                     : a == b;
}

// A string or a non-empty array of strings.
bool string_list(const json& j, std::vector<std::string>& out) {
  if (j.is_string()) {
    out.push_back(j.get<std::string>());
    return true;
  }
  if (!j.is_array() || j.empty()) return false;
  for (const auto& v : j) {
    if (!v.is_string()) return false;
    out.push_back(v.get<std::string>());
  }
  return true;
}

bool valid_action(const std::string& a) {
  if (a == "*") return true;
  auto colon = a.find(':');
  return colon != std::string::npos && colon > 0 && colon + 1 < a.size() &&
         a.find(':', colon + 1) == std::string::npos;
}

bool valid_resource(const std::string& r) { return r == "*" || r.rfind("arn:", 0) == 0; }

std::optional<statement> parse_statement(const json& s, std::string& error) {
  if (!s.is_object()) {
    error = "each Statement must be an object";
    return std::nullopt;
  }
  for (const auto& [key, value] : s.items()) {
    if (key == "Principal" || key == "NotPrincipal") {
      error = "Policy document should not specify a principal.";
      return std::nullopt;
    }
    if (key == "Condition" || key == "NotResource") {
      error = key + " is not supported by kumo's policy evaluation";
      return std::nullopt;
    }
    if (key != "Sid" && key != "Effect" && key != "Action" && key != "NotAction" && key != "Resource") {
      error = "Syntax errors in policy: unknown key '" + key.substr(0, 64) + "' in Statement";
      return std::nullopt;
    }
  }
  statement st;
  if (!s.contains("Effect") || !s["Effect"].is_string() ||
      (s["Effect"] != "Allow" && s["Effect"] != "Deny")) {
    error = "Effect must be \"Allow\" or \"Deny\"";
    return std::nullopt;
  }
  st.allow = s["Effect"] == "Allow";
  if (s.contains("Action") == s.contains("NotAction")) {
    error = "each Statement needs exactly one of Action or NotAction";
    return std::nullopt;
  }
  st.not_action = s.contains("NotAction");
  if (!string_list(s[st.not_action ? "NotAction" : "Action"], st.actions)) {
    error = "Action must be a string or a non-empty list of strings";
    return std::nullopt;
  }
  for (const auto& a : st.actions)
    if (!valid_action(a)) {
      error = "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc. ('" + a.substr(0, 64) + "')";
      return std::nullopt;
    }
  if (!s.contains("Resource") || !string_list(s["Resource"], st.resources)) {
    error = "Policy statement must contain resources.";
    return std::nullopt;
  }
  for (const auto& r : st.resources)
    if (!valid_resource(r)) {
      error = "Resource " + r.substr(0, 64) + " must be in ARN format or \"*\".";
      return std::nullopt;
    }
  return st;
}

bool matches_any(const std::vector<std::string>& patterns, const std::string& text, bool ignore_case) {
  for (const auto& p : patterns)
    if (wildcard_match(p, text, ignore_case)) return true;
  return false;
}

bool applies(const statement& st, const std::string& action, const std::string& resource) {
  bool action_hit = matches_any(st.actions, action, true);
  if (st.not_action) action_hit = !action_hit;
  return action_hit && matches_any(st.resources, resource, false);
}

}  // namespace

bool wildcard_match(std::string_view pattern, std::string_view text, bool ignore_case) {
  // Iterative glob with backtracking to the last '*': linear in practice.
  size_t p = 0, t = 0, star = std::string_view::npos, mark = 0;
  while (t < text.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || (pattern[p] != '*' && same_char(pattern[p], text[t], ignore_case)))) {
      ++p;
      ++t;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

std::optional<policy> parse_policy(const std::string& document, std::string& error) {
  auto j = json::parse(document, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    error = "Syntax errors in policy: the document is not a JSON object";
    return std::nullopt;
  }
  for (const auto& [key, value] : j.items())
    if (key != "Version" && key != "Id" && key != "Statement") {
      error = "Syntax errors in policy: unknown key '" + key.substr(0, 64) + "'";
      return std::nullopt;
    }
  if (j.contains("Version") && j["Version"] != "2012-10-17" && j["Version"] != "2008-10-17") {
    error = "The policy failed legacy parsing: Version must be 2012-10-17 or 2008-10-17";
    return std::nullopt;
  }
  if (!j.contains("Statement")) {
    error = "Syntax errors in policy: missing Statement";
    return std::nullopt;
  }
  json statements = j["Statement"].is_array() ? j["Statement"] : json::array({j["Statement"]});
  if (statements.empty()) {
    error = "Syntax errors in policy: Statement is empty";
    return std::nullopt;
  }
  policy out;
  for (const auto& s : statements) {
    auto st = parse_statement(s, error);
    if (!st) return std::nullopt;
    out.statements.push_back(std::move(*st));
  }
  return out;
}

verdict evaluate(const std::vector<policy>& policies, const std::string& action,
                 const std::vector<std::string>& resources) {
  const std::vector<std::string> any{"*"};
  const auto& wanted = resources.empty() ? any : resources;
  bool all_allowed = true;
  for (const auto& resource : wanted) {
    bool allowed = false;
    for (const auto& p : policies)
      for (const auto& st : p.statements) {
        if (!applies(st, action, resource)) continue;
        if (!st.allow) return verdict::explicit_deny;
        allowed = true;
      }
    all_allowed = all_allowed && allowed;
  }
  return all_allowed ? verdict::allow : verdict::implicit_deny;
}

verdict evaluate_documents(const std::vector<std::string>& documents, const std::string& action,
                           const std::vector<std::string>& resources) {
  std::vector<policy> policies;
  for (const auto& d : documents) {
    std::string error;
    if (auto p = parse_policy(d, error)) policies.push_back(std::move(*p));
  }
  return evaluate(policies, action, resources);
}

}  // namespace kumo::actors::iam
