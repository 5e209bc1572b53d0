#include "net/dhcp_leases.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <optional>
#include <unordered_map>

namespace kumo::net {
namespace {

std::optional<uint32_t> ipv4(std::string_view text) {
  std::string s(text);
  in_addr a{};
  if (::inet_pton(AF_INET, s.c_str(), &a) != 1) return std::nullopt;
  return ntohl(a.s_addr);
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

std::vector<std::string_view> fields_of(std::string_view line) {
  std::vector<std::string_view> fields;
  size_t at = 0;
  while (at < line.size()) {
    while (at < line.size() && line[at] == ' ') ++at;
    const size_t end = std::min(line.find(' ', at), line.size());
    if (end > at) fields.push_back(line.substr(at, end - at));
    at = end;
  }
  return fields;
}

// A bridge of the plane and the network of its address ("10.16.3.1/24").
struct bridge_subnet {
  const std::string* name;
  uint32_t network;
  uint32_t mask;
};

std::vector<bridge_subnet> bridge_subnets(const desired_plane& desired) {
  std::vector<bridge_subnet> out;
  for (const auto& l : desired.links) {
    const auto slash = l.address.find('/');
    if (l.kind != link_kind::bridge || slash == std::string::npos) continue;
    const auto address = ipv4(std::string_view(l.address).substr(0, slash));
    const int prefix = std::atoi(l.address.c_str() + slash + 1);
    if (!address || prefix <= 0 || prefix > 32) continue;
    const uint32_t mask = ~uint32_t{0} << (32 - prefix);
    out.push_back({&l.name, *address & mask, mask});
  }
  return out;
}

}  // namespace

std::string stale_lease::describe() const {
  return lease.ip + " of " + lease.mac +
         (owner_mac.empty() ? " (no NIC in the log has " + lease.ip + ")"
                            : " (the log gives " + lease.ip + " to " + owner_mac + ")");
}

lease_check check_leases(std::string_view lease_file, const desired_plane& desired) {
  std::unordered_map<std::string_view, const dhcp_host*> by_ip;
  by_ip.reserve(desired.dhcp_hosts.size());
  for (const auto& h : desired.dhcp_hosts) by_ip.emplace(h.ip, &h);
  const auto bridges = bridge_subnets(desired);

  lease_check out;
  size_t at = 0;
  while (at < lease_file.size()) {
    const size_t newline = lease_file.find('\n', at);
    if (newline == std::string_view::npos) {  // cut off (or being written)
      ++out.unreadable;
      break;
    }
    const auto line = lease_file.substr(at, newline - at);
    at = newline + 1;
    if (line.empty()) continue;
    const auto f = fields_of(line);
    if (!f.empty() && f[0] == "duid") {
      out.backed_file.append(line).push_back('\n');
      continue;
    }
    const auto address = f.size() >= 5 ? ipv4(f[2]) : std::nullopt;
    if (!address) {
      ++out.unreadable;
      continue;
    }
    stale_lease s;
    s.lease = {lower(f[1]), std::string(f[2]), f[4] != "*" ? std::string(f[4]) : ""};
    if (auto h = by_ip.find(f[2]); h != by_ip.end()) {
      if (lower(h->second->mac) == s.lease.mac) {
        out.backed_file.append(line).push_back('\n');
        continue;
      }
      s.owner_mac = h->second->mac;
    }
    for (const auto& b : bridges)
      if ((*address & b.mask) == b.network) s.bridge = *b.name;
    out.stale.push_back(std::move(s));
  }
  return out;
}

}  // namespace kumo::net
