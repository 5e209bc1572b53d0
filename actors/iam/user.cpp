#include "actors/iam/user.h"

#include "actors/iam/policy.h"
#include "actors/ids.h"
#include "actors/runtime/json_codec.h"

#include <nlohmann/json.hpp>

#include <algorithm>

namespace kumo::actors::iam {

using json = nlohmann::json;
using persistence::status;

namespace {

using decision_t = decision<user_aggregate>;

bool valid_iam_name(const std::string& name, size_t max) {
  return !name.empty() && name.size() <= max && std::all_of(name.begin(), name.end(), [](char c) {
           return std::isalnum(static_cast<unsigned char>(c)) || std::string_view("+=,.@_-").find(c) != std::string_view::npos;
         });
}

const access_key* find_key(const user_state& s, const std::string& id) {
  for (const auto& k : s.keys)
    if (k.access_key_id == id) return &k;
  return nullptr;
}

size_t permanent_keys(const user_state& s) {
  return std::count_if(s.keys.begin(), s.keys.end(), [](const access_key& k) { return k.expires_ms == 0; });
}

json key_json(const access_key& k) {
  return {{"access_key_id", k.access_key_id}, {"secret_access_key", k.secret_access_key},
          {"status", k.status},               {"created_ms", k.created_ms},
          {"expires_ms", k.expires_ms},       {"secret_session_token", k.secret_session_token}};
}

access_key key_from(const json& j) {
  return {j.at("access_key_id").get<std::string>(), j.at("secret_access_key").get<std::string>(),
          j.at("status").get<std::string>(),        j.at("created_ms").get<int64_t>(),
          j.at("expires_ms").get<int64_t>(),        j.at("secret_session_token").get<std::string>()};
}

json spec_json(const create_user& s) {
  return {{"user_id", s.user_id}, {"path", s.path}, {"created_ms", s.created_ms}, {"source", s.source},
          {"ldap_dn", s.ldap_dn}};
}

create_user spec_from(const json& j) {
  return {j.at("user_id").get<std::string>(), j.at("path").get<std::string>(), j.at("created_ms").get<int64_t>(),
          j.at("source").get<std::string>(), j.at("ldap_dn").get<std::string>()};
}

std::string iam_id(const char* prefix) {
  return prefix + random_chars(17, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567");
}

}  // namespace

bool valid_user_name(const std::string& name) { return valid_iam_name(name, 64); }
bool valid_group_name(const std::string& name) { return valid_iam_name(name, 128); }
bool valid_policy_name(const std::string& name) { return valid_iam_name(name, 128); }

bool valid_path(const std::string& path) {
  return !path.empty() && path.size() <= 512 && path.front() == '/' && path.back() == '/' &&
         std::all_of(path.begin(), path.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

std::string member_id(const std::string& account_id, const std::string& name) { return account_id + "/" + name; }
std::string account_of(const std::string& id) { return id.substr(0, id.find('/')); }
std::string name_of(const std::string& id) { return id.substr(id.find('/') + 1); }

std::string user_arn(const std::string& account_id, const std::string& path, const std::string& name) {
  return "arn:aws:iam::" + account_id + ":user" + path + name;
}
std::string group_arn(const std::string& account_id, const std::string& path, const std::string& name) {
  return "arn:aws:iam::" + account_id + ":group" + path + name;
}

std::string new_user_id() { return iam_id("AIDA"); }
std::string new_group_id() { return iam_id("AGPA"); }

access_key new_access_key(int64_t now_ms) {
  access_key k;
  k.access_key_id = "AKIA" + random_chars(16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567");
  k.secret_access_key =
      random_chars(40, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/");
  k.created_ms = now_ms;
  return k;
}

access_key new_temporary_key(int64_t now_ms, int64_t expires_ms) {
  auto k = new_access_key(now_ms);
  k.access_key_id = "ASIA" + k.access_key_id.substr(4);
  k.expires_ms = expires_ms;
  k.secret_session_token = random_chars(96, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789");
  return k;
}

std::optional<api_error> check_policy_document(const std::string& document, size_t max_size) {
  if (document.size() > max_size)
    return api_error{"LimitExceeded", "Maximum policy size of " + std::to_string(max_size) + " bytes exceeded"};
  std::string why;
  if (!parse_policy(document, why)) return api_error{"MalformedPolicyDocument", why};
  return std::nullopt;
}

bool user_aggregate::valid_id(const std::string& id) {
  auto slash = id.find('/');
  return slash == 12 && std::all_of(id.begin(), id.begin() + 12, [](char c) { return c >= '0' && c <= '9'; }) &&
         valid_user_name(id.substr(13));
}

decision_t user_aggregate::decide(const std::string& id, const state& s, const command& c) {
  const auto name = name_of(id);
  auto no_user = [&] {
    return decision_t::refuse("NoSuchEntity", "The user with name " + name + " cannot be found.");
  };
  return std::visit(
      overloaded{
          [&](const create_user& cmd) -> decision_t {
            if (s.exists) return decision_t::refuse("EntityAlreadyExists", "User with name " + name + " already exists.");
            if (!valid_path(cmd.path)) return decision_t::refuse("ValidationError", "Path '" + cmd.path.substr(0, 64) + "' is not valid");
            return {{user_created{account_of(id), name, cmd}}, {}};
          },
          [&](const delete_user& cmd) -> decision_t {
            if (!s.exists) return no_user();
            if (!cmd.force && (!s.keys.empty() || !s.policies.empty()))
              return decision_t::refuse("DeleteConflict", "Cannot delete entity, must delete " +
                                                              std::string(s.keys.empty() ? "policies" : "access keys") + " first.");
            decision_t d;
            for (const auto& k : s.keys) d.events.push_back(user_key_deleted{k.access_key_id});
            for (const auto& [p, doc] : s.policies) d.events.push_back(user_policy_deleted{p});
            d.events.push_back(user_deleted{s.spec.user_id});
            return d;
          },
          [&](const create_access_key& cmd) -> decision_t {
            if (!s.exists) return no_user();
            if (permanent_keys(s) >= max_user_keys)
              return decision_t::refuse("LimitExceeded", "Cannot exceed quota for AccessKeysPerUser: " +
                                                             std::to_string(max_user_keys));
            return {{user_key_created{cmd.key}}, {}};
          },
          [&](const update_access_key& cmd) -> decision_t {
            if (!s.exists) return no_user();
            if (cmd.status != "Active" && cmd.status != "Inactive")
              return decision_t::refuse("ValidationError", "Status must be Active or Inactive");
            const auto* k = find_key(s, cmd.access_key_id);
            if (!k) return decision_t::refuse("NoSuchEntity", "The Access Key with id " + cmd.access_key_id + " cannot be found.");
            if (k->status == cmd.status) return {};
            return {{user_key_status_changed{cmd.access_key_id, cmd.status}}, {}};
          },
          [&](const delete_access_key& cmd) -> decision_t {
            if (!s.exists) return no_user();
            if (!find_key(s, cmd.access_key_id))
              return decision_t::refuse("NoSuchEntity", "The Access Key with id " + cmd.access_key_id + " cannot be found.");
            return {{user_key_deleted{cmd.access_key_id}}, {}};
          },
          [&](const issue_temporary_key& cmd) -> decision_t {
            if (!s.exists) return no_user();
            decision_t d;
            for (const auto& k : s.keys)
              if (k.expires_ms != 0 && k.expires_ms <= cmd.now_ms) d.events.push_back(user_key_deleted{k.access_key_id});
            d.events.push_back(user_key_created{cmd.key});
            return d;
          },
          [&](const put_user_policy& cmd) -> decision_t {
            if (!s.exists) return no_user();
            if (!valid_policy_name(cmd.policy_name))
              return decision_t::refuse("ValidationError", "PolicyName must be 1-128 of [A-Za-z0-9+=,.@_-]");
            if (auto err = check_policy_document(cmd.document, max_user_policy_size)) return {{}, err};
            auto it = s.policies.find(cmd.policy_name);
            if (it != s.policies.end() && it->second == cmd.document) return {};
            return {{user_policy_put{cmd.policy_name, cmd.document}}, {}};
          },
          [&](const delete_user_policy& cmd) -> decision_t {
            if (!s.exists) return no_user();
            if (!s.policies.count(cmd.policy_name))
              return decision_t::refuse("NoSuchEntity", "The user policy with name " + cmd.policy_name + " cannot be found.");
            return {{user_policy_deleted{cmd.policy_name}}, {}};
          },
      },
      c);
}

user_state user_aggregate::apply(state s, const event& e) {
  std::visit(overloaded{
                 [&](const user_created& ev) {
                   s = {};
                   s.exists = true;
                   s.account_id = ev.account_id;
                   s.user_name = ev.user_name;
                   s.spec = ev.spec;
                 },
                 [&](const user_deleted&) { s = {}; },
                 [&](const user_key_created& ev) { s.keys.push_back(ev.key); },
                 [&](const user_key_status_changed& ev) {
                   for (auto& k : s.keys)
                     if (k.access_key_id == ev.access_key_id) k.status = ev.status;
                 },
                 [&](const user_key_deleted& ev) {
                   std::erase_if(s.keys, [&](const access_key& k) { return k.access_key_id == ev.access_key_id; });
                 },
                 [&](const user_policy_put& ev) { s.policies[ev.policy_name] = ev.document; },
                 [&](const user_policy_deleted& ev) { s.policies.erase(ev.policy_name); },
             },
             e);
  return s;
}

persistence::new_event user_aggregate::encode(const event& e) {
  return std::visit(
      overloaded{
          [](const user_created& ev) {
            auto j = spec_json(ev.spec);
            j["account_id"] = ev.account_id;
            j["user_name"] = ev.user_name;
            return persistence::new_event{"user_created", 1, j.dump()};
          },
          [](const user_deleted& ev) {
            return persistence::new_event{"user_deleted", 1, json{{"user_id", ev.user_id}}.dump()};
          },
          [](const user_key_created& ev) {
            return persistence::new_event{"access_key_created", 1, key_json(ev.key).dump()};
          },
          [](const user_key_status_changed& ev) {
            return persistence::new_event{"access_key_status_changed", 1,
                                          json{{"access_key_id", ev.access_key_id}, {"status", ev.status}}.dump()};
          },
          [](const user_key_deleted& ev) {
            return persistence::new_event{"access_key_deleted", 1, json{{"access_key_id", ev.access_key_id}}.dump()};
          },
          [](const user_policy_put& ev) {
            return persistence::new_event{"user_policy_put", 1,
                                          json{{"policy_name", ev.policy_name}, {"document", ev.document}}.dump()};
          },
          [](const user_policy_deleted& ev) {
            return persistence::new_event{"user_policy_deleted", 1, json{{"policy_name", ev.policy_name}}.dump()};
          },
      },
      e);
}

status user_aggregate::decode(const persistence::event_record& r, event& out) {
  return decode_json_event(r, kind, [&](const json& j) {
    if (r.type == "user_created")
      out = user_created{j.at("account_id").get<std::string>(), j.at("user_name").get<std::string>(), spec_from(j)};
    else if (r.type == "user_deleted")
      out = user_deleted{j.at("user_id").get<std::string>()};
    else if (r.type == "access_key_created")
      out = user_key_created{key_from(j)};
    else if (r.type == "access_key_status_changed")
      out = user_key_status_changed{j.at("access_key_id").get<std::string>(), j.at("status").get<std::string>()};
    else if (r.type == "access_key_deleted")
      out = user_key_deleted{j.at("access_key_id").get<std::string>()};
    else if (r.type == "user_policy_put")
      out = user_policy_put{j.at("policy_name").get<std::string>(), j.at("document").get<std::string>()};
    else if (r.type == "user_policy_deleted")
      out = user_policy_deleted{j.at("policy_name").get<std::string>()};
    else
      return false;
    return true;
  });
}

std::string user_aggregate::save(const state& s) {
  auto keys = json::array();
  for (const auto& k : s.keys) keys.push_back(key_json(k));
  return json{{"exists", s.exists}, {"account_id", s.account_id}, {"user_name", s.user_name},
              {"spec", spec_json(s.spec)}, {"keys", keys}, {"policies", s.policies}}
      .dump();
}

bool user_aggregate::load(const std::string& text, state& s) {
  return load_json_snapshot(text, [&](const json& j) {
    s.exists = j.at("exists").get<bool>();
    s.account_id = j.at("account_id").get<std::string>();
    s.user_name = j.at("user_name").get<std::string>();
    s.spec = spec_from(j.at("spec"));
    s.keys.clear();
    for (const auto& k : j.at("keys")) s.keys.push_back(key_from(k));
    s.policies = j.at("policies").get<std::map<std::string, std::string>>();
  });
}

}  // namespace kumo::actors::iam
