// The SecurityGroup aggregate: a named set of ingress and egress rules of one
// account (the networking issue turns each into an isolated segment).
// The aggregate id is "<account id>/<group name>": names are unique per
// account by construction; the group id (sg-...) is an attribute.
#pragma once

#include "actors/runtime/decision.h"
#include "actors/tags.h"
#include "persistence/event_store.h"

#include <string>
#include <variant>
#include <vector>

namespace kumo::actors::security_group {

// One normalised rule: a protocol/port range and exactly one peer (a CIDR or
// a group of the same account).
struct rule {
  std::string protocol = "-1";  // "tcp", "udp", "icmp" or "-1" (all)
  int from_port = -1;           // -1 with protocol "-1"; ICMP: type
  int to_port = -1;             // ICMP: code
  std::string cidr;             // "10.0.0.0/8", or empty when the peer is a group
  std::string source_group_id;  // "sg-..." (same account), or empty
  std::string description;
  // Two rules are the same rule whatever their descriptions say.
  bool same_as(const rule& o) const {
    return protocol == o.protocol && from_port == o.from_port && to_port == o.to_port &&
           cidr == o.cidr && source_group_id == o.source_group_id;
  }
  bool operator==(const rule&) const = default;
};

enum class direction { ingress, egress };

// EC2's default quota; also bounds what checking and describing a group costs.
constexpr size_t max_rules_per_direction = 60;

// ---- Commands
struct create_group {
  std::string group_id;  // chosen by the caller: "sg-" + 17 hex
  std::string description;
  int64_t created_ms = 0;
  std::vector<resource_tag> tags;
};
struct delete_group {};
struct authorize {
  direction dir = direction::ingress;
  std::vector<rule> rules;
};
struct revoke {
  direction dir = direction::ingress;
  std::vector<rule> rules;
};
using command = std::variant<create_group, delete_group, authorize, revoke, change_tags>;

// ---- Events
struct group_created {
  std::string account_id;
  std::string group_name;
  create_group group;
};
struct group_deleted {
  std::string group_id;
};
struct rules_authorized {
  direction dir = direction::ingress;
  std::vector<rule> rules;
};
struct rules_revoked {
  direction dir = direction::ingress;
  std::vector<rule> rules;
};
using event = std::variant<group_created, group_deleted, rules_authorized, rules_revoked, tags_changed>;

// ---- State
struct state {
  bool exists = false;
  std::string account_id;
  std::string group_name;
  std::string group_id;
  std::string description;
  int64_t created_ms = 0;
  std::vector<resource_tag> tags;
  std::vector<rule> ingress;
  std::vector<rule> egress;
  bool operator==(const state&) const = default;
};

struct aggregate {
  using state = security_group::state;
  using event = security_group::event;
  using command = security_group::command;
  static constexpr const char* kind = "securitygroup";
  static constexpr uint32_t state_version = 1;

  static bool valid_id(const std::string& id);
  static decision<aggregate> decide(const std::string& id, const state& s, const command& c);
  static state apply(state s, const event& e);
  static persistence::new_event encode(const event& e);
  static persistence::status decode(const persistence::event_record& r, event& out);
  static std::string save(const state& s);
  static bool load(const std::string& json, state& s);
};

std::string aggregate_id(const std::string& account_id, const std::string& group_name);
bool valid_group_name(const std::string& name);
std::string new_group_id();
// The rules every new group starts with: egress to anywhere. The default
// group also admits everything from its own members.
std::vector<rule> default_egress();

}  // namespace kumo::actors::security_group
