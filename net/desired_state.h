// The data plane one host should have, as pure functions of a network_view:
// the `ip kumo` nft table, the links (bridges, VXLAN/VLAN devices) and the
// dnsmasq configuration and hosts. No kernel, no I/O: the same view always
// gives the same bytes, so the reconciler can compare desired with observed
// text and tests can compare outputs byte for byte. The reconciler takes all
// of them at once from desired() (one validation of the view per pass); the
// single functions are the same outputs one at a time.
//
// Inputs come from the ledger, but every string here ends up in nft or
// dnsmasq syntax, so entries that are malformed (bad address, subnet, MAC,
// tap name, VLAN id out of range, NIC or peer on an unknown segment) are left
// out of every output and reported by problems(), never spliced into text.
#pragma once

#include "net/network_view.h"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace kumo::net {

// A value or what was wrong with the input.
struct text_or_error {
  std::string value;  // meaningful when error is empty
  std::string error;
  explicit operator bool() const { return error.empty(); }
};

// Segment subnets are /24s: "10.16.3.0/24" -> "10.16.3.1".
text_or_error gateway_of(const std::string& subnet);
// "10.16.3.0/24", 10 -> "10.16.3.10"; host must be 1..254.
text_or_error host_in(const std::string& subnet, int host);

// One sentence per entry of the view that the outputs leave out, in the
// order segments, nics, ingress rules. Empty when the view is well formed.
std::vector<std::string> problems(const network_view& view);

// Full text of the one table kumo owns, for `nft -f`. Elastic IPs live in the
// maps eip_dnat (public -> private) and eip_snat (private -> public), one
// element per line, so one mapping is one map element (O(1) to add/remove with
// `add element`/`delete element`). To replace the table atomically, the
// applier sends `table ip kumo` + `delete table ip kumo` + this text in one
// transaction.
std::string nft_ruleset(const network_view& view);

// EC2's host name for a private address: "10.16.0.10" -> "ip-10-16-0-10".
std::string host_name(const std::string& ip);

// The bridge of segment `vni`, where its guests' taps are plugged in.
std::string bridge_name(uint32_t vni);

// The elements of the two EIP maps, sorted by key (as addresses, not text):
// public -> private (eip_dnat) and private -> public (eip_snat).
struct elastic_ip_maps {
  std::vector<std::pair<std::string, std::string>> dnat;
  std::vector<std::pair<std::string, std::string>> snat;
  bool operator==(const elastic_ip_maps&) const = default;
};
elastic_ip_maps eip_maps(const network_view& view);

enum class link_kind { bridge, vxlan, vlan };

struct link {
  link_kind kind = link_kind::bridge;
  std::string name;      // <= 15 chars: kbr<vni>, kvx<vni>, kvl<vni>
  std::string master;    // bridge it is enslaved to; empty for bridges
  uint32_t vni = 0;      // VXLAN id / 802.1q id
  std::string address;   // bridges: "10.16.3.1/24"; empty otherwise
  std::string underlay;  // physical interface of VXLAN/VLAN devices
  std::string group;     // VXLAN multicast group, 239.<vni bytes>
  uint16_t dstport = 0;  // VXLAN UDP port (4789)
  bool operator==(const link&) const = default;
};

// Per segment (by vni): its bridge, then (when the view has a physical
// interface) the VXLAN or VLAN device enslaved to it.
std::vector<link> desired_links(const network_view& view);

// One dnsmasq for the host, DHCP only (port=0), static leases from the hosts
// file, one tagged range per bridge.
std::string dnsmasq_config(const network_view& view, const std::string& state_dir);
// dhcp-hostsfile lines "<mac>,<ip>,ip-10-16-3-10", by instance id.
std::string dnsmasq_hosts(const network_view& view);

// A guest's tap and the segment whose bridge it belongs in (taps are
// libvirt's; the data plane only plugs them in).
struct tap_port {
  std::string tap;
  std::string instance_id;
  uint32_t vni = 0;
  bool operator==(const tap_port&) const = default;
};

// What DHCP answers one NIC: the MAC and address the log gives it. dnsmasq
// learns it from the hosts file; a lease it remembers for any other pair is
// stale (dhcp_leases.h).
struct dhcp_host {
  std::string mac;
  std::string ip;
  bool operator==(const dhcp_host&) const = default;
};

// Everything above from ONE validation of the view: what the kernel data
// plane reconciles against, computed once per pass (each function above is
// one field of it; at 10,000 NICs a validation costs milliseconds).
struct desired_plane {
  std::vector<std::string> problems;  // problems(view)
  size_t segments = 0;                // well-formed segments (none: no dnsmasq)
  std::vector<link> links;            // desired_links(view)
  std::vector<tap_port> taps;         // of the well-formed NICs, by instance id
  // The table's text after its two maps: chains and rules. No NIC appears in
  // it, so while it is unchanged an EIP change is map elements only.
  std::string nft_rules;
  elastic_ip_maps eips;               // eip_maps(view)
  std::string dnsmasq_config;         // dnsmasq_config(view, state_dir)
  std::string dnsmasq_hosts;          // dnsmasq_hosts(view)
  std::vector<dhcp_host> dhcp_hosts;  // the same pairs, by instance id
  bool gateway = true;                // view.gateway: false on a node host
};
desired_plane desired(const network_view& view, const std::string& state_dir);
// The same into `out`, reusing its buffers: the data plane keeps one
// desired_plane and refills it on every pass, which spares allocating (and
// page-faulting in) a few MB per pass at 10,000 NICs.
void desired(const network_view& view, const std::string& state_dir, desired_plane& out);

// The table's full text from its parts: nft_ruleset(view) is this of desired(view).
std::string nft_ruleset(const desired_plane& d);

}  // namespace kumo::net
