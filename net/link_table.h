// kumo's links on this host through libnl (route): segment bridges with their
// gateway address, the VXLAN or VLAN device of each segment, and guests'
// taps plugged into the right bridge. Observed from the kernel's link and
// address caches, diffed against the desired links and taps, repaired.
// Internal to net/ (see dataplane.h).
#pragma once

#include "net/desired_state.h"

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
  explicit link_table(nl_sock* sock) : sock_(sock) {}
  nl_sock* sock_;
  bool applied_once_ = false;
  std::set<std::string> applied_;  // link names kumo made last time
};

}  // namespace kumo::net
