#include "actors/compute/zone.h"

#include "actors/ids.h"
#include "actors/runtime/json_codec.h"

#include <nlohmann/json.hpp>

#include <algorithm>

namespace kumo::actors::zone {

using json = nlohmann::json;
using decision_t = decision<aggregate>;

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(capacity, vcpus, memory_mib, disk_gib)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(reservation, instance_id, node_id, size, reserved_ms)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(node, total, used)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(state, exists, nodes, reservations)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(unknown_domain_removed, node_id, instance_id, at_ms)

namespace {

capacity plus(capacity a, const capacity& b) {
  return {a.vcpus + b.vcpus, a.memory_mib + b.memory_mib, a.disk_gib + b.disk_gib};
}
capacity minus(capacity a, const capacity& b) {
  auto sub = [](uint64_t x, uint64_t y) { return x > y ? x - y : 0; };
  return {sub(a.vcpus, b.vcpus), sub(a.memory_mib, b.memory_mib), sub(a.disk_gib, b.disk_gib)};
}
bool fits(const node& n, const capacity& want) {
  auto after = plus(n.used, want);
  return after.vcpus <= n.total.vcpus && after.memory_mib <= n.total.memory_mib &&
         after.disk_gib <= n.total.disk_gib;
}
// How full a node is, for ordering: the busiest resource's share.
double load(const node& n) {
  auto share = [](uint64_t used, uint64_t total) { return total ? double(used) / double(total) : 1.0; };
  return std::max({share(n.used.vcpus, n.total.vcpus), share(n.used.memory_mib, n.total.memory_mib),
                   share(n.used.disk_gib, n.total.disk_gib)});
}

decision_t place(const state& s, const reserve& cmd) {
  // Working copy of the candidate nodes, so several instances of one request
  // see each other's reservations.
  std::map<std::string, node> candidates;
  for (const auto& id : cmd.available_nodes)
    if (auto it = s.nodes.find(id); it != s.nodes.end()) candidates[id] = it->second;
  capacity_reserved out;
  size_t held = 0;
  for (const auto& instance_id : cmd.instance_ids) {
    if (s.reservations.count(instance_id)) {
      ++held;
      continue;
    }
    const node* best = nullptr;
    std::string best_id;
    for (const auto& [id, n] : candidates) {
      if (!fits(n, cmd.each)) continue;
      bool better = !best || (cmd.placement == policy::pack ? load(n) > load(*best) : load(n) < load(*best));
      if (better) best = &n, best_id = id;
    }
    if (!best) break;
    candidates[best_id].used = plus(candidates[best_id].used, cmd.each);
    out.placements.push_back({instance_id, best_id, cmd.each, cmd.at_ms});
  }
  if (held + out.placements.size() < cmd.min_count)
    return decision_t::refuse(
        "InsufficientInstanceCapacity",
        "There is not enough capacity in this availability zone for " + std::to_string(cmd.min_count) +
            " instance(s) of " + std::to_string(cmd.each.vcpus) + " vCPU / " +
            std::to_string(cmd.each.memory_mib) + " MiB / " + std::to_string(cmd.each.disk_gib) +
            " GiB (only " + std::to_string(held + out.placements.size()) +
            " fit on the nodes now available); try fewer instances, a smaller type or another zone");
  if (out.placements.empty()) return {};
  return {{out}, {}};
}

}  // namespace

bool aggregate::valid_id(const std::string& id) { return valid_plain_name(id); }

decision_t aggregate::decide(const std::string&, const state& s, const command& c) {
  return std::visit(
      overloaded{
          [&](const register_node& cmd) -> decision_t {
            auto it = s.nodes.find(cmd.node_id);
            if (it != s.nodes.end() && it->second.total == cmd.total) return {};
            return {{node_registered{cmd.node_id, cmd.total}}, {}};
          },
          [&](const reserve& cmd) -> decision_t { return place(s, cmd); },
          [&](const release& cmd) -> decision_t {
            if (!s.reservations.count(cmd.instance_id)) return {};
            return {{capacity_released{cmd.instance_id}}, {}};
          },
          [&](const record_removal& cmd) -> decision_t {
            return {{unknown_domain_removed{cmd.node_id, cmd.instance_id, cmd.at_ms}}, {}};
          },
      },
      c);
}

state aggregate::apply(state s, const event& e) {
  s.exists = true;
  std::visit(overloaded{
                 [&](const node_registered& ev) { s.nodes[ev.node_id].total = ev.total; },
                 [&](const capacity_reserved& ev) {
                   for (const auto& r : ev.placements) {
                     s.reservations[r.instance_id] = r;
                     s.nodes[r.node_id].used = plus(s.nodes[r.node_id].used, r.size);
                   }
                 },
                 [&](const capacity_released& ev) {
                   auto it = s.reservations.find(ev.instance_id);
                   if (it == s.reservations.end()) return;
                   auto& n = s.nodes[it->second.node_id];
                   n.used = minus(n.used, it->second.size);
                   s.reservations.erase(it);
                 },
                 [&](const unknown_domain_removed&) {},  // audit only
             },
             e);
  return s;
}

persistence::new_event aggregate::encode(const event& e) {
  return std::visit(
      overloaded{
          [](const node_registered& ev) {
            return persistence::new_event{"node_registered", 1,
                                          json{{"node_id", ev.node_id}, {"total", ev.total}}.dump()};
          },
          [](const capacity_reserved& ev) {
            return persistence::new_event{"capacity_reserved", 1,
                                          json{{"placements", ev.placements}}.dump()};
          },
          [](const unknown_domain_removed& ev) {
            return persistence::new_event{"unknown_domain_removed", 1, json(ev).dump()};
          },
          [](const capacity_released& ev) {
            return persistence::new_event{"capacity_released", 1,
                                          json{{"instance_id", ev.instance_id}}.dump()};
          },
      },
      e);
}

persistence::status aggregate::decode(const persistence::event_record& r, event& out) {
  return decode_json_event(r, kind, [&](const json& j) {
    if (r.type == "node_registered")
      out = node_registered{j.at("node_id").get<std::string>(), j.at("total").get<capacity>()};
    else if (r.type == "capacity_reserved")
      out = capacity_reserved{j.at("placements").get<std::vector<reservation>>()};
    else if (r.type == "unknown_domain_removed")
      out = j.get<unknown_domain_removed>();
    else if (r.type == "capacity_released")
      out = capacity_released{j.at("instance_id").get<std::string>()};
    else
      return false;
    return true;
  });
}

std::string aggregate::save(const state& s) { return save_json_state(s); }

bool aggregate::load(const std::string& text, state& s) { return load_json_state(text, s); }

}  // namespace kumo::actors::zone
