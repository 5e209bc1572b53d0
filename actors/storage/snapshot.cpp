#include "actors/storage/snapshot.h"

#include "actors/runtime/json_codec.h"

#include <nlohmann/json.hpp>

#include <algorithm>

namespace kumo::actors {
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(resource_tag, key, value)
}  // namespace kumo::actors

namespace kumo::actors::snapshot {

using json = nlohmann::json;
using decision_t = decision<aggregate>;

NLOHMANN_JSON_SERIALIZE_ENUM(status, {{status::pending, "pending"},
                                      {status::completed, "completed"},
                                      {status::error, "error"},
                                      {status::deleting, "deleting"}})
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(snapshot_spec, volume_id, volume_size_gib, source_path, file_path, description,
                                   client_token, start_ms, tags)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(permission_change, add_accounts, remove_accounts, add_public, remove_public)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(created, owner_id, snapshot_id, spec)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(state, exists, retired, owner_id, snapshot_id, spec, status, progress,
                                   status_detail, shared_with, is_public)

const char* name_of(status s) {
  switch (s) {
    case status::pending: return "pending";
    case status::completed: return "completed";
    case status::error: return "error";
    case status::deleting: return "deleting";
  }
  return "error";
}

namespace {

bool contains(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

bool valid_account(const std::string& a) {
  return a.size() == 12 && std::all_of(a.begin(), a.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

bool restorable_by(const state& s, const std::string& account_id) {
  return s.exists && (s.owner_id == account_id || s.is_public || contains(s.shared_with, account_id));
}

bool valid_snapshot_id(const std::string& id) {
  return id.size() == 22 && id.compare(0, 5, "snap-") == 0 &&
         std::all_of(id.begin() + 5, id.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

std::string aggregate_id(const std::string& account_id, const std::string& snapshot_id) {
  return account_id + "/" + snapshot_id;
}

bool aggregate::valid_id(const std::string& id) {
  return id.size() == 35 && id[12] == '/' && valid_account(id.substr(0, 12)) && valid_snapshot_id(id.substr(13));
}

decision_t aggregate::decide(const std::string& id, const state& s, const command& c) {
  const auto snapshot_id = id.substr(13);
  if (!s.exists && !std::holds_alternative<create>(c))
    return decision_t::refuse("InvalidSnapshot.NotFound", "The snapshot '" + snapshot_id + "' does not exist.");
  return std::visit(
      overloaded{
          [&](const create& cmd) -> decision_t {
            if (s.exists && !cmd.spec.client_token.empty() && s.spec.client_token == cmd.spec.client_token)
              return {};
            if (s.exists || s.retired)
              return decision_t::refuse("InternalError", "snapshot id " + snapshot_id +
                                                             " was used before and is never reused; retry the request");
            if (cmd.spec.description.size() > 255)
              return decision_t::refuse("InvalidParameterValue", "the description is at most 255 characters");
            if (cmd.spec.source_path.empty() || cmd.spec.file_path.empty() || cmd.spec.volume_size_gib == 0)
              return decision_t::refuse("InvalidParameterValue", "a snapshot needs its volume's file and its own");
            return {{created{id.substr(0, 12), snapshot_id, cmd.spec}}, {}};
          },
          [&](const copy_progress& cmd) -> decision_t {
            if (s.status != status::pending || cmd.percent <= s.progress || cmd.percent >= 100) return {};
            return {{progressed{cmd.percent}}, {}};
          },
          [&](const copy_done& cmd) -> decision_t {
            if (s.status != status::pending) return {};
            if (!cmd.ok) return {{failed{cmd.detail}}, {}};
            if (cmd.bytes != s.spec.volume_size_gib << 30)
              return {{failed{"the snapshot file is " + std::to_string(cmd.bytes) + " bytes, not the volume's " +
                              std::to_string(s.spec.volume_size_gib << 30)}},
                      {}};
            return {{completed{cmd.bytes}}, {}};
          },
          [&](const remove&) -> decision_t {
            if (s.status == status::deleting) return {};
            if (s.status == status::pending)
              return decision_t::refuse("IncorrectState", "Snapshot '" + snapshot_id +
                                                              "' is still pending; delete it once it is completed");
            return {{deleting{}}, {}};
          },
          [&](const file_removed&) -> decision_t {
            if (s.status != status::deleting) return {};
            return {{deleted{}}, {}};
          },
          [&](const permission_change& cmd) -> decision_t {
            for (const auto* list : {&cmd.add_accounts, &cmd.remove_accounts})
              for (const auto& a : *list)
                if (!valid_account(a))
                  return decision_t::refuse("InvalidParameterValue",
                                            "'" + a.substr(0, 32) + "' is not an account id (12 digits)");
            if (cmd.add_public && cmd.remove_public)
              return decision_t::refuse("InvalidParameterCombination",
                                        "the group 'all' cannot be both added and removed in one request");
            permission_change effective;
            for (const auto& a : cmd.add_accounts)
              if (a != s.owner_id && !contains(s.shared_with, a) && !contains(effective.add_accounts, a) &&
                  !contains(cmd.remove_accounts, a))
                effective.add_accounts.push_back(a);
            for (const auto& a : cmd.remove_accounts)
              if (contains(s.shared_with, a) && !contains(effective.remove_accounts, a))
                effective.remove_accounts.push_back(a);
            effective.add_public = cmd.add_public && !s.is_public;
            effective.remove_public = cmd.remove_public && s.is_public;
            if (effective == permission_change{}) return {};
            return {{permission_changed{effective}}, {}};
          },
          [&](const change_tags& cmd) -> decision_t {
            if (auto err = check_tag_change(s.spec.tags, cmd)) return {{}, err};
            return {{tags_changed{cmd.set, cmd.remove}}, {}};
          },
      },
      c);
}

state aggregate::apply(state s, const event& e) {
  std::visit(overloaded{
                 [&](const created& ev) {
                   s = {};
                   s.exists = true;
                   s.owner_id = ev.owner_id;
                   s.snapshot_id = ev.snapshot_id;
                   s.spec = ev.spec;
                 },
                 [&](const progressed& ev) { s.progress = ev.percent; },
                 [&](const completed&) {
                   s.status = status::completed;
                   s.progress = 100;
                 },
                 [&](const failed& ev) {
                   s.status = status::error;
                   s.status_detail = ev.detail;
                 },
                 [&](const deleting&) { s.status = status::deleting; },
                 [&](const deleted&) {
                   state retired;
                   retired.retired = true;
                   retired.owner_id = s.owner_id;
                   retired.snapshot_id = s.snapshot_id;
                   s = std::move(retired);
                 },
                 [&](const permission_changed& ev) {
                   std::erase_if(s.shared_with, [&](const std::string& a) { return contains(ev.change.remove_accounts, a); });
                   for (const auto& a : ev.change.add_accounts) s.shared_with.push_back(a);
                   if (ev.change.add_public) s.is_public = true;
                   if (ev.change.remove_public) s.is_public = false;
                 },
                 [&](const tags_changed& ev) { s.spec.tags = apply_tag_change(std::move(s.spec.tags), ev); },
             },
             e);
  return s;
}

persistence::new_event aggregate::encode(const event& e) {
  return std::visit(
      overloaded{
          [](const created& ev) { return persistence::new_event{"snapshot_created", 1, json(ev).dump()}; },
          [](const progressed& ev) {
            return persistence::new_event{"snapshot_progress", 1, json{{"percent", ev.percent}}.dump()};
          },
          [](const completed& ev) {
            return persistence::new_event{"snapshot_completed", 1, json{{"bytes", ev.bytes}}.dump()};
          },
          [](const failed& ev) {
            return persistence::new_event{"snapshot_failed", 1, json{{"detail", ev.detail}}.dump()};
          },
          [](const deleting&) { return persistence::new_event{"snapshot_deleting", 1, "{}"}; },
          [](const deleted&) { return persistence::new_event{"snapshot_deleted", 1, "{}"}; },
          [](const permission_changed& ev) {
            return persistence::new_event{"snapshot_permission_changed", 1, json(ev.change).dump()};
          },
          [](const tags_changed& ev) {
            return persistence::new_event{"tags_changed", 1, tag_change_to_json(ev).dump()};
          },
      },
      e);
}

persistence::status aggregate::decode(const persistence::event_record& r, event& out) {
  return decode_json_event(r, kind, [&](const json& j) {
    if (r.type == "snapshot_created") out = j.get<created>();
    else if (r.type == "snapshot_progress") out = progressed{j.at("percent").get<int>()};
    else if (r.type == "snapshot_completed") out = completed{j.at("bytes").get<uint64_t>()};
    else if (r.type == "snapshot_failed") out = failed{j.at("detail").get<std::string>()};
    else if (r.type == "snapshot_deleting") out = deleting{};
    else if (r.type == "snapshot_deleted") out = deleted{};
    else if (r.type == "snapshot_permission_changed") out = permission_changed{j.get<permission_change>()};
    else if (r.type == "tags_changed") out = tag_change_from_json(j);
    else return false;
    return true;
  });
}

std::string aggregate::save(const state& s) { return save_json_state(s); }

bool aggregate::load(const std::string& text, state& s) { return load_json_state(text, s); }

}  // namespace kumo::actors::snapshot
