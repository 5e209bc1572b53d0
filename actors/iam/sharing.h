// Who may see and who may manage an instance of an account, once instances
// can be shared with user groups. Pure, over the IAM directory:
//   - the account's root: everything of its account;
//   - an IAM user: the instances it launched, and those shared with a group
//     it belongs to (see: describe, start, stop, reboot, console);
//   - managing (terminate, modify) a shared instance needs its owner or the
//     root, unless a policy of a group that shares it allows the action on it.
#pragma once

#include "actors/iam/directory.h"

#include <string>

namespace kumo::actors::iam {

struct caller {
  std::string principal;  // ARN
  std::string user_name;  // empty: the account's root
};

bool may_see_instance(const directory& d, const caller& who, const std::string& instance_id);
// `action` e.g. "ec2:TerminateInstances", `instance_arn` the instance's ARN.
bool may_manage_instance(const directory& d, const caller& who, const std::string& instance_id,
                         const std::string& action, const std::string& instance_arn);
// Sharing and unsharing: the owner or the root; a user only with a group it belongs to.
std::optional<api_error> check_share(const directory& d, const caller& who, const std::string& instance_id,
                                     const std::string& group_name);

}  // namespace kumo::actors::iam
