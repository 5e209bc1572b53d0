// Instances shared with user groups (see actors/iam/sharing.h for the rule):
// what the instance operations call so that an IAM user sees only its own
// and its groups' instances, and manages only its own.
#pragma once

#include "actors/compute/compute.h"
#include "api/operation.h"

#include <functional>
#include <vector>

namespace kumo::api {

// Keeps the instances the caller may see (all of them for the account's root).
void only_visible(const op_ptr& c, std::vector<actors::instance_view> all,
                  std::function<void(std::vector<actors::instance_view>&)> then);
// Runs `then` when the caller may manage (c->action) every instance of
// InstanceId/InstanceId.N it can see; else UnauthorizedOperation.
void owner_only(const op_ptr& c, std::function<void()> then);

}  // namespace kumo::api
