// The Group aggregate: a team of users of one account. Its membership, its
// inline policies and the resources shared with it are event-sourced, so
// `kumoctl audit group/<account>/<name>` shows who joined and left, and when.
// The aggregate id is "<account id>/<group name>".
#pragma once

#include "actors/runtime/decision.h"
#include "persistence/event_store.h"

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <variant>

namespace kumo::actors::iam {

// ---- Commands
struct create_group {
  std::string group_id;  // "AGPA" + 17, chosen by the caller
  std::string path = "/";
  int64_t created_ms = 0;
  std::string source = "iam";  // "iam" | "ldap"
  std::string ldap_dn;
  bool operator==(const create_group&) const = default;
};
// `force` (the directory sync): members and policies go too; otherwise they
// are a DeleteConflict, as in IAM.
struct delete_group {
  bool force = false;
};
struct add_member {
  std::string user_name;
};
struct remove_member {
  std::string user_name;
};
struct put_group_policy {
  std::string policy_name;
  std::string document;
};
struct delete_group_policy {
  std::string policy_name;
};
// Share a resource of the account (an instance id today) with the members.
struct share_resource {
  std::string resource_id;
  std::string owner;  // the principal that owns it and shared it
};
struct unshare_resource {
  std::string resource_id;
};
using group_command = std::variant<create_group, delete_group, add_member, remove_member, put_group_policy,
                                   delete_group_policy, share_resource, unshare_resource>;

// ---- Events
struct group_created {
  std::string account_id;
  std::string group_name;
  create_group spec;
};
struct group_deleted {
  std::string group_id;
};
struct member_added {
  std::string user_name;
};
struct member_removed {
  std::string user_name;
};
struct group_policy_put {
  std::string policy_name;
  std::string document;
};
struct group_policy_deleted {
  std::string policy_name;
};
struct resource_shared {
  std::string resource_id;
  std::string owner;
};
struct resource_unshared {
  std::string resource_id;
};
using group_event = std::variant<group_created, group_deleted, member_added, member_removed, group_policy_put,
                                 group_policy_deleted, resource_shared, resource_unshared>;

// ---- State
struct group_state {
  bool exists = false;
  std::string account_id;
  std::string group_name;
  create_group spec;
  std::set<std::string> members;                // user names
  std::map<std::string, std::string> policies;  // name -> document
  std::map<std::string, std::string> shared;    // resource id -> owner principal
  bool operator==(const group_state&) const = default;
};

struct group_aggregate {
  using state = group_state;
  using event = group_event;
  using command = group_command;
  static constexpr const char* kind = "group";
  static constexpr uint32_t state_version = 1;

  static bool valid_id(const std::string& id);
  static decision<group_aggregate> decide(const std::string& id, const state& s, const command& c);
  static state apply(state s, const event& e);
  static persistence::new_event encode(const event& e);
  static persistence::status decode(const persistence::event_record& r, event& out);
  static std::string save(const state& s);
  static bool load(const std::string& json, state& s);
};

}  // namespace kumo::actors::iam
