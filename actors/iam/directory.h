// The IAM read model: every user and group of every account, which user each
// access key belongs to, and who launched each instance and registered each
// image (the first event of its stream carries that principal). Pure: folded from the log by
// the projection runtime (see iam_actors.h) and by tests.
#pragma once

#include "actors/iam/group.h"
#include "actors/iam/user.h"
#include "persistence/event_store.h"

#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace kumo::actors::iam {

// One account's users and groups, and its instances' and images' owners.
struct directory {
  std::vector<user_state> users;    // by name
  std::vector<group_state> groups;  // by name
  std::map<std::string, std::string> resource_owners;  // instance or image id -> principal ARN

  const user_state* user(const std::string& name) const;
  const group_state* group(const std::string& name) const;
  std::vector<const group_state*> groups_of(const std::string& user_name) const;
};

// Who signed a request with an IAM user's key.
struct caller_identity {
  std::string account_id;
  std::string user_name;
  std::string user_arn;
  access_key key;
  std::vector<std::string> policies;  // effective policy documents
};

class directory_model {
 public:
  static constexpr const char* name = "iam";
  static constexpr uint32_t state_version = 1;

  void apply(const persistence::event_record& r);
  std::string save() const;
  bool load(const std::string& text);

  std::optional<caller_identity> find_key(const std::string& access_key_id) const;
  directory of_account(const std::string& account_id) const;
  // What decides which instances and images one user sees: that user, only
  // the groups it belongs to, and the account's resource owners.
  directory of_user(const std::string& account_id, const std::string& user_name) const;

 private:
  void index_keys(const std::string& id, const user_state& s, bool add);

  std::map<std::string, user_state> users_;    // "<account>/<name>"
  std::map<std::string, group_state> groups_;  // "<account>/<name>"
  std::map<std::string, std::string> owners_;  // "<account>/<instance or image id>" -> principal
  std::unordered_map<std::string, std::string> keys_;  // access key id -> "<account>/<user>"
};

}  // namespace kumo::actors::iam
