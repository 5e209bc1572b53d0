// What the cluster role and a node role say to each other. These messages
// cross CAF nodes (kumod --role=node on another host), so every type here has
// an `inspect` overload and is registered by add_node_protocol_types().
//
//   node -> cluster   (register_node_atom, node_capacity, actor node)  -> ok
//   cluster -> node   (assign_atom, node_assignment)      level-triggered: the full desired set
//   node -> cluster   (node_report_atom, node_report)     what the hypervisor has, also a heartbeat
//   cluster -> node   (console_atom, instance_id)         -> std::string (serial console tail)
#pragma once

#include <caf/atom.hpp>
#include <caf/fwd.hpp>
#include <caf/meta/type_name.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace kumo::actors {

using register_node_atom = caf::atom_constant<caf::atom("regnode")>;
using assign_atom = caf::atom_constant<caf::atom("assign")>;
using node_report_atom = caf::atom_constant<caf::atom("nodereport")>;
using console_atom = caf::atom_constant<caf::atom("console")>;
using lifecycle_atom = caf::atom_constant<caf::atom("lifecycle")>;  // driver -> its node actor

// Bumped whenever a message here changes shape: a cluster refuses a node of
// another version by name instead of misreading its messages.
inline constexpr uint32_t node_protocol_version = 2;

struct node_capacity {
  uint32_t protocol = node_protocol_version;
  std::string node_id;
  std::string zone;
  uint64_t vcpus = 0;
  uint64_t memory_mib = 0;
  uint64_t disk_gib = 0;
  std::string hypervisor;  // driver description, for logs and DescribeInstances' hypervisor
};

// A volume that should be plugged into an instance (see actors/storage).
struct desired_volume {
  std::string volume_id;   // vol-...
  std::string path;        // its backing file, reachable from the node
  std::string target_dev;  // virtio disk: vdb..vdl
};

// What should be true of one instance on a node.
enum class desired_power : uint8_t { run = 0, stop = 1, absent = 2 };

struct desired_instance {
  std::string instance_id;
  std::string account_id;
  std::string instance_type;
  uint64_t vcpus = 1;
  uint64_t memory_mib = 256;
  uint64_t disk_gib = 1;
  std::string kernel_path;
  std::string ramdisk_path;
  std::string disk_image_path;
  uint8_t power = 0;        // desired_power
  bool first_boot = false;  // pending: start it even if it is shut off
  bool force_stop = false;
  uint64_t reboot_generation = 0;  // reboot requests so far
  uint64_t reboot_done = 0;        // of which the log says a node carried out this many
  std::vector<desired_volume> volumes;  // data volumes to plug in (not the root disk)
  // Its NIC (managed networking): tap `tap` with `mac`, plugged into the
  // bridge of segment `nic_vni` (net::bridge_name). 0: no network. The node
  // boots it only once the bridge exists (a node host makes it itself).
  std::string nic_mac;
  std::string nic_tap;
  uint32_t nic_vni = 0;
  std::string nic_subnet;  // the segment's "10.16.3.0/24"
  std::string nic_ip;      // its private address in it
};

struct node_assignment {
  std::vector<desired_instance> instances;
  uint8_t segment_mode = 0;  // net::segment_mode of the cloud's segments (0 VXLAN, 1 VLAN): one setting for all hosts
};

// What a node sees of one instance's domain (values of instance::observed).
struct observed_instance {
  std::string instance_id;
  uint8_t what = 0;    // 0 running, 1 shut off, 2 absent, 3 failed
  std::string detail;  // why it failed, or the repair the node made
  uint64_t rebooted_generation = 0;  // newest reboot request carried out
  std::string repair;                // what the node just repaired (recorded as an event)
  bool volumes_seen = false;         // the node read the domain's disks: `volumes` is the truth
  std::vector<std::string> volumes;  // vol-... ids plugged into the domain
};

struct node_report {
  std::string node_id;
  std::vector<observed_instance> instances;
  std::vector<std::string> removed_domains;  // kumo domains the log did not know, destroyed
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, node_capacity& x) {
  return f(caf::meta::type_name("kumo::node_capacity"), x.protocol, x.node_id, x.zone, x.vcpus, x.memory_mib,
           x.disk_gib, x.hypervisor);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, desired_volume& x) {
  return f(caf::meta::type_name("kumo::desired_volume"), x.volume_id, x.path, x.target_dev);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, desired_instance& x) {
  return f(caf::meta::type_name("kumo::desired_instance"), x.instance_id, x.account_id,
           x.instance_type, x.vcpus, x.memory_mib, x.disk_gib, x.kernel_path, x.ramdisk_path,
           x.disk_image_path, x.power, x.first_boot, x.force_stop, x.reboot_generation, x.reboot_done,
           x.volumes, x.nic_mac, x.nic_tap, x.nic_vni, x.nic_subnet, x.nic_ip);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, node_assignment& x) {
  return f(caf::meta::type_name("kumo::node_assignment"), x.instances, x.segment_mode);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, observed_instance& x) {
  return f(caf::meta::type_name("kumo::observed_instance"), x.instance_id, x.what, x.detail,
           x.rebooted_generation, x.repair, x.volumes_seen, x.volumes);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, node_report& x) {
  return f(caf::meta::type_name("kumo::node_report"), x.node_id, x.instances, x.removed_domains);
}

// Registers the types above; both ends of a CAF connection must call it.
void add_node_protocol_types(caf::actor_system_config& cfg);

}  // namespace kumo::actors
