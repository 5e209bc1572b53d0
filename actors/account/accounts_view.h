// The accounts read model: every account and which account each access key
// belongs to (SigV4 looks secrets up here). Pure: folded from the log by the
// projection runtime in kumod, and by `kumoctl replay --at` offline.
#pragma once

#include "persistence/event_store.h"

#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace kumo::actors::account {

struct account_summary {
  std::string account_id;
  std::string name;
  bool admin = false;
  std::vector<std::string> access_key_ids;
  int64_t created_ms = 0;
  bool operator==(const account_summary&) const = default;
};

struct key_owner {
  std::string account_id;
  std::string secret_access_key;
  bool operator==(const key_owner&) const = default;
};

class accounts_model {
 public:
  static constexpr const char* name = "accounts";
  static constexpr uint32_t state_version = 2;  // 2: binary checkpoint

  void apply(const persistence::event_record& r);
  std::string save() const;
  bool load(const std::string& bytes);

  std::optional<key_owner> find_key(const std::string& access_key_id) const;
  std::optional<account_summary> find_account(const std::string& account_id) const;
  std::optional<account_summary> admin() const;
  std::vector<account_summary> list() const;  // ordered by account id
  // Events the model could not decode (each also logged): should stay 0.
  uint64_t undecodable() const { return undecodable_; }

 private:
  std::map<std::string, account_summary> accounts_;
  std::unordered_map<std::string, key_owner> keys_;
  uint64_t undecodable_ = 0;
};

}  // namespace kumo::actors::account
