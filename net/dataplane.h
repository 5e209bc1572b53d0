// The data plane of one host, as a level-triggered reconciler: given the
// desired network_view it reads what the kernel has (the `ip kumo` nft
// table, kumo's links, dnsmasq), diffs and repairs. The network controller
// calls reconcile() on start, after every relevant event and periodically;
// each repair comes back as a sentence the controller records as an event.
// A node host's data plane (make_node_dataplane) is called by its node actor
// on every pass, with its guests' segments.
#pragma once

#include "net/network_view.h"

#include <memory>
#include <string>
#include <vector>

namespace kumo::net {

struct reconcile_result {
  bool ok = true;
  std::string error;                 // what could not be done, and where
  std::vector<std::string> repairs;  // e.g. "removed DNAT 198.51.100.7 -> 10.16.0.12 nobody asked for"
};

struct dataplane_config {
  std::string state_dir;  // dnsmasq config, hosts and pid files live here
  bool manage_sysctls = true;  // ip_forward in this network namespace
};

class dataplane {
 public:
  virtual ~dataplane() = default;
  virtual std::string describe() const = 0;
  virtual reconcile_result reconcile(const network_view& desired) = 0;
  // Stops the processes it started (dnsmasq); the kernel objects stay, so
  // guests keep their network while the control plane restarts. Safe to call
  // from another thread than reconcile(); a reconcile() after it does nothing.
  virtual void stop() = 0;
};

// Needs CAP_NET_ADMIN in the current network namespace. nullptr + `error`
// when netlink or nftables cannot be used.
std::unique_ptr<dataplane> make_kernel_dataplane(dataplane_config cfg, std::string& error);

// The data plane of a node host (kumod --role=node): only its guests' L2,
// the bridges (no address: the gateway is the cloud host's), VXLAN/VLAN
// devices and taps of the segments in the view, whose `gateway` is false.
// Nothing in nftables, no dnsmasq. Needs CAP_NET_ADMIN.
std::unique_ptr<dataplane> make_node_dataplane(std::string& error);

}  // namespace kumo::net
