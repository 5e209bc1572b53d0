#include "actors/iam/group.h"

#include "actors/iam/user.h"
#include "actors/runtime/json_codec.h"

#include <nlohmann/json.hpp>

#include <algorithm>

namespace kumo::actors::iam {

using json = nlohmann::json;
using persistence::status;

namespace {

using decision_t = decision<group_aggregate>;

json spec_json(const create_group& s) {
  return {{"group_id", s.group_id}, {"path", s.path}, {"created_ms", s.created_ms}, {"source", s.source},
          {"ldap_dn", s.ldap_dn}};
}

create_group spec_from(const json& j) {
  return {j.at("group_id").get<std::string>(), j.at("path").get<std::string>(), j.at("created_ms").get<int64_t>(),
          j.at("source").get<std::string>(), j.at("ldap_dn").get<std::string>()};
}

}  // namespace

bool group_aggregate::valid_id(const std::string& id) {
  auto slash = id.find('/');
  return slash == 12 && std::all_of(id.begin(), id.begin() + 12, [](char c) { return c >= '0' && c <= '9'; }) &&
         valid_group_name(id.substr(13));
}

decision_t group_aggregate::decide(const std::string& id, const state& s, const command& c) {
  const auto name = name_of(id);
  auto no_group = [&] {
    return decision_t::refuse("NoSuchEntity", "The group with name " + name + " cannot be found.");
  };
  return std::visit(
      overloaded{
          [&](const create_group& cmd) -> decision_t {
            if (s.exists) return decision_t::refuse("EntityAlreadyExists", "Group with name " + name + " already exists.");
            if (!valid_path(cmd.path)) return decision_t::refuse("ValidationError", "Path '" + cmd.path.substr(0, 64) + "' is not valid");
            return {{group_created{account_of(id), name, cmd}}, {}};
          },
          [&](const delete_group& cmd) -> decision_t {
            if (!s.exists) return no_group();
            if (!cmd.force && !s.members.empty())
              return decision_t::refuse("DeleteConflict", "Cannot delete entity, must remove users from group first.");
            if (!cmd.force && !s.policies.empty())
              return decision_t::refuse("DeleteConflict", "Cannot delete entity, must delete policies first.");
            decision_t d;
            for (const auto& m : s.members) d.events.push_back(member_removed{m});
            for (const auto& [p, doc] : s.policies) d.events.push_back(group_policy_deleted{p});
            for (const auto& [r, owner] : s.shared) d.events.push_back(resource_unshared{r});
            d.events.push_back(group_deleted{s.spec.group_id});
            return d;
          },
          [&](const add_member& cmd) -> decision_t {
            if (!s.exists) return no_group();
            if (s.members.count(cmd.user_name)) return {};  // IAM: adding a member twice succeeds
            return {{member_added{cmd.user_name}}, {}};
          },
          [&](const remove_member& cmd) -> decision_t {
            if (!s.exists) return no_group();
            if (!s.members.count(cmd.user_name))
              return decision_t::refuse("NoSuchEntity", "The user with name " + cmd.user_name +
                                                            " is not a member of group " + name + ".");
            return {{member_removed{cmd.user_name}}, {}};
          },
          [&](const put_group_policy& cmd) -> decision_t {
            if (!s.exists) return no_group();
            if (!valid_policy_name(cmd.policy_name))
              return decision_t::refuse("ValidationError", "PolicyName must be 1-128 of [A-Za-z0-9+=,.@_-]");
            if (auto err = check_policy_document(cmd.document, max_group_policy_size)) return {{}, err};
            auto it = s.policies.find(cmd.policy_name);
            if (it != s.policies.end() && it->second == cmd.document) return {};
            return {{group_policy_put{cmd.policy_name, cmd.document}}, {}};
          },
          [&](const delete_group_policy& cmd) -> decision_t {
            if (!s.exists) return no_group();
            if (!s.policies.count(cmd.policy_name))
              return decision_t::refuse("NoSuchEntity", "The group policy with name " + cmd.policy_name + " cannot be found.");
            return {{group_policy_deleted{cmd.policy_name}}, {}};
          },
          [&](const share_resource& cmd) -> decision_t {
            if (!s.exists) return no_group();
            if (s.shared.count(cmd.resource_id)) return {};
            return {{resource_shared{cmd.resource_id, cmd.owner}}, {}};
          },
          [&](const unshare_resource& cmd) -> decision_t {
            if (!s.exists) return no_group();
            if (!s.shared.count(cmd.resource_id))
              return decision_t::refuse("InvalidParameterValue", cmd.resource_id + " is not shared with group " + name);
            return {{resource_unshared{cmd.resource_id}}, {}};
          },
      },
      c);
}

group_state group_aggregate::apply(state s, const event& e) {
  std::visit(overloaded{
                 [&](const group_created& ev) {
                   s = {};
                   s.exists = true;
                   s.account_id = ev.account_id;
                   s.group_name = ev.group_name;
                   s.spec = ev.spec;
                 },
                 [&](const group_deleted&) { s = {}; },
                 [&](const member_added& ev) { s.members.insert(ev.user_name); },
                 [&](const member_removed& ev) { s.members.erase(ev.user_name); },
                 [&](const group_policy_put& ev) { s.policies[ev.policy_name] = ev.document; },
                 [&](const group_policy_deleted& ev) { s.policies.erase(ev.policy_name); },
                 [&](const resource_shared& ev) { s.shared[ev.resource_id] = ev.owner; },
                 [&](const resource_unshared& ev) { s.shared.erase(ev.resource_id); },
             },
             e);
  return s;
}

persistence::new_event group_aggregate::encode(const event& e) {
  auto ev = [](const char* type, const json& j) { return persistence::new_event{type, 1, j.dump()}; };
  return std::visit(
      overloaded{
          [&](const group_created& x) {
            auto j = spec_json(x.spec);
            j["account_id"] = x.account_id;
            j["group_name"] = x.group_name;
            return ev("group_created", j);
          },
          [&](const group_deleted& x) { return ev("group_deleted", {{"group_id", x.group_id}}); },
          [&](const member_added& x) { return ev("member_added", {{"user_name", x.user_name}}); },
          [&](const member_removed& x) { return ev("member_removed", {{"user_name", x.user_name}}); },
          [&](const group_policy_put& x) {
            return ev("group_policy_put", {{"policy_name", x.policy_name}, {"document", x.document}});
          },
          [&](const group_policy_deleted& x) { return ev("group_policy_deleted", {{"policy_name", x.policy_name}}); },
          [&](const resource_shared& x) {
            return ev("resource_shared", {{"resource_id", x.resource_id}, {"owner", x.owner}});
          },
          [&](const resource_unshared& x) { return ev("resource_unshared", {{"resource_id", x.resource_id}}); },
      },
      e);
}

status group_aggregate::decode(const persistence::event_record& r, event& out) {
  return decode_json_event(r, kind, [&](const json& j) {
    auto str = [&](const char* k) { return j.at(k).get<std::string>(); };
    if (r.type == "group_created")
      out = group_created{str("account_id"), str("group_name"), spec_from(j)};
    else if (r.type == "group_deleted")
      out = group_deleted{str("group_id")};
    else if (r.type == "member_added")
      out = member_added{str("user_name")};
    else if (r.type == "member_removed")
      out = member_removed{str("user_name")};
    else if (r.type == "group_policy_put")
      out = group_policy_put{str("policy_name"), str("document")};
    else if (r.type == "group_policy_deleted")
      out = group_policy_deleted{str("policy_name")};
    else if (r.type == "resource_shared")
      out = resource_shared{str("resource_id"), str("owner")};
    else if (r.type == "resource_unshared")
      out = resource_unshared{str("resource_id")};
    else
      return false;
    return true;
  });
}

std::string group_aggregate::save(const state& s) {
  return json{{"exists", s.exists},   {"account_id", s.account_id}, {"group_name", s.group_name},
              {"spec", spec_json(s.spec)}, {"members", s.members},  {"policies", s.policies},
              {"shared", s.shared}}
      .dump();
}

bool group_aggregate::load(const std::string& text, state& s) {
  return load_json_snapshot(text, [&](const json& j) {
    s.exists = j.at("exists").get<bool>();
    s.account_id = j.at("account_id").get<std::string>();
    s.group_name = j.at("group_name").get<std::string>();
    s.spec = spec_from(j.at("spec"));
    s.members = j.at("members").get<std::set<std::string>>();
    s.policies = j.at("policies").get<std::map<std::string, std::string>>();
    s.shared = j.at("shared").get<std::map<std::string, std::string>>();
  });
}

}  // namespace kumo::actors::iam
