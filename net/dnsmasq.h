// The one dnsmasq of this host (DHCP only): its config and static leases
// are written from the view, the leases it remembers are held to the log,
// and the process is supervised. Internal to net/.
//
// It runs as kumod's child (--keep-in-foreground, in a session of its own,
// started through process::spawn with a clean signal state), so kumod reaps
// it by pid wherever PID 1 does not. It outlives a kumod that dies (guests
// renew leases while the control plane restarts) and is adopted again
// through its pid file; whether it lives is read from /proc (a zombie is
// dead), and a pid is taken for ours only if one of its arguments is our
// --conf-file. An adopted one rereads the hosts, and is restarted when it
// started on another config than the current one (net/README.md).
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
  std::string conf_arg() const;  // --conf-file=<state dir>/dnsmasq.conf
  pid_t running_pid();  // the one its pid file names, if it lives and runs our config; else 0
  pid_t unnamed_pid() const;  // a live one that runs our config (found in /proc); 0 when none
  bool stop_pid(pid_t pid);   // SIGTERM, SIGKILL after 1 s; false when it outlives that by 5 s
  // `expected`: a change this pass made explains the stale leases found
  // (they are logged); otherwise they are drift (repairs).
  // Drops the leases the log does not back from the lease file, then starts.
  bool start(const desired_plane& desired, bool expected, std::vector<std::string>& repairs, std::string& error);
  bool restart(const desired_plane& desired, bool expected, std::vector<std::string>& repairs, std::string& error);
  // Makes a running dnsmasq forget the leases the log does not back;
  // `restarted`: it fell back to a restart on a rewritten lease file.
  bool release_stale_leases(const desired_plane& desired, bool expected, std::vector<std::string>& repairs,
                            std::string& error, bool& restarted);

  std::string dir_;
  pid_t child_ = 0;  // the dnsmasq this process started: ours to reap
  pid_t known_ = 0;  // the dnsmasq this process started or adopted last
  bool started_once_ = false;
  // When the leases were last held to the log; never: the first pass checks.
  std::chrono::steady_clock::time_point leases_checked_{};
};

}  // namespace kumo::net
