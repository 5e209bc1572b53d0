// The Account aggregate: a tenant of the cloud and its access keys.
// Commands, events, state, decide and apply — read top to bottom.
// Pure: no actors, threads or disks here (see account_actors.h for those).
#pragma once

#include "actors/runtime/decision.h"
#include "persistence/event_store.h"

#include <map>
#include <string>
#include <variant>
#include <vector>

namespace kumo::actors::account {

struct access_key {
  std::string access_key_id;      // "AKIA" + 16 chars, like AWS
  std::string secret_access_key;  // kept so SigV4 can be verified
  bool operator==(const access_key&) const = default;
};

// AWS allows two access keys per principal; so do we.
constexpr size_t max_access_keys = 2;

// ---- Commands: what a caller may ask. Randomness (ids, secrets) is chosen by
// the caller so that decide() stays pure.
struct create_account {
  std::string name;
  bool admin = false;
  access_key initial_key;  // every account starts with one working key
};
struct create_access_key {
  access_key key;
};
struct delete_access_key {
  std::string access_key_id;
};
using command = std::variant<create_account, create_access_key, delete_access_key>;

// ---- Events: what happened. Stored forever: never renamed, versioned.
struct account_created {
  std::string account_id;
  std::string name;
  bool admin = false;
};
struct access_key_created {
  access_key key;
};
struct access_key_deleted {
  std::string access_key_id;
};
using event = std::variant<account_created, access_key_created, access_key_deleted>;

// ---- State: only ever changed by apply().
struct state {
  bool exists = false;
  std::string account_id;
  std::string name;
  bool admin = false;
  std::vector<access_key> keys;  // in creation order
  bool operator==(const state&) const = default;
};

struct aggregate {
  using state = account::state;
  using event = account::event;
  using command = account::command;
  static constexpr const char* kind = "account";
  static constexpr uint32_t state_version = 1;

  // AWS account ids: exactly 12 digits.
  static bool valid_id(const std::string& id);
  static decision<aggregate> decide(const std::string& id, const state& s, const command& c);
  static state apply(state s, const event& e);
  static persistence::new_event encode(const event& e);
  static persistence::status decode(const persistence::event_record& r, event& out);
  static std::string save(const state& s);
  static bool load(const std::string& json, state& s);
};

// Fresh random identifiers from the kernel's CSPRNG.
std::string new_account_id();
access_key new_access_key();

}  // namespace kumo::actors::account
