// From the log's projection to what one host's data plane and metadata
// service must serve: pure functions, so what the kernel will be told can be
// unit-tested from events alone.
#pragma once

#include "actors/instance/instance.h"
#include "actors/network/network.h"
#include "actors/network/segment.h"
#include "actors/securitygroup/security_group.h"
#include "net/metadata.h"
#include "net/network_view.h"

#include <functional>
#include <map>
#include <string>
#include <vector>

namespace kumo::actors::network {

struct host_settings {
  net::segment_mode mode = net::segment_mode::vxlan;
  std::string physical_interface;  // empty: this host alone, bridges only
  uint16_t metadata_port = 8775;
  int guest_mtu = 0;  // announced by DHCP when > 0
};

// Security groups by group id (sg-...).
using groups_by_id = std::map<std::string, const security_group::state*>;
// Segments by aggregate id ("<account>/<sg-...>").
using segments_by_id = std::map<std::string, const segment::state*>;

// Calls f(segment, nic, public ip) for every NIC of a segment that runs on a
// live lease of the ledger, in segment order.
using nic_visitor = std::function<void(const segment::state& seg, const segment::nic& n, const std::string& public_ip)>;
void for_each_nic(const state& ledger, const segments_by_id& segments, const nic_visitor& f);

// Every leased segment and the NICs on it, and each segment's ingress and
// egress rules (a peer group without a segment has no instances: nothing to
// admit or reach).
net::network_view host_view(const state& ledger, const segments_by_id& segments, const groups_by_id& groups,
                            const host_settings& host);

// What one account's Describe* calls show: its instances' NICs with their
// public IPs, and its elastic IPs. Another account's are never in it.
struct instance_network {
  std::string group_id;  // the segment's group
  segment::nic nic;
  std::string public_ip;
};
struct account_network {
  std::map<std::string, instance_network> instances;  // by instance id
  std::vector<address> addresses;                      // by allocation id
};
// `segments` may hold any accounts' segments: only `account_id`'s are used.
account_network account_view(const state& ledger, const segments_by_id& segments, const std::string& account_id);

// The metadata service's table: one entry per NIC whose instance is known.
using instance_lookup = std::function<const instance::state*(const std::string& account_id, const std::string& instance_id)>;
net::metadata_table metadata_of(const state& ledger, const segments_by_id& segments, const instance_lookup& instances,
                                const std::string& region);

}  // namespace kumo::actors::network
