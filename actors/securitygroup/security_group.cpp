#include "actors/securitygroup/security_group.h"

#include "actors/ids.h"
#include "actors/runtime/json_codec.h"

#include <algorithm>

namespace kumo::actors::security_group {

using json = nlohmann::json;
using persistence::status;
using decision_t = decision<aggregate>;

bool valid_group_name(const std::string& name) {
  return !name.empty() && name.size() <= 255 && name.rfind("sg-", 0) != 0 &&
         std::all_of(name.begin(), name.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
}

std::string aggregate_id(const std::string& account_id, const std::string& group_name) {
  return account_id + "/" + group_name;
}

std::string new_group_id() { return new_resource_id("sg"); }

std::vector<rule> default_egress() { return {rule{"-1", -1, -1, "0.0.0.0/0", "", ""}}; }

bool aggregate::valid_id(const std::string& id) {
  return id.size() > 13 && id[12] == '/' &&
         std::all_of(id.begin(), id.begin() + 12, [](char c) { return c >= '0' && c <= '9'; }) &&
         valid_group_name(id.substr(13));
}

namespace {

const std::vector<rule>& rules_of(const state& s, direction d) {
  return d == direction::ingress ? s.ingress : s.egress;
}

bool contains(const std::vector<rule>& rules, const rule& r) {
  return std::any_of(rules.begin(), rules.end(), [&](const rule& x) { return x.same_as(r); });
}

std::string describe(const rule& r) {
  auto peer = r.cidr.empty() ? r.source_group_id : r.cidr;
  return r.protocol + " " + std::to_string(r.from_port) + "-" + std::to_string(r.to_port) + " " + peer;
}

}  // namespace

decision_t aggregate::decide(const std::string& id, const state& s, const command& c) {
  const auto name = id.substr(13);
  auto missing = [&] {
    return decision_t::refuse("InvalidGroup.NotFound",
                              "The security group '" + name + "' does not exist");
  };
  return std::visit(
      overloaded{
          [&](const create_group& cmd) -> decision_t {
            if (s.exists)
              return decision_t::refuse("InvalidGroup.Duplicate",
                                        "The security group '" + name + "' already exists");
            return {{group_created{id.substr(0, 12), name, cmd}}, {}};
          },
          [&](const delete_group&) -> decision_t {
            if (!s.exists) return missing();
            if (name == "default")
              return decision_t::refuse("CannotDelete", "the default security group cannot be deleted");
            return {{group_deleted{s.group_id}}, {}};
          },
          [&](const authorize& cmd) -> decision_t {
            if (!s.exists) return missing();
            if (rules_of(s, cmd.dir).size() + cmd.rules.size() > max_rules_per_direction)
              return decision_t::refuse("RulesPerSecurityGroupLimitExceeded",
                                        s.group_id + " would have more than " +
                                            std::to_string(max_rules_per_direction) + " rules in one direction");
            std::vector<rule> added;
            for (const auto& r : cmd.rules) {
              if (contains(rules_of(s, cmd.dir), r) || contains(added, r))
                return decision_t::refuse("InvalidPermission.Duplicate",
                                          "the specified rule \"" + describe(r) +
                                              "\" already exists in " + s.group_id);
              added.push_back(r);
            }
            return {{rules_authorized{cmd.dir, added}}, {}};
          },
          [&](const revoke& cmd) -> decision_t {
            if (!s.exists) return missing();
            for (const auto& r : cmd.rules)
              if (!contains(rules_of(s, cmd.dir), r))
                return decision_t::refuse("InvalidPermission.NotFound",
                                          "the specified rule \"" + describe(r) +
                                              "\" does not exist in " + s.group_id);
            return {{rules_revoked{cmd.dir, cmd.rules}}, {}};
          },
          [&](const change_tags& cmd) -> decision_t {
            if (!s.exists) return missing();
            if (auto err = check_tag_change(s.tags, cmd)) return {{}, err};
            return {{tags_changed{cmd.set, cmd.remove}}, {}};
          },
      },
      c);
}

state aggregate::apply(state s, const event& e) {
  std::visit(overloaded{
                 [&](const group_created& ev) {
                   s = {};
                   s.exists = true;
                   s.account_id = ev.account_id;
                   s.group_name = ev.group_name;
                   s.group_id = ev.group.group_id;
                   s.description = ev.group.description;
                   s.created_ms = ev.group.created_ms;
                   s.tags = ev.group.tags;
                   s.egress = default_egress();
                   if (ev.group_name == "default")
                     s.ingress = {rule{"-1", -1, -1, "", ev.group.group_id, ""}};
                 },
                 [&](const group_deleted&) { s = {}; },
                 [&](const rules_authorized& ev) {
                   auto& rules = ev.dir == direction::ingress ? s.ingress : s.egress;
                   rules.insert(rules.end(), ev.rules.begin(), ev.rules.end());
                 },
                 [&](const rules_revoked& ev) {
                   auto& rules = ev.dir == direction::ingress ? s.ingress : s.egress;
                   std::erase_if(rules, [&](const rule& r) { return contains(ev.rules, r); });
                 },
                 [&](const tags_changed& ev) { s.tags = apply_tag_change(std::move(s.tags), ev); },
             },
             e);
  return s;
}

// ---- Codec

namespace {

json rules_json(const std::vector<rule>& rules) {
  auto out = json::array();
  for (const auto& r : rules)
    out.push_back({{"protocol", r.protocol}, {"from", r.from_port}, {"to", r.to_port},
                   {"cidr", r.cidr}, {"group", r.source_group_id}, {"description", r.description}});
  return out;
}

std::vector<rule> rules_from(const json& j) {
  std::vector<rule> out;
  for (const auto& r : j)
    out.push_back({r.at("protocol").get<std::string>(), r.at("from").get<int>(), r.at("to").get<int>(),
                   r.at("cidr").get<std::string>(), r.at("group").get<std::string>(),
                   r.at("description").get<std::string>()});
  return out;
}

const char* direction_name(direction d) { return d == direction::ingress ? "ingress" : "egress"; }

direction direction_from(const json& j) {
  return j.at("direction").get<std::string>() == "egress" ? direction::egress : direction::ingress;
}

}  // namespace

persistence::new_event aggregate::encode(const event& e) {
  return std::visit(
      overloaded{
          [](const group_created& ev) {
            return persistence::new_event{
                "security_group_created", 1,
                json{{"account_id", ev.account_id}, {"group_name", ev.group_name},
                     {"group_id", ev.group.group_id}, {"description", ev.group.description},
                     {"created_ms", ev.group.created_ms}, {"tags", tags_to_json(ev.group.tags)}}
                    .dump()};
          },
          [](const group_deleted& ev) {
            return persistence::new_event{"security_group_deleted", 1,
                                          json{{"group_id", ev.group_id}}.dump()};
          },
          [](const rules_authorized& ev) {
            return persistence::new_event{
                "security_group_rules_authorized", 1,
                json{{"direction", direction_name(ev.dir)}, {"rules", rules_json(ev.rules)}}.dump()};
          },
          [](const rules_revoked& ev) {
            return persistence::new_event{
                "security_group_rules_revoked", 1,
                json{{"direction", direction_name(ev.dir)}, {"rules", rules_json(ev.rules)}}.dump()};
          },
          [](const tags_changed& ev) {
            return persistence::new_event{"tags_changed", 1, tag_change_to_json(ev).dump()};
          },
      },
      e);
}

status aggregate::decode(const persistence::event_record& r, event& out) {
  return decode_json_event(r, kind, [&](const json& j) {
    if (r.type == "security_group_created")
      out = group_created{j.at("account_id").get<std::string>(), j.at("group_name").get<std::string>(),
                          create_group{j.at("group_id").get<std::string>(),
                                       j.at("description").get<std::string>(),
                                       j.at("created_ms").get<int64_t>(), tags_from_json(j.at("tags"))}};
    else if (r.type == "security_group_deleted")
      out = group_deleted{j.at("group_id").get<std::string>()};
    else if (r.type == "security_group_rules_authorized")
      out = rules_authorized{direction_from(j), rules_from(j.at("rules"))};
    else if (r.type == "security_group_rules_revoked")
      out = rules_revoked{direction_from(j), rules_from(j.at("rules"))};
    else if (r.type == "tags_changed")
      out = tag_change_from_json(j);
    else
      return false;
    return true;
  });
}

std::string aggregate::save(const state& s) {
  return json{{"exists", s.exists},         {"account_id", s.account_id},
              {"group_name", s.group_name}, {"group_id", s.group_id},
              {"description", s.description}, {"created_ms", s.created_ms},
              {"tags", tags_to_json(s.tags)}, {"ingress", rules_json(s.ingress)},
              {"egress", rules_json(s.egress)}}
      .dump();
}

bool aggregate::load(const std::string& text, state& s) {
  return load_json_snapshot(text, [&](const json& j) {
    s.exists = j.at("exists").get<bool>();
    s.account_id = j.at("account_id").get<std::string>();
    s.group_name = j.at("group_name").get<std::string>();
    s.group_id = j.at("group_id").get<std::string>();
    s.description = j.at("description").get<std::string>();
    s.created_ms = j.at("created_ms").get<int64_t>();
    s.tags = tags_from_json(j.at("tags"));
    s.ingress = rules_from(j.at("ingress"));
    s.egress = rules_from(j.at("egress"));
  });
}

}  // namespace kumo::actors::security_group
