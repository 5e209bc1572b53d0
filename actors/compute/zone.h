// The Zone aggregate: the scheduler's ledger for one availability zone. It
// knows every node's capacity and every instance's reservation; placement
// is a command on it, so two RunInstances can never book the same capacity
// twice, and a crash cannot lose or double a reservation (it is in the log).
// Aggregate id: the zone name.
#pragma once

#include "actors/runtime/decision.h"
#include "persistence/event_store.h"

#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

namespace kumo::actors::zone {

struct capacity {
  uint64_t vcpus = 0;
  uint64_t memory_mib = 0;
  uint64_t disk_gib = 0;
  bool operator==(const capacity&) const = default;
};

struct reservation {
  std::string instance_id;
  std::string node_id;
  capacity size;
  int64_t reserved_ms = 0;
  bool operator==(const reservation&) const = default;
};

enum class policy { pack, spread };

// ---- Commands
struct register_node {
  std::string node_id;
  capacity total;
};
// Places up to instance_ids.size() instances, at least min_count, or none.
// Instances that already hold a reservation keep it (retries are idempotent).
struct reserve {
  std::vector<std::string> instance_ids;
  capacity each;
  size_t min_count = 1;
  std::vector<std::string> available_nodes;  // nodes heard from recently
  policy placement = policy::pack;
  int64_t at_ms = 0;
};
struct release {
  std::string instance_id;
};
// A node destroyed a domain the log knew nothing of (the audit trail).
struct record_removal {
  std::string node_id;
  std::string instance_id;  // the domain's name
  int64_t at_ms = 0;
};
using command = std::variant<register_node, reserve, release, record_removal>;

// ---- Events
struct node_registered {
  std::string node_id;
  capacity total;
};
struct capacity_reserved {
  std::vector<reservation> placements;
};
struct capacity_released {
  std::string instance_id;
};
struct unknown_domain_removed {
  std::string node_id;
  std::string instance_id;
  int64_t at_ms = 0;
};
using event = std::variant<node_registered, capacity_reserved, capacity_released, unknown_domain_removed>;

// ---- State
struct node {
  capacity total;
  capacity used;
  bool operator==(const node&) const = default;
};
struct state {
  bool exists = false;
  std::map<std::string, node> nodes;
  std::map<std::string, reservation> reservations;  // by instance id
  bool operator==(const state&) const = default;
};

struct aggregate {
  using state = zone::state;
  using event = zone::event;
  using command = zone::command;
  static constexpr const char* kind = "zone";
  static constexpr uint32_t state_version = 1;

  static bool valid_id(const std::string& id);
  static decision<aggregate> decide(const std::string& id, const state& s, const command& c);
  static state apply(state s, const event& e);
  static persistence::new_event encode(const event& e);
  static persistence::status decode(const persistence::event_record& r, event& out);
  static std::string save(const state& s);
  static bool load(const std::string& json, state& s);
};

}  // namespace kumo::actors::zone
