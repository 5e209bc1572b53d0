// The node role: one hypervisor host. A level-triggered reconciler, like a
// Kubernetes kubelet: the cluster sends the full desired set of instances
// for this node; the node compares it with what the hypervisor has, acts,
// and reports what it observes (which doubles as its heartbeat). It keeps no
// state of its own that matters: libvirt is the observed state, the log is
// the desired one.
#pragma once

#include "hypervisor/driver.h"
#include "net/dataplane.h"
#include "net/network_view.h"

#include <caf/fwd.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace kumo::actors {

struct node_config {
  std::string node_id = "node-1";
  std::string zone = "kumo-1a";
  std::string instances_dir;  // per-instance files: <dir>/<instance id>/{console.log,disk.*}
  uint64_t vcpus = 0;         // capacity offered to the scheduler
  uint64_t memory_mib = 0;
  uint64_t disk_gib = 0;
  std::chrono::milliseconds report_interval{2000};
  std::chrono::milliseconds stop_grace{30000};    // ACPI shutdown, then pull the plug
  std::chrono::milliseconds orphan_grace{60000};  // unknown kumo domains are destroyed after this
  // Managed networking on a node host (kumod --role=node): the bridges,
  // VXLAN/VLAN devices and taps of its guests' segments, made on every pass.
  // Null when this host has none of its own (all-in-one: the cloud's data
  // plane serves the same kernel).
  std::shared_ptr<net::dataplane> links;
  std::string net_interface;  // carries the segments to the cloud host (VXLAN or VLAN: the cloud's choice)
};

// Spawns the node actor (detached: driver calls block). `connect` returns the
// cluster's compute controller (a local handle, or a remote one looked up over
// the CAF middleman; null when unreachable). The node registers, re-registers
// until the cluster answers, and reconnects when the cluster goes away.
caf::actor spawn_node(caf::actor_system& sys, node_config cfg,
                      std::shared_ptr<hypervisor::driver> driver, std::function<caf::actor()> connect);

// The capacity of this host: its CPUs, memory and the free space under `dir`.
void detect_capacity(node_config& cfg);

}  // namespace kumo::actors
