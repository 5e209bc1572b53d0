// The node's volume reconciler: makes a domain's data disks (everything but
// the root disk vda) what the desired set says, and reports which volumes
// are plugged in. Level-triggered: a disk the log no longer wants is
// unplugged, a missing one is plugged in, every time the node reconciles.
#pragma once

#include "actors/protocol/node.h"
#include "hypervisor/driver.h"

namespace kumo::actors {

// Plugs in / unplugs data disks of a defined domain (running: hot-plug;
// shut off: its definition), then fills seen.volumes (volumes_seen = true)
// from what the domain has afterwards. Leaves `seen` alone when the
// hypervisor cannot list the disks.
void reconcile_volumes(hypervisor::driver& driver, const std::string& node_id, const desired_instance& d,
                       observed_instance& seen);

// The volumes' disks for a domain being (re)defined.
void add_volume_disks(const desired_instance& d, std::vector<hypervisor::disk_spec>& disks);

}  // namespace kumo::actors
