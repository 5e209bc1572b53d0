// The one dnsmasq of this host (DHCP only): its config and static leases
// are written from the view and the process is supervised. It outlives
// kumod on purpose (guests renew leases while the control plane restarts)
// and is adopted again through its pid file. Internal to net/.
#pragma once

#include "net/desired_state.h"

#include <string>
#include <vector>

namespace kumo::net {

class dnsmasq_process {
 public:
  explicit dnsmasq_process(std::string state_dir) : dir_(std::move(state_dir)) {}
  bool reconcile(const desired_plane& desired, std::vector<std::string>& repairs, std::string& error);
  // SIGTERM, then SIGKILL if it outlives a second; the pid file goes only
  // once the process is gone (a pid file left behind means "it died").
  // False when it still runs 5 s after SIGKILL (its pid file stays).
  bool stop();

 private:
  int running_pid() const;  // 0 when ours is not running
  bool start(std::string& error);

  std::string dir_;
  bool started_once_ = false;
};

}  // namespace kumo::net
