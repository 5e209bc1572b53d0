// kumo's links on this host through libnl (route): segment bridges with their
// gateway address, the VXLAN or VLAN device of each segment, and guests'
// taps plugged into the right bridge. Observed from the kernel's link and
// address caches, diffed against the desired links and taps, repaired.
// Reading the caches costs a dump of every link of the host (a tap per
// guest), so a pass skips it when the desired links and taps are the last
// pass's and rtnetlink announced no link or IPv4 address change since that
// pass read the kernel (or lost count); at least every 30 s it reads anyway.
// Internal to net/ (see dataplane.h).
#pragma once

#include "net/desired_state.h"

#include <chrono>
#include <memory>
#include <set>
#include <string>
#include <vector>

struct nl_sock;

namespace kumo::net {

class link_table {
 public:
  static std::unique_ptr<link_table> open(std::string& error);
  ~link_table();
  link_table(const link_table&) = delete;
  link_table& operator=(const link_table&) = delete;

  // Differences from what kumo last made (on the first call: from the log)
  // are drift and come back as repairs; a segment that comes or goes is an
  // update and is only logged.
  bool reconcile(const desired_plane& desired, std::vector<std::string>& repairs, std::string& error);

 private:
  link_table(nl_sock* sock, nl_sock* events) : sock_(sock), events_(events) {}
  // Whether rtnetlink announced a change since the last call (true when
  // announcements were lost); reads them all.
  bool kernel_changed();

  static constexpr std::chrono::seconds reread_every{30};

  nl_sock* sock_;
  nl_sock* events_;  // member of the link and IPv4 address groups; never blocks
  bool applied_once_ = false;
  std::set<std::string> applied_;  // link names kumo made last time
  std::vector<link> applied_links_;
  std::vector<tap_port> applied_taps_;
  std::chrono::steady_clock::time_point read_at_;
};

}  // namespace kumo::net
