// The top-level Query parameters botocore's EC2 model defines per operation
// (generated at build time by api/gen/ec2_params.py).
#pragma once

#include <set>
#include <string>

namespace kumo::api {

// Nullptr when the model does not know the action (kumo's own Kumo* actions).
const std::set<std::string>* model_parameters(const std::string& action);

}  // namespace kumo::api
