// dnsmasq's lease file against the log, as a pure function. Internal to
// net/ (dnsmasq.cpp acts on it).
//
// dnsmasq remembers every lease it gave (for 12 h) in memory and in its lease
// file, and will not give an address that is leased to another MAC: after an
// instance is terminated and its private IP goes to a new instance, the new
// guest gets no answer at all. So the log's pairs win: a lease is kept only
// when the log gives its IP to its MAC (a dhcp_host of the desired plane);
// every other lease is stale and dnsmasq must forget it before the address
// is handed out again.
#pragma once

#include "net/desired_state.h"

#include <string>
#include <string_view>
#include <vector>

namespace kumo::net {

// One IPv4 line of the lease file: "<expiry> <mac> <ip> <hostname|*> <client-id|*>".
struct dhcp_lease {
  std::string mac;
  std::string ip;
  std::string client_id;  // empty for '*'
  bool operator==(const dhcp_lease&) const = default;
};

// A lease the log does not back, and where it was given.
struct stale_lease {
  dhcp_lease lease;
  // The bridge of the desired segment whose subnet holds the IP: dnsmasq
  // takes a DHCPRELEASE for it only there. Empty when no desired segment
  // holds it: only a restart of dnsmasq on a rewritten file drops it.
  std::string bridge;
  std::string owner_mac;  // the MAC the log gives the IP now; empty when no NIC has it
  // "10.16.0.10 of 02:00:00:00:00:01 (the log gives 10.16.0.10 to 02:...)"
  std::string describe() const;
  bool operator==(const stale_lease&) const = default;
};

struct lease_check {
  std::vector<stale_lease> stale;  // in the file's order
  // Lines that are no IPv4 lease (IPv6 leases, garbage, a last line without
  // its newline: dnsmasq rewrites the file in place, so a reader may catch it
  // half written). Not acted on while dnsmasq runs; left out of backed_file.
  size_t unreadable = 0;
  std::string backed_file;  // the backed leases (what dnsmasq may start from)
};

// MACs compare without regard to case. dnsmasq's "duid" line is kept.
lease_check check_leases(std::string_view lease_file, const desired_plane& desired);

}  // namespace kumo::net
