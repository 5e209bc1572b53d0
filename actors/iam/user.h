// The User aggregate: one IAM user of an account, its access keys and its
// inline policies. The aggregate id is "<account id>/<user name>", so a name
// is unique per account by construction (two racing CreateUser calls, or an
// LDAP sync racing an API call, meet in one actor). Group membership lives
// in the Group aggregates (actors/iam/group.h).
#pragma once

#include "actors/runtime/decision.h"
#include "persistence/event_store.h"

#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

namespace kumo::actors::iam {

struct access_key {
  std::string access_key_id;      // "AKIA..." (permanent) or "ASIA..." (temporary, from a login)
  std::string secret_access_key;  // kept so SigV4 can be verified
  std::string status = "Active";  // "Active" | "Inactive"
  int64_t created_ms = 0;
  int64_t expires_ms = 0;                 // 0: never (temporary keys expire)
  std::string secret_session_token;       // temporary keys: must come as X-Amz-Security-Token
  bool operator==(const access_key&) const = default;
};

// AWS allows two (permanent) access keys per user.
constexpr size_t max_user_keys = 2;

// ---- Commands
struct create_user {
  std::string user_id;  // "AIDA" + 17, chosen by the caller
  std::string path = "/";
  int64_t created_ms = 0;
  std::string source = "iam";  // "iam" | "ldap" (mirrored by the directory sync)
  std::string ldap_dn;
  bool operator==(const create_user&) const = default;
};
// `force` (the directory sync): delete keys and policies too; without it
// those are a DeleteConflict, as in IAM.
struct delete_user {
  bool force = false;
};
struct create_access_key {
  access_key key;
};
struct update_access_key {
  std::string access_key_id;
  std::string status;
};
struct delete_access_key {
  std::string access_key_id;
};
// A temporary key (login); expired temporary keys are dropped at the same time.
struct issue_temporary_key {
  access_key key;
  int64_t now_ms = 0;
};
struct put_user_policy {
  std::string policy_name;
  std::string document;
};
struct delete_user_policy {
  std::string policy_name;
};
using user_command = std::variant<create_user, delete_user, create_access_key, update_access_key,
                                  delete_access_key, issue_temporary_key, put_user_policy, delete_user_policy>;

// ---- Events
struct user_created {
  std::string account_id;
  std::string user_name;
  create_user spec;
};
struct user_deleted {
  std::string user_id;
};
struct user_key_created {
  access_key key;
};
struct user_key_status_changed {
  std::string access_key_id;
  std::string status;
};
struct user_key_deleted {
  std::string access_key_id;
};
struct user_policy_put {
  std::string policy_name;
  std::string document;
};
struct user_policy_deleted {
  std::string policy_name;
};
using user_event = std::variant<user_created, user_deleted, user_key_created, user_key_status_changed,
                                user_key_deleted, user_policy_put, user_policy_deleted>;

// ---- State
struct user_state {
  bool exists = false;
  std::string account_id;
  std::string user_name;
  create_user spec;
  std::vector<access_key> keys;                 // creation order
  std::map<std::string, std::string> policies;  // name -> document
  bool operator==(const user_state&) const = default;
};

struct user_aggregate {
  using state = user_state;
  using event = user_event;
  using command = user_command;
  static constexpr const char* kind = "user";
  static constexpr uint32_t state_version = 1;

  // "<12-digit account>/<valid user name>"
  static bool valid_id(const std::string& id);
  static decision<user_aggregate> decide(const std::string& id, const state& s, const command& c);
  static state apply(state s, const event& e);
  static persistence::new_event encode(const event& e);
  static persistence::status decode(const persistence::event_record& r, event& out);
  static std::string save(const state& s);
  static bool load(const std::string& json, state& s);
};

// IAM names: users 1-64, groups 1-128, policies 1-128 of [A-Za-z0-9+=,.@_-].
bool valid_user_name(const std::string& name);
bool valid_group_name(const std::string& name);
bool valid_policy_name(const std::string& name);
// "/" or "/a/b/": 1-512 characters, starting and ending with '/'.
bool valid_path(const std::string& path);
std::string member_id(const std::string& account_id, const std::string& name);
// The account part and the name part of "<account>/<name>".
std::string account_of(const std::string& member_id);
std::string name_of(const std::string& member_id);
std::string user_arn(const std::string& account_id, const std::string& path, const std::string& name);
std::string group_arn(const std::string& account_id, const std::string& path, const std::string& name);

// Fresh ids from the kernel's CSPRNG: AIDA/AGPA + 17, AKIA/ASIA + 16, 40-char secrets.
std::string new_user_id();
std::string new_group_id();
access_key new_access_key(int64_t now_ms);
access_key new_temporary_key(int64_t now_ms, int64_t expires_ms);

// A policy document's size limit: users 2048, groups 5120 characters (IAM's).
constexpr size_t max_user_policy_size = 2048;
constexpr size_t max_group_policy_size = 5120;
// Checks a PutUserPolicy/PutGroupPolicy document; an error when refused.
std::optional<api_error> check_policy_document(const std::string& document, size_t max_size);

}  // namespace kumo::actors::iam
