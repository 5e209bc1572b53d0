// The one dnsmasq of this host (DHCP only): its config and static leases
// are written from the view, the leases it remembers are held to the log,
// and the process is supervised. Internal to net/.
//
// It runs as kumod's child (--keep-in-foreground, in a session of its own,
// started through process::spawn with a clean signal state), so kumod reaps
// it by pid wherever PID 1 does not. It outlives a kumod that dies (guests
// renew leases while the control plane restarts) and is adopted again
// through its pid file; whether it lives is read from /proc (a zombie is
// dead), and a pid is taken for ours only if its command line runs our
// config.
#pragma once

#include "net/desired_state.h"

#include <sys/types.h>

#include <chrono>
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
  pid_t running_pid();  // 0 when ours is not running
  // Drops the leases the log does not back from the lease file, then starts.
  bool start(const desired_plane& desired, bool explained, std::vector<std::string>& repairs, std::string& error);
  bool restart(const desired_plane& desired, bool explained, std::vector<std::string>& repairs, std::string& error);
  // Makes a running dnsmasq forget the leases the log does not back.
  bool release_stale_leases(const desired_plane& desired, bool explained, std::vector<std::string>& repairs,
                            std::string& error);

  std::string dir_;
  pid_t child_ = 0;  // the dnsmasq this process started: ours to reap
  bool started_once_ = false;
  // When the leases were last held to the log; never: the first pass checks.
  std::chrono::steady_clock::time_point leases_checked_{};
};

}  // namespace kumo::net
