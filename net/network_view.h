// What the control plane wants the data plane of one host to be: the input of
// every desired-state function in net/. Plain values, no actors, no kernel:
// the network controller (actors/network) builds a network_view from the
// event log's projection; net/ turns it into an nft ruleset, links and
// dnsmasq hosts and makes the kernel match.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace kumo::net {

// One isolated L2 segment: the (account, security group) pair of EC2's
// classic managed mode. Its subnet is a /24 out of the private range; .1 is
// the gateway (on the bridge), guests get .10 and up.
struct segment {
  uint32_t vni = 0;          // VXLAN id or VLAN id; names its links (kbr<vni>, kvx<vni>/kvl<vni>)
  std::string account_id;
  std::string group_id;      // sg-...
  std::string subnet;        // "10.16.3.0/24"
};

// One instance NIC on a segment.
struct nic {
  std::string instance_id;
  uint32_t vni = 0;          // its segment
  std::string mac;           // "02:xx:xx:xx:xx:xx" (locally administered)
  std::string private_ip;    // "10.16.3.10"
  std::string public_ip;     // elastic or auto-assigned; empty when none
  std::string tap;           // host tap device, <= 15 chars ("kt" + 10 hex)
};

// One permission of a security group, compiled onto its segment. Ingress:
// what may come into segment `vni` from the peer; egress: where segment
// `vni`'s guests may send to. The peer is a CIDR or another segment
// (group-to-group, same account).
struct group_rule {
  uint32_t vni = 0;          // the segment the rule belongs to
  std::string protocol = "-1";  // tcp | udp | icmp | -1 (all)
  int from_port = -1;        // -1 with protocol -1; ICMP: type (-1 any)
  int to_port = -1;          // ICMP: code (-1 any)
  std::string cidr;          // "0.0.0.0/0", or empty when peer_vni is set
  uint32_t peer_vni = 0;     // peer segment, 0 when cidr is set
};

enum class segment_mode { vxlan, vlan };

struct network_view {
  segment_mode mode = segment_mode::vxlan;
  std::string physical_interface;   // carries VXLAN/VLAN between hosts; empty: none (one host)
  // This host is the segments' gateway (their .1 on its bridges, DHCP, NAT,
  // metadata): the cloud host. A node host only carries its guests' L2.
  bool gateway = true;
  // The MTU DHCP tells guests, when > 0: a VXLAN underlay carries 50 bytes
  // more per frame, and a bridge never fragments.
  int guest_mtu = 0;
  std::string metadata_ip = "169.254.169.254";
  uint16_t metadata_port = 8775;    // where the local metadata server listens (DNAT target)
  std::vector<segment> segments;    // sorted by vni
  std::vector<nic> nics;            // sorted by instance id
  std::vector<group_rule> ingress;
  std::vector<group_rule> egress;
};

}  // namespace kumo::net
