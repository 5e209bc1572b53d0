// The KeyPair aggregate: one SSH public key of an account, by name.
// The aggregate id is "<account id>/<key name>", so the name is unique per
// account by construction: two racing CreateKeyPair calls meet in one actor.
// Only the public key is ever stored; the private key leaves with the reply.
#pragma once

#include "actors/runtime/decision.h"
#include "actors/tags.h"
#include "persistence/event_store.h"

#include <string>
#include <variant>
#include <vector>

namespace kumo::actors::keypair {

// ---- Commands
struct create_key_pair {
  std::string key_pair_id;  // "key-" + 17 hex, chosen by the caller
  std::string key_type;     // "rsa" | "ed25519"
  std::string fingerprint;
  std::string public_key;   // OpenSSH one-line format
  int64_t created_ms = 0;
  std::vector<resource_tag> tags;
  bool operator==(const create_key_pair&) const = default;
};
struct delete_key_pair {};
using command = std::variant<create_key_pair, delete_key_pair, change_tags>;

// ---- Events
struct key_pair_created {
  std::string account_id;
  std::string key_name;
  create_key_pair key;
};
struct key_pair_deleted {
  std::string key_pair_id;
};
using event = std::variant<key_pair_created, key_pair_deleted, tags_changed>;

// ---- State
struct state {
  bool exists = false;
  std::string account_id;
  std::string key_name;
  create_key_pair key;  // the live key's fields when exists
  bool operator==(const state&) const = default;
};

struct aggregate {
  using state = keypair::state;
  using event = keypair::event;
  using command = keypair::command;
  static constexpr const char* kind = "keypair";
  static constexpr uint32_t state_version = 1;

  // "<12-digit account>/<name>", name 1-255 printable ASCII characters.
  static bool valid_id(const std::string& id);
  static decision<aggregate> decide(const std::string& id, const state& s, const command& c);
  static state apply(state s, const event& e);
  static persistence::new_event encode(const event& e);
  static persistence::status decode(const persistence::event_record& r, event& out);
  static std::string save(const state& s);
  static bool load(const std::string& json, state& s);
};

std::string aggregate_id(const std::string& account_id, const std::string& key_name);
bool valid_key_name(const std::string& name);
std::string new_key_pair_id();

}  // namespace kumo::actors::keypair
