// Who may use a resource: the Add/Remove lists of an image's
// launchPermission and a snapshot's createVolumePermission, which EC2 takes
// in the same two forms:
//   <Prefix>.Add.N.UserId|Group and <Prefix>.Remove.N.UserId|Group, or
//   OperationType=add|remove with UserId.N / UserGroup.N.
#pragma once

#include "api/operation.h"

#include <optional>
#include <string>
#include <vector>

namespace kumo::api {

struct permission_lists {
  std::vector<std::string> add_accounts;
  std::vector<std::string> remove_accounts;
  bool add_public = false;  // Group "all"
  bool remove_public = false;
};

// Parses either form; user ids must be 12-digit account ids and the only
// group is "all" (else `item_error`). Fails the call and returns nullopt on
// bad input or when neither form is there.
std::optional<permission_lists> permission_params(const op_ptr& c, const std::string& prefix,
                                                  const std::string& item_error);

}  // namespace kumo::api
