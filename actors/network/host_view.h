// From the log's projection to what one host's data plane and metadata
// service must serve: pure functions, so what the kernel will be told can be
// unit-tested from events alone.
#pragma once

#include "actors/instance/instance.h"
#include "actors/network/network.h"
#include "actors/securitygroup/security_group.h"
#include "net/metadata.h"
#include "net/network_view.h"

#include <functional>
#include <map>
#include <string>

namespace kumo::actors::network {

struct host_settings {
  net::segment_mode mode = net::segment_mode::vxlan;
  std::string physical_interface;  // empty: this host alone, bridges only
  uint16_t metadata_port = 8775;
};

// Security groups by group id (sg-...).
using groups_by_id = std::map<std::string, const security_group::state*>;

// Every segment and NIC of the ledger, and each segment's ingress and egress
// rules (a peer group without a segment has no instances: nothing to admit or reach).
net::network_view host_view(const state& ledger, const groups_by_id& groups, const host_settings& host);

// The metadata service's table: one entry per NIC whose instance is known.
using instance_lookup = std::function<const instance::state*(const nic& n)>;
net::metadata_table metadata_of(const state& ledger, const instance_lookup& instances, const std::string& region);

}  // namespace kumo::actors::network
