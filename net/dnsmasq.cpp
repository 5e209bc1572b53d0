#include "net/dnsmasq.h"

#include "net/dhcp_leases.h"
#include "process/child.h"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <array>
#include <filesystem>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

namespace kumo::net {
namespace {

using std::chrono::steady_clock;
using namespace std::chrono_literals;

// The leases are held to the log on every hosts change and at least this often.
constexpr auto lease_recheck = 30s;
// More stale leases than this at once (a mass termination): one restart on a
// rewritten lease file is quicker than a dhcp_release process per lease.
constexpr size_t max_releases = 16;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Whether the file holds exactly `text`, compared a block at a time (the
// hosts file of 10,000 NICs is read on every pass; no copy of it is made).
bool holds(const std::string& path, const std::string& text) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::array<char, 16384> block;
  size_t at = 0;
  while (in.read(block.data(), block.size()) || in.gcount() > 0) {
    const auto n = static_cast<size_t>(in.gcount());
    if (at + n > text.size() || std::memcmp(block.data(), text.data() + at, n) != 0) return false;
    at += n;
  }
  return at == text.size();
}

// Writes `text` unless the file already holds it; true when it changed.
bool write_if_changed(const std::string& path, const std::string& text, std::string& error) {
  if (holds(path, text)) return false;
  const auto tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out.flush()) {
      error = "cannot write " + tmp + ": " + std::strerror(errno);
      return false;
    }
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) error = "cannot replace " + path + ": " + std::strerror(errno);
  return error.empty();
}

// Polls until `done()` or `limit` has passed.
template <class Done>
bool within(std::chrono::milliseconds limit, Done done) {
  const auto deadline = steady_clock::now() + limit;
  while (!done()) {
    if (steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

// A stale lease taken back is a repair when nothing kumo changed in this
// pass explains it (found after a restart of kumod, or drift); after a NIC
// left the hosts file it is the expected consequence, and only logged.
void report(const std::vector<stale_lease>& stale, const char* what, bool expected, std::vector<std::string>& repairs) {
  for (const auto& s : stale) {
    auto sentence = std::string(what) + " the DHCP lease " + s.describe();
    spdlog::info("net: {}", sentence);
    if (!expected) repairs.push_back(std::move(sentence));
  }
}

// The lease file as one consistent read: dnsmasq truncates and rewrites it in
// place on every grant and renewal, so read until two reads agree.
std::string read_leases(const std::string& path) {
  auto text = read_file(path);
  for (int tries = 0; tries < 5; ++tries) {
    auto again = read_file(path);
    if (again == text) break;
    text = std::move(again);
  }
  return text;
}

// Whether the lease file no longer holds any of `stale` (dnsmasq rewrites it
// as soon as it has handled a release).
bool forgotten(const std::string& lease_file, const std::vector<stale_lease>& stale) {
  const auto text = read_leases(lease_file);
  for (const auto& s : stale)
    if (text.find(" " + s.lease.mac + " " + s.lease.ip + " ") != std::string::npos) return false;
  return true;
}

// Whether `pid` is a dnsmasq running `conf_arg`: one argument is exactly it
// (a pid may have been reused by anything) and one names dnsmasq.
bool runs_config(pid_t pid, const std::string& conf_arg) {
  bool conf = false, named = false;
  for (const auto& a : process::arguments(pid)) {
    conf = conf || a == conf_arg;
    named = named || a == "dnsmasq" || (a.size() > 8 && a.compare(a.size() - 8, 8, "/dnsmasq") == 0);
  }
  return conf && named;
}

}  // namespace

std::string dnsmasq_process::conf_arg() const { return "--conf-file=" + dir_ + "/dnsmasq.conf"; }

pid_t dnsmasq_process::running_pid() {
  if (child_ && !process::alive(child_)) {
    process::reap(child_);  // ours died: collect it, so no zombie stays behind
    child_ = 0;
  }
  const pid_t pid = std::atoi(read_file(dir_ + "/dnsmasq.pid").c_str());
  return pid > 0 && process::alive(pid) && runs_config(pid, conf_arg()) ? pid : 0;
}

pid_t dnsmasq_process::unnamed_pid() const {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const auto name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    const pid_t pid = std::atoi(name.c_str());
    if (pid != ::getpid() && process::alive(pid) && runs_config(pid, conf_arg())) return pid;
  }
  return 0;
}

bool dnsmasq_process::start(const desired_plane& desired, bool expected, std::vector<std::string>& repairs,
                            std::string& error) {
  // One that runs our config while its pid file does not name it (kumod died
  // before it wrote the file, or the file went): two would both answer.
  if (const pid_t stray = unnamed_pid()) {
    if (!stop_pid(stray)) {
      error = "dnsmasq (pid " + std::to_string(stray) + ") runs our config unnamed and would not stop";
      return false;
    }
    repairs.push_back("stopped dnsmasq (pid " + std::to_string(stray) + "): it ran our config without its pid file");
  }
  // None runs, so the lease file is ours to rewrite: dnsmasq loads it at start.
  const auto lease_file = dir_ + "/leases";
  auto leases = check_leases(read_file(lease_file), desired);
  if (!leases.stale.empty()) {
    write_if_changed(lease_file, leases.backed_file, error);
    if (!error.empty()) return false;
    report(leases.stale, "dropped from dnsmasq's lease file", expected, repairs);
  }
  leases_checked_ = steady_clock::now();

  // What it starts with: a kumod that adopts it later tells from this
  // whether it runs the current segment list.
  write_if_changed(dir_ + "/dnsmasq.conf.started", desired.dnsmasq_config, error);
  if (!error.empty()) return false;
  const auto pid_file = dir_ + "/dnsmasq.pid";
  const auto err_file = dir_ + "/dnsmasq.err";
  ::unlink(pid_file.c_str());  // a dead one's; the new one names itself there once it serves
  auto child = process::spawn({"dnsmasq", "--keep-in-foreground", conf_arg(), "--pid-file=" + pid_file,
                               "--user=root", "--group=root"},
                              {err_file, true});
  if (!child) {
    error = child.error;
    return false;
  }
  // dnsmasq writes its pid file once its sockets are bound, and exits at once
  // on a bad config or a missing interface.
  bool exited = false;
  const bool serving = within(10s, [&] {
    exited = !process::alive(child.pid);
    return exited || std::atoi(read_file(pid_file).c_str()) == child.pid;
  });
  if (!serving || exited) {
    if (!exited) ::kill(child.pid, SIGKILL);
    within(5s, [&] { return !process::alive(child.pid); });
    process::reap(child.pid);
    auto said = read_file(err_file);
    while (!said.empty() && said.back() == '\n') said.pop_back();
    error = exited ? "dnsmasq did not start: " + said : "dnsmasq did not write its pid file within 10 s; killed it";
    return false;
  }
  child_ = known_ = child.pid;
  started_once_ = true;
  return true;
}

bool dnsmasq_process::restart(const desired_plane& desired, bool expected, std::vector<std::string>& repairs,
                              std::string& error) {
  if (!stop()) {
    error = "dnsmasq would not stop (it outlived SIGKILL; see the log)";
    return false;
  }
  return start(desired, expected, repairs, error);
}

bool dnsmasq_process::release_stale_leases(const desired_plane& desired, bool expected,
                                           std::vector<std::string>& repairs, std::string& error, bool& restarted) {
  const auto lease_file = dir_ + "/leases";
  // Unreadable lines are left alone while dnsmasq runs (they may be half
  // written); a start drops them.
  auto leases = check_leases(read_leases(lease_file), desired);
  leases_checked_ = steady_clock::now();
  if (leases.stale.empty()) return true;
  // dhcp_release (Debian's dnsmasq-utils) sends dnsmasq a DHCPRELEASE from
  // the lease's bridge, as the client would: dnsmasq drops it from memory
  // and file and every other guest's lease stays as it is.
  bool by_release = leases.stale.size() <= max_releases;
  for (const auto& s : leases.stale) by_release = by_release && !s.bridge.empty();
  for (const auto& s : leases.stale) {
    if (!by_release) break;
    std::vector<std::string> argv{"dhcp_release", s.bridge, s.lease.ip, s.lease.mac};
    if (!s.lease.client_id.empty()) argv.push_back(s.lease.client_id);
    if (auto r = process::run(argv, 2s); !r.ok()) {
      spdlog::warn("net: {}; restarting dnsmasq on a rewritten lease file instead", r.failure(argv));
      by_release = false;
    }
  }
  if (by_release && within(1s, [&] { return forgotten(lease_file, leases.stale); })) {
    report(leases.stale, "released", expected, repairs);
    return true;
  }
  if (by_release) spdlog::warn("net: dnsmasq kept a released lease for 1 s; restarting it on a rewritten lease file");
  restarted = true;
  if (!restart(desired, expected, repairs, error)) return false;
  spdlog::info("net: restarted dnsmasq to drop {} stale lease(s)", leases.stale.size());
  return true;
}

bool dnsmasq_process::reconcile(const desired_plane& desired, std::vector<std::string>& repairs, std::string& error) {
  if (desired.segments == 0) {  // nothing to serve
    if (!stop()) error = "dnsmasq would not stop (it outlived SIGKILL; see the log)";
    return error.empty();
  }
  const bool conf_changed = write_if_changed(dir_ + "/dnsmasq.conf", desired.dnsmasq_config, error);
  if (!error.empty()) return false;
  const bool hosts_changed = write_if_changed(dir_ + "/hosts", desired.dnsmasq_hosts, error);
  if (!error.empty()) return false;
  const bool changed = conf_changed || hosts_changed;
  const pid_t pid = running_pid();
  if (!pid) {
    // A pid file left behind means it died (stop() removes it).
    const bool died = started_once_ || !read_file(dir_ + "/dnsmasq.pid").empty();
    if (!start(desired, changed, repairs, error)) return false;
    if (died)
      repairs.push_back("restarted dnsmasq (it was not running)");
    else
      spdlog::info("net: started dnsmasq ({} segment(s))", desired.segments);
    return true;
  }
  // One this process did not start (kumod restarted): kumod may have died
  // after writing the config or hosts and before telling it.
  const bool adopting = pid != known_;
  known_ = pid;
  const bool older_config = adopting && read_file(dir_ + "/dnsmasq.conf.started") != desired.dnsmasq_config;
  if (conf_changed || older_config) {
    if (!restart(desired, conf_changed, repairs, error)) return false;
    if (older_config && !conf_changed)
      repairs.push_back("restarted dnsmasq (pid " + std::to_string(pid) + "): it ran an older segment list");
    spdlog::info("net: restarted dnsmasq for the new segment list");
    return true;
  }
  // Stale leases go before dnsmasq learns the new hosts, so no address is
  // known for two MACs at once.
  const bool never_checked = leases_checked_ == steady_clock::time_point{};
  if (hosts_changed || adopting || never_checked || steady_clock::now() - leases_checked_ >= lease_recheck) {
    bool restarted = false;
    if (!release_stale_leases(desired, hosts_changed, repairs, error, restarted)) return false;
    if (restarted) return true;  // it read the hosts file as it started
  }
  if (hosts_changed || adopting) {
    ::kill(pid, SIGHUP);  // rereads dhcp-hostsfile
    spdlog::info("net: dnsmasq reloads its static leases");
  }
  return true;
}

bool dnsmasq_process::stop() {
  const pid_t pid = running_pid();
  if (!pid) return true;
  if (!stop_pid(pid)) return false;  // its pid file stays: the next reconcile still sees it running
  ::unlink((dir_ + "/dnsmasq.pid").c_str());
  spdlog::info("net: stopped dnsmasq (pid {})", pid);
  return true;
}

bool dnsmasq_process::stop_pid(pid_t pid) {
  ::kill(pid, SIGTERM);
  if (!within(1s, [&] { return !process::alive(pid); })) {
    spdlog::warn("net: dnsmasq (pid {}) outlived SIGTERM by 1 s; sending SIGKILL", pid);
    ::kill(pid, SIGKILL);
    if (!within(5s, [&] { return !process::alive(pid); })) {
      spdlog::error("net: dnsmasq (pid {}) still exists 5 s after SIGKILL", pid);
      return false;
    }
  }
  if (pid == child_) {
    process::reap(pid);
    child_ = 0;
  }
  return true;
}

}  // namespace kumo::net
