// kumod's compute settings turned into what the actors need: the cluster's
// compute config, the instance types, and this host's node (its driver and
// capacity).
#pragma once

#include "config.h"

#include "actors/compute/compute.h"
#include "actors/node/node.h"
#include "hypervisor/driver.h"

#include <memory>
#include <optional>
#include <string>

namespace kumo::daemon {

struct compute_setup {
  actors::compute_config cluster;
  std::vector<actors::instance::sizing> instance_types;
  actors::node_config node;
  std::shared_ptr<hypervisor::driver> driver;
};

// Nullopt with a message naming the bad setting or the unreachable hypervisor.
std::optional<compute_setup> prepare_compute(const config& cfg, std::string& error);

}  // namespace kumo::daemon
