// Reads of an account's resources that several operations need. Each loads
// the caller's resources no older than every acknowledged write and calls
// `then`, or answers the request with ServiceUnavailable.
#pragma once

#include "actors/compute/compute.h"
#include "actors/image/image.h"
#include "actors/keypair/keypair.h"
#include "actors/network/host_view.h"
#include "actors/securitygroup/security_group.h"
#include "api/operation.h"

#include <functional>
#include <vector>

namespace kumo::api {

void with_key_pairs(const op_ptr& c, std::function<void(std::vector<actors::keypair::state>&)> then);
// Creates the account's default group first if it is missing.
void with_security_groups(const op_ptr& c,
                          std::function<void(std::vector<actors::security_group::state>&)> then);
// Every image the caller may launch: its own, public ones, shared ones.
void with_images(const op_ptr& c, std::function<void(std::vector<actors::image::state>&)> then);
// The caller's instances, as DescribeInstances sees them.
void with_instances(const op_ptr& c, std::function<void(std::vector<actors::instance_view>&)> then);
// The caller's account's NICs and elastic IPs, read from the network
// controller's projection (after the caller's own writes). Callers must only
// show what belongs to instances the caller may see. Empty with networking off.
void with_network(const op_ptr& c, std::function<void(const actors::network::account_network&)> then);

}  // namespace kumo::api
