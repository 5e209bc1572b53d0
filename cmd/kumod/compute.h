// kumod's compute settings turned into what the actors need: the cluster's
// compute config and instance types, and this host's node (its driver and
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

// The cluster side: zones, placement policy, instance types.
struct cluster_setup {
  actors::compute_config cluster;
  std::vector<actors::instance::sizing> instance_types;
};
std::optional<cluster_setup> prepare_cluster(const config& cfg, std::string& error);

// This host as a node: its capacity and hypervisor driver. Nullopt with a
// message naming the bad setting or the unreachable hypervisor.
struct node_setup {
  actors::node_config node;
  std::shared_ptr<hypervisor::driver> driver;
};
std::optional<node_setup> prepare_node(const config& cfg, std::string& error);

}  // namespace kumo::daemon
