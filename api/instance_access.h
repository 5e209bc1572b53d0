// Instances and images shared with user groups (see actors/iam/sharing.h for
// the rule): what the instance and image operations call so that an IAM user
// sees only its own and its groups' resources, and manages only its own.
#pragma once

#include "actors/compute/compute.h"
#include "actors/image/image.h"
#include "api/operation.h"

#include <functional>
#include <vector>

namespace kumo::api {

// Keeps the instances the caller may see (all of them for the account's root).
void only_visible(const op_ptr& c, std::vector<actors::instance_view> all,
                  std::function<void(std::vector<actors::instance_view>&)> then);
// Keeps the images the caller may see: other accounts' (already filtered by
// launch permission), and of its own account those the root registered, its
// own and those shared with its groups (all of them for the account's root).
void only_visible_images(const op_ptr& c, std::vector<actors::image::state> all,
                         std::function<void(std::vector<actors::image::state>&)> then);
// Runs `then` when the caller may manage (c->action) its account's image
// `image_id`; else UnauthorizedOperation.
void image_owner_only(const op_ptr& c, const std::string& image_id, std::function<void()> then);
// Runs `then` when the caller may manage (c->action) every instance of
// InstanceId/InstanceId.N it can see; else UnauthorizedOperation.
void owner_only(const op_ptr& c, std::function<void()> then);

}  // namespace kumo::api
