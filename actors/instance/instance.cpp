#include "actors/instance/instance.h"

#include "actors/runtime/json_codec.h"
#include "persistence/time_format.h"

#include <nlohmann/json.hpp>

#include <algorithm>

namespace kumo::actors {
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(resource_tag, key, value)
}  // namespace kumo::actors

namespace kumo::actors::instance {

using json = nlohmann::json;
using persistence::status;
using decision_t = decision<aggregate>;

NLOHMANN_JSON_SERIALIZE_ENUM(lifecycle, {{lifecycle::pending, "pending"},
                                         {lifecycle::running, "running"},
                                         {lifecycle::shutting_down, "shutting-down"},
                                         {lifecycle::terminated, "terminated"},
                                         {lifecycle::stopping, "stopping"},
                                         {lifecycle::stopped, "stopped"}})
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(sizing, instance_type, vcpus, memory_mib, disk_gib)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(launch_spec, instance_id, reservation_id, account_id, image_id,
                                   kernel_path, ramdisk_path, disk_image_path, size, key_name,
                                   public_key, security_group_ids, security_group_names, user_data,
                                   zone, node_id, launch_index, client_token, launch_ms, tags)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(state_changed, from, to, reason_code, reason_message, forced,
                                   at_ms)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(state, exists, spec, status, reason_code, reason_message,
                                   transition_reason, stop_forced, reboot_generation, reboot_done, changed_ms)

const char* name_of(lifecycle s) {
  switch (s) {
    case lifecycle::pending: return "pending";
    case lifecycle::running: return "running";
    case lifecycle::shutting_down: return "shutting-down";
    case lifecycle::terminated: return "terminated";
    case lifecycle::stopping: return "stopping";
    case lifecycle::stopped: return "stopped";
  }
  return "pending";
}

int code_of(lifecycle s) {
  switch (s) {
    case lifecycle::pending: return 0;
    case lifecycle::running: return 16;
    case lifecycle::shutting_down: return 32;
    case lifecycle::terminated: return 48;
    case lifecycle::stopping: return 64;
    case lifecycle::stopped: return 80;
  }
  return 0;
}

bool valid_instance_id(const std::string& id) {
  return id.size() == 19 && id.compare(0, 2, "i-") == 0 &&
         std::all_of(id.begin() + 2, id.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

std::string aggregate_id(const std::string& account_id, const std::string& instance_id) {
  return account_id + "/" + instance_id;
}

bool aggregate::valid_id(const std::string& id) {
  return id.size() == 32 && id[12] == '/' &&
         std::all_of(id.begin(), id.begin() + 12, [](char c) { return c >= '0' && c <= '9'; }) &&
         valid_instance_id(id.substr(13));
}

namespace {

decision_t incorrect_state(const state& s, const std::string& what) {
  return decision_t::refuse("IncorrectInstanceState",
                            "The instance '" + s.spec.instance_id + "' is not in a state from which it can be " +
                                what + " (it is " + name_of(s.status) + ")");
}

state_changed transition(const state& s, lifecycle to, std::string code, std::string message,
                         int64_t at_ms) {
  return {s.status, to, std::move(code), std::move(message), false, at_ms};
}

// What an observation of the domain means for the instance's state.
decision_t on_observation(const state& s, const observe& o) {
  auto moved = [&](lifecycle to, const char* code, std::string message) -> decision_t {
    return {{transition(s, to, code, std::move(message), o.at_ms)}, {}};
  };
  const bool down = o.what == observed::shut_off || o.what == observed::absent;
  switch (s.status) {
    case lifecycle::pending:
      if (o.what == observed::running) return moved(lifecycle::running, "", "");
      if (o.what == observed::failed)
        return moved(lifecycle::terminated, "Server.InternalError",
                     "Server.InternalError: the instance could not be started: " + o.detail);
      return {};
    case lifecycle::running:
      if (o.what == observed::running && o.rebooted_generation > s.reboot_done)
        return {{rebooted{std::min(o.rebooted_generation, s.reboot_generation)}}, {}};
      if (down || o.what == observed::failed)
        return moved(lifecycle::stopped, "Client.InstanceInitiatedShutdown",
                     "Client.InstanceInitiatedShutdown: " +
                         (o.detail.empty() ? std::string("the guest powered off") : o.detail));
      return {};
    case lifecycle::stopping:
      if (down)
        return moved(lifecycle::stopped, "Client.UserInitiatedShutdown",
                     "Client.UserInitiatedShutdown: User initiated shutdown");
      return {};
    case lifecycle::shutting_down:
      if (o.what == observed::absent)
        return moved(lifecycle::terminated, "Client.UserInitiatedShutdown",
                     "Client.UserInitiatedShutdown: User initiated shutdown");
      return {};
    case lifecycle::stopped:
    case lifecycle::terminated:
      return {};  // a late report of what already happened
  }
  return {};
}

}  // namespace

decision_t aggregate::decide(const std::string& id, const state& s, const command& c) {
  const auto not_found = [&] {
    return decision_t::refuse("InvalidInstanceID.NotFound",
                              "The instance ID '" + id.substr(13) + "' does not exist");
  };
  if (!s.exists && !std::holds_alternative<launch>(c)) return not_found();
  const bool terminated = s.status == lifecycle::terminated;
  return std::visit(
      overloaded{
          [&](const launch& cmd) -> decision_t {
            if (s.exists) {
              // A retried RunInstances (same ClientToken) launches nothing new.
              if (s.spec.reservation_id == cmd.spec.reservation_id) return {};
              return decision_t::refuse("InvalidInstanceID.Malformed",
                                        "instance id " + cmd.spec.instance_id + " is already taken");
            }
            if (cmd.spec.instance_id != id.substr(13) || cmd.spec.account_id != id.substr(0, 12))
              return decision_t::refuse("InvalidParameterValue", "launch spec does not match " + id);
            return {{launched{cmd.spec}}, {}};
          },
          [&](const start& cmd) -> decision_t {
            if (s.status != lifecycle::stopped) return incorrect_state(s, "started");
            return {{transition(s, lifecycle::pending, "", "", cmd.at_ms)}, {}};
          },
          [&](const stop& cmd) -> decision_t {
            if (s.status == lifecycle::stopped) return {};
            if (s.status == lifecycle::stopping && (!cmd.force || s.stop_forced)) return {};
            if (s.status != lifecycle::running && s.status != lifecycle::pending &&
                s.status != lifecycle::stopping)
              return incorrect_state(s, "stopped");
            auto t = transition(s, lifecycle::stopping, "Client.UserInitiatedShutdown",
                                "Client.UserInitiatedShutdown: User initiated shutdown", cmd.at_ms);
            t.forced = cmd.force;
            return {{t}, {}};
          },
          [&](const reboot&) -> decision_t {
            if (s.status != lifecycle::running) return incorrect_state(s, "rebooted");
            return {{reboot_requested{}}, {}};
          },
          [&](const terminate& cmd) -> decision_t {
            if (terminated || s.status == lifecycle::shutting_down) return {};
            return {{transition(s, lifecycle::shutting_down, "Client.UserInitiatedShutdown",
                                "Client.UserInitiatedShutdown: User initiated shutdown", cmd.at_ms)},
                    {}};
          },
          [&](const observe& cmd) -> decision_t {
            auto d = on_observation(s, cmd);
            if (!cmd.repair.empty() && !d.error) d.events.insert(d.events.begin(), repaired{cmd.repair, cmd.at_ms});
            return d;
          },
          [&](const modify_sizing& cmd) -> decision_t {
            if (s.status != lifecycle::stopped) return incorrect_state(s, "modified");
            if (cmd.size == s.spec.size) return {};
            return {{sizing_changed{cmd.size}}, {}};
          },
          [&](const modify_user_data& cmd) -> decision_t {
            if (s.status != lifecycle::stopped) return incorrect_state(s, "modified");
            if (cmd.user_data == s.spec.user_data) return {};
            return {{user_data_changed{cmd.user_data}}, {}};
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
                 [&](const launched& ev) {
                   s = {};
                   s.exists = true;
                   s.spec = ev.spec;
                   s.changed_ms = ev.spec.launch_ms;
                 },
                 [&](const state_changed& ev) {
                   s.status = ev.to;
                   s.reason_code = ev.reason_code;
                   s.reason_message = ev.reason_message;
                   s.stop_forced = ev.to == lifecycle::stopping && ev.forced;
                   s.changed_ms = ev.at_ms;
                   // EC2 explains user-initiated transitions with a dated sentence.
                   if (ev.to == lifecycle::stopping || ev.to == lifecycle::shutting_down)
                     s.transition_reason =
                         "User initiated (" + persistence::format_time(ev.at_ms) + ")";
                   else if (ev.to == lifecycle::pending || ev.to == lifecycle::running)
                     s.transition_reason.clear();
                 },
                 [&](const reboot_requested&) { ++s.reboot_generation; },
                 [&](const rebooted& ev) { s.reboot_done = std::max(s.reboot_done, ev.generation); },
                 [&](const repaired&) {},  // audit only
                 [&](const sizing_changed& ev) { s.spec.size = ev.size; },
                 [&](const user_data_changed& ev) { s.spec.user_data = ev.user_data; },
                 [&](const tags_changed& ev) { s.spec.tags = apply_tag_change(std::move(s.spec.tags), ev); },
             },
             e);
  return s;
}

persistence::new_event aggregate::encode(const event& e) {
  return std::visit(
      overloaded{
          [](const launched& ev) { return persistence::new_event{"launched", 1, json(ev.spec).dump()}; },
          [](const state_changed& ev) {
            return persistence::new_event{"state_changed", 1, json(ev).dump()};
          },
          [](const reboot_requested&) { return persistence::new_event{"reboot_requested", 1, "{}"}; },
          [](const repaired& ev) {
            return persistence::new_event{"repaired", 1, json{{"what", ev.what}, {"at_ms", ev.at_ms}}.dump()};
          },
          [](const rebooted& ev) {
            return persistence::new_event{"rebooted", 1, json{{"generation", ev.generation}}.dump()};
          },
          [](const sizing_changed& ev) {
            return persistence::new_event{"sizing_changed", 1, json(ev.size).dump()};
          },
          [](const user_data_changed& ev) {
            return persistence::new_event{"user_data_changed", 1,
                                          json{{"user_data", ev.user_data}}.dump()};
          },
          [](const tags_changed& ev) {
            return persistence::new_event{"tags_changed", 1, tag_change_to_json(ev).dump()};
          },
      },
      e);
}

status aggregate::decode(const persistence::event_record& r, event& out) {
  return decode_json_event(r, kind, [&](const json& j) {
    if (r.type == "launched")
      out = launched{j.get<launch_spec>()};
    else if (r.type == "state_changed")
      out = j.get<state_changed>();
    else if (r.type == "reboot_requested")
      out = reboot_requested{};
    else if (r.type == "repaired")
      out = repaired{j.at("what").get<std::string>(), j.at("at_ms").get<int64_t>()};
    else if (r.type == "rebooted")
      out = rebooted{j.at("generation").get<uint64_t>()};
    else if (r.type == "sizing_changed")
      out = sizing_changed{j.get<sizing>()};
    else if (r.type == "user_data_changed")
      out = user_data_changed{j.at("user_data").get<std::string>()};
    else if (r.type == "tags_changed")
      out = tag_change_from_json(j);
    else
      return false;
    return true;
  });
}

std::string aggregate::save(const state& s) { return save_json_state(s); }

bool aggregate::load(const std::string& text, state& s) { return load_json_state(text, s); }

}  // namespace kumo::actors::instance
