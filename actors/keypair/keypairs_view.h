// The key pairs read model: every live key pair, by account and name.
// DescribeKeyPairs reads it; it is folded from the log by the projection runtime.
#pragma once

#include "actors/keypair/keypair.h"

#include <map>
#include <string>
#include <vector>

namespace kumo::actors::keypair {

class keypairs_model {
 public:
  static constexpr const char* name = "keypairs";
  static constexpr uint32_t state_version = 1;

  void apply(const persistence::event_record& r);
  std::string save() const;
  bool load(const std::string& json);

  // The account's key pairs, by name. Another account's are never returned.
  std::vector<state> list(const std::string& account_id) const;

 private:
  std::map<std::string, std::map<std::string, state>> by_account_;
};

}  // namespace kumo::actors::keypair
