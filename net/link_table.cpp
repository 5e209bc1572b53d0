#include "net/link_table.h"

#include <net/if.h>
#include <sys/socket.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/bridge.h>
#include <netlink/route/link/vlan.h>
#include <netlink/route/link/vxlan.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <fstream>
#include <map>
#include <unordered_map>

namespace kumo::net {
namespace {

// The kernel's links and addresses, read once per reconcile.
struct snapshot {
  nl_cache* links = nullptr;
  nl_cache* addrs = nullptr;
  ~snapshot() {
    if (links) nl_cache_free(links);
    if (addrs) nl_cache_free(addrs);
  }
};

// Exactly kbr<n>, kvx<n> or kvl<n>: nothing else on the host is ever touched.
bool is_kumo_link(const std::string& name) {
  if (name.size() < 4 || (name.rfind("kbr", 0) != 0 && name.rfind("kvx", 0) != 0 && name.rfind("kvl", 0) != 0))
    return false;
  return name.find_first_not_of("0123456789", 3) == std::string::npos;
}

std::string nl_error(int rc) { return nl_geterror(rc); }

bool has_address(nl_cache* addrs, int ifindex, const std::string& cidr) {
  bool found = false;
  for (auto* o = nl_cache_get_first(addrs); o && !found; o = nl_cache_get_next(o)) {
    auto* a = reinterpret_cast<rtnl_addr*>(o);
    if (rtnl_addr_get_ifindex(a) != ifindex || !rtnl_addr_get_local(a)) continue;
    char buf[64];
    found = cidr == nl_addr2str(rtnl_addr_get_local(a), buf, sizeof buf);
  }
  return found;
}

// Whether the link has any IPv4 address: a segment bridge with one is a
// gateway's (the cloud host's), never a node host's own.
bool has_ipv4(nl_cache* addrs, int ifindex) {
  for (auto* o = nl_cache_get_first(addrs); o; o = nl_cache_get_next(o)) {
    auto* a = reinterpret_cast<rtnl_addr*>(o);
    if (rtnl_addr_get_ifindex(a) == ifindex && rtnl_addr_get_family(a) == AF_INET) return true;
  }
  return false;
}

// Guests must not reach the host over IPv6 link-local on their bridge (the
// kumo table filters IPv4 only).
void without_ipv6(const std::string& bridge) {
  std::ofstream("/proc/sys/net/ipv6/conf/" + bridge + "/disable_ipv6") << "1\n";
}

}  // namespace

std::unique_ptr<link_table> link_table::open(std::string& error) {
  nl_sock* sock = nl_socket_alloc();
  nl_sock* events = nl_socket_alloc();
  auto fail = [&](const std::string& what) {
    error = what;
    if (sock) nl_socket_free(sock);
    if (events) nl_socket_free(events);
    return nullptr;
  };
  if (!sock || !events) return fail("libnl: cannot allocate a socket");
  if (int rc = nl_connect(sock, NETLINK_ROUTE); rc < 0) return fail("libnl: cannot connect to rtnetlink: " + nl_error(rc));
  nl_socket_disable_seq_check(events);
  if (int rc = nl_connect(events, NETLINK_ROUTE); rc < 0) return fail("libnl: cannot connect to rtnetlink: " + nl_error(rc));
  if (int rc = nl_socket_add_memberships(events, RTNLGRP_LINK, RTNLGRP_IPV4_IFADDR, 0); rc < 0)
    return fail("libnl: cannot listen to link and address changes: " + nl_error(rc));
  return std::unique_ptr<link_table>(new link_table(sock, events));
}

link_table::~link_table() {
  nl_socket_free(sock_);
  nl_socket_free(events_);
}

bool link_table::kernel_changed() {
  const int fd = nl_socket_get_fd(events_);
  bool changed = false;
  alignas(nlmsghdr) char buf[8192];
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) {
      changed = true;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return changed;
    } else {
      return true;  // ENOBUFS: announcements were lost
    }
  }
}

bool link_table::reconcile(const desired_plane& desired, std::vector<std::string>& repairs, std::string& error) {
  // Announcements are read on every pass, so that those that come from here
  // on are about what the read below (if any) does not show.
  const bool changed = kernel_changed();
  if (applied_once_ && !changed && std::chrono::steady_clock::now() - read_at_ < reread_every &&
      desired.links == applied_links_ && desired.taps == applied_taps_)
    return true;  // the kernel still has what the last pass left
  std::set<std::string> wanted;
  for (const auto& l : desired.links) wanted.insert(l.name);
  const auto& before = applied_once_ ? applied_ : wanted;
  // A change to something kumo made (or the log says should be) is drift.
  auto report = [&](const std::string& name, const std::string& sentence) {
    if (before.count(name)) {
      repairs.push_back(sentence);
    } else {
      spdlog::info("net: {}", sentence);
    }
  };
  auto fail = [&](const std::string& what, int rc) {
    error = what + ": " + nl_error(rc);
    return false;
  };

  snapshot now;
  read_at_ = std::chrono::steady_clock::now();
  if (int rc = rtnl_link_alloc_cache(sock_, AF_UNSPEC, &now.links); rc < 0) return fail("libnl: reading links", rc);
  if (int rc = rtnl_addr_alloc_cache(sock_, &now.addrs); rc < 0) return fail("libnl: reading addresses", rc);

  // By name, in one walk: a host has a link per guest, and every desired
  // link and tap is looked up on every pass.
  std::unordered_map<std::string, rtnl_link*> by_name;
  for (auto* o = nl_cache_get_first(now.links); o; o = nl_cache_get_next(o)) {
    auto* l = reinterpret_cast<rtnl_link*>(o);
    if (const char* name = rtnl_link_get_name(l)) by_name.emplace(name, l);
  }
  auto index_of = [&](const std::string& name) {
    auto it = by_name.find(name);
    return it == by_name.end() ? 0 : rtnl_link_get_ifindex(it->second);
  };

  // Links nobody asked for go first (a stale VXLAN could hold the id a new one needs).
  for (auto* o = nl_cache_get_first(now.links); o; o = nl_cache_get_next(o)) {
    auto* l = reinterpret_cast<rtnl_link*>(o);
    std::string name = rtnl_link_get_name(l);
    if (!is_kumo_link(name) || wanted.count(name)) continue;
    // A node host never takes down a gateway's bridge (or its VXLAN/VLAN
    // device): a cloud kumod sharing this kernel owns it.
    const int gateway_side = rtnl_link_get_master(l) ? rtnl_link_get_master(l) : rtnl_link_get_ifindex(l);
    if (!desired.gateway && has_ipv4(now.addrs, gateway_side)) continue;
    if (int rc = rtnl_link_delete(sock_, l); rc < 0) return fail("libnl: deleting " + name, rc);
    if (applied_once_ && applied_.count(name))
      spdlog::info("net: removed link {} (its segment is gone)", name);
    else
      repairs.push_back("removed link " + name + " nobody asked for");
  }

  std::map<std::string, int> ifindex;  // of links made or found below
  for (const auto& want : desired.links) {
    int index = index_of(want.name);
    const int master = want.master.empty() ? 0 : ifindex[want.master];
    if (!index) {
      rtnl_link* l = want.kind == link_kind::bridge  ? rtnl_link_bridge_alloc()
                     : want.kind == link_kind::vxlan ? rtnl_link_vxlan_alloc()
                                                     : rtnl_link_vlan_alloc();
      rtnl_link_set_name(l, want.name.c_str());
      if (want.kind != link_kind::bridge) {
        const int underlay = index_of(want.underlay);
        if (!underlay) {
          rtnl_link_put(l);
          error = "the physical interface " + want.underlay + " for " + want.name + " does not exist";
          return false;
        }
        if (want.kind == link_kind::vxlan) {
          nl_addr* group = nullptr;
          nl_addr_parse(want.group.c_str(), AF_INET, &group);
          rtnl_link_vxlan_set_id(l, want.vni);
          rtnl_link_vxlan_set_group(l, group);
          rtnl_link_vxlan_set_link(l, static_cast<uint32_t>(underlay));
          rtnl_link_vxlan_set_port(l, want.dstport);
          nl_addr_put(group);
        } else {
          rtnl_link_vlan_set_id(l, static_cast<uint16_t>(want.vni));
          rtnl_link_set_link(l, underlay);
        }
        if (master) rtnl_link_set_master(l, master);
      }
      rtnl_link_set_flags(l, IFF_UP);
      int rc = rtnl_link_add(sock_, l, NLM_F_CREATE | NLM_F_EXCL);
      rtnl_link_put(l);
      if (rc < 0) return fail("libnl: creating " + want.name, rc);
      report(want.name, "created link " + want.name + (before.count(want.name) ? " (it was missing)" : ""));
      if (want.kind == link_kind::bridge) without_ipv6(want.name);
      index = static_cast<int>(if_nametoindex(want.name.c_str()));
      if (!index) {
        error = "link " + want.name + " vanished right after it was created";
        return false;
      }
    } else {
      rtnl_link* l = by_name.at(want.name);
      rtnl_link* change = rtnl_link_alloc();
      bool changed = false;
      if (!(rtnl_link_get_flags(l) & IFF_UP)) {
        rtnl_link_set_flags(change, IFF_UP);
        report(want.name, "set link " + want.name + " up (it was down)");
        changed = true;
      }
      if (master && rtnl_link_get_master(l) != master) {
        rtnl_link_set_master(change, master);
        report(want.name, "put link " + want.name + " back into bridge " + want.master);
        changed = true;
      }
      int rc = changed ? rtnl_link_change(sock_, l, change, 0) : 0;
      rtnl_link_put(change);
      if (rc < 0) return fail("libnl: changing " + want.name, rc);
    }
    ifindex[want.name] = index;
    if (!want.address.empty() && !has_address(now.addrs, index, want.address)) {
      rtnl_addr* a = rtnl_addr_alloc();
      nl_addr* local = nullptr;
      nl_addr_parse(want.address.c_str(), AF_INET, &local);
      rtnl_addr_set_ifindex(a, index);
      rtnl_addr_set_local(a, local);
      int rc = rtnl_addr_add(sock_, a, 0);
      nl_addr_put(local);
      rtnl_addr_put(a);
      if (rc < 0) return fail("libnl: adding " + want.address + " to " + want.name, rc);
      report(want.name, "gave " + want.name + " its gateway address " + want.address);
    }
  }

  // Taps are libvirt's; kumo only makes sure each is in its segment's bridge.
  for (const auto& t : desired.taps) {
    auto tap = by_name.find(t.tap);
    auto bridge = ifindex.find(bridge_name(t.vni));
    if (tap == by_name.end() || bridge == ifindex.end()) continue;
    if (rtnl_link_get_master(tap->second) == bridge->second) continue;
    if (int rc = rtnl_link_enslave_ifindex(sock_, bridge->second, rtnl_link_get_ifindex(tap->second)); rc < 0)
      return fail("libnl: plugging " + t.tap + " into " + bridge->first, rc);
    repairs.push_back("plugged tap " + t.tap + " of " + t.instance_id + " back into " + bridge->first);
  }
  applied_once_ = true;
  applied_ = wanted;
  applied_links_ = desired.links;
  applied_taps_ = desired.taps;
  return true;
}

}  // namespace kumo::net
