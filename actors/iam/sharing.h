// Who may see and who may manage an instance or image of an account, once
// they can be shared with user groups. Pure, over the IAM directory:
//   - the account's root: everything of its account;
//   - an IAM user: the instances it launched, and those shared with a group
//     it belongs to (see: describe, start, stop, reboot, console); the images
//     the root registered (the account's catalogue), those it registered
//     itself and those shared with its groups (see and launch);
//   - managing (terminate, modify, deregister) a shared resource needs its
//     owner or the root, unless a policy of a group that shares it allows the
//     action on it.
#pragma once

#include "actors/iam/directory.h"

#include <string>

namespace kumo::actors::iam {

struct caller {
  std::string principal;  // ARN
  std::string user_name;  // empty: the account's root
};

// An instance (or image) the caller owns or that is shared with one of its groups.
bool may_see_resource(const directory& d, const caller& who, const std::string& resource_id);
// `image_id` of the caller's own account.
bool may_see_image(const directory& d, const caller& who, const std::string& image_id);
// `action` e.g. "ec2:TerminateInstances", `arn` the resource's ARN.
bool may_manage_resource(const directory& d, const caller& who, const std::string& resource_id,
                         const std::string& action, const std::string& arn);
// Sharing and unsharing (an instance or an image): the owner or the root; a
// user only with a group it belongs to.
std::optional<api_error> check_share(const directory& d, const caller& who, const std::string& resource_id,
                                     const std::string& group_name);

}  // namespace kumo::actors::iam
