// The network role: the Network aggregate (the region's ledger), one Segment
// aggregate per (account, security group), and the network controller, a
// Kubernetes-style reconciler over the log's projection. Desired state = the
// ledger plus segments plus instances plus security groups; observed state =
// what this host's kernel has (read by net::dataplane). On start, after every
// relevant event and every `reconcile_interval` it hands the data plane the
// desired view and records each repair in the ledger (so `kumoctl audit
// kumo-1` lists them). It also pushes the metadata table to the metadata
// server, and gives back what terminated instances held: NICs, public IPs,
// and the lease of a segment whose last NIC went.
//
//   ledger registry:  (region, network::command, request_meta) -> network_reply
//                     (region, get_state_atom)                 -> network_reply
//   segment registry: (<account>/<sg-...>, segment::command, request_meta) -> segment_reply
//   controller:       (list_network_atom, account, min_global_seq) -> network::account_network
//                     (net_reconcile_atom) -> net::reconcile_result   (reconcile now; managed mode)
#pragma once

#include "actors/network/host_view.h"
#include "actors/network/network.h"
#include "actors/network/segment.h"
#include "actors/protocol/messages.h"
#include "net/dataplane.h"
#include "net/metadata.h"
#include "net/network_view.h"
#include "persistence/event_store.h"

#include <caf/actor.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/fwd.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace kumo::actors {

using network_reply = command_reply<network::aggregate>;
using segment_reply = command_reply<segment::aggregate>;
using list_network_atom = caf::atom_constant<caf::atom("listnet")>;
using net_reconcile_atom = caf::atom_constant<caf::atom("netrecon")>;

enum class network_mode {
  off,      // no networking: guests have no NIC (the compute-only default)
  ledger,   // addresses and EIPs are allocated and described, no kernel is touched
  managed,  // ... and this host's kernel is made to match (bridges, nft, dnsmasq, metadata)
};

struct network_config {
  network_mode mode = network_mode::off;
  std::string region = "kumo-1";  // the ledger's aggregate id
  network::pools pools;
  bool auto_public_ip = false;  // give every new instance a public IP from the pool
  std::string host_id = "node-1";
  net::segment_mode segments = net::segment_mode::vxlan;
  std::string physical_interface;
  uint16_t metadata_port = 8775;  // where the host's metadata server listens (DNAT target)
  int guest_mtu = 0;              // DHCP's MTU for guests, when > 0 (kumod: the interface's minus VXLAN's 50)
  std::chrono::milliseconds reconcile_interval{5000};
  // NICs, public IPs and leases that no instance ever used (a crash in the
  // middle of RunInstances) are released after this.
  std::chrono::milliseconds orphan_grace{std::chrono::minutes(5)};
};

struct network_actors {
  caf::actor ledger;      // Network aggregate registry; null with networking off
  caf::actor segments;    // Segment aggregate registry; null with networking off
  caf::actor controller;  // null with networking off
};

// What managed mode drives on this host (kumod makes the kernel ones; tests
// may pass their own). Both null in ledger mode.
struct host_plane {
  std::shared_ptr<net::dataplane> dataplane;
  std::shared_ptr<net::metadata_server> metadata;
};

network_actors spawn_network(caf::actor_system& sys, const caf::actor& journal, persistence::event_store& store,
                             network_config cfg, host_plane plane = {});

}  // namespace kumo::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kumo::actors::network::command)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kumo::actors::network_reply)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kumo::actors::segment::command)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kumo::actors::segment_reply)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kumo::actors::network::account_network)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kumo::net::reconcile_result)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kumo::net::network_view)
