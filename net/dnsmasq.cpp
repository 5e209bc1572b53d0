#include "net/dnsmasq.h"

#include <fcntl.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

namespace kumo::net {
namespace {

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

// True once `pid` no longer runs: no such process, or a zombie (dead; only
// its parent's wait() is missing).
bool gone(int pid) {
  if (::kill(pid, 0) != 0) return errno == ESRCH;
  const auto stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  const auto paren = stat.rfind(')');  // "pid (comm) S ...": comm may hold anything
  return paren != std::string::npos && paren + 2 < stat.size() && (stat[paren + 2] == 'Z' || stat[paren + 2] == 'X');
}

// Polls until `pid` is gone or `limit` has passed.
bool gone_within(int pid, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!gone(pid)) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

}  // namespace

int dnsmasq_process::running_pid() const {
  const auto text = read_file(dir_ + "/dnsmasq.pid");
  const int pid = std::atoi(text.c_str());
  if (pid <= 0 || ::kill(pid, 0) != 0) return 0;
  // The pid could have been reused: it is ours only if it runs our config.
  auto cmdline = read_file("/proc/" + std::to_string(pid) + "/cmdline");
  for (auto& c : cmdline)
    if (c == '\0') c = ' ';
  return cmdline.find("dnsmasq") != std::string::npos && cmdline.find(dir_ + "/dnsmasq.conf") != std::string::npos
             ? pid
             : 0;
}

bool dnsmasq_process::start(std::string& error) {
  const auto conf = "--conf-file=" + dir_ + "/dnsmasq.conf";
  const auto pidfile = "--pid-file=" + dir_ + "/dnsmasq.pid";
  const auto log = dir_ + "/dnsmasq.err";
  pid_t child = ::fork();
  if (child < 0) {
    error = std::string("cannot fork dnsmasq: ") + std::strerror(errno);
    return false;
  }
  if (child == 0) {
    // dnsmasq forks itself into the background; this process only reports
    // whether it started. Its own errors go to dnsmasq.err.
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0) {
      ::dup2(fd, 2);
      ::dup2(fd, 1);
    }
    ::execlp("dnsmasq", "dnsmasq", conf.c_str(), pidfile.c_str(), "--user=root", "--group=root",
             static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    error = "dnsmasq did not start (exit " + std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1) +
            "): " + read_file(log);
    while (!error.empty() && error.back() == '\n') error.pop_back();
    return false;
  }
  started_once_ = true;
  return true;
}

bool dnsmasq_process::reconcile(const desired_plane& desired, std::vector<std::string>& repairs, std::string& error) {
  auto stopped = [&] {
    if (!stop()) error = "dnsmasq would not stop (it outlived SIGKILL; see the log)";
    return error.empty();
  };
  if (desired.segments == 0) return stopped();  // nothing to serve
  const bool conf_changed = write_if_changed(dir_ + "/dnsmasq.conf", desired.dnsmasq_config, error);
  if (!error.empty()) return false;
  const bool hosts_changed = write_if_changed(dir_ + "/hosts", desired.dnsmasq_hosts, error);
  if (!error.empty()) return false;
  const int pid = running_pid();
  if (!pid) {
    // A pid file left behind means it died (stop() removes it).
    const bool died = started_once_ || !read_file(dir_ + "/dnsmasq.pid").empty();
    if (!start(error)) return false;
    if (died)
      repairs.push_back("restarted dnsmasq (it was not running)");
    else
      spdlog::info("net: started dnsmasq ({} segment(s))", desired.segments);
  } else if (conf_changed) {
    if (!stopped() || !start(error)) return false;
    spdlog::info("net: restarted dnsmasq for the new segment list");
  } else if (hosts_changed) {
    ::kill(pid, SIGHUP);  // rereads dhcp-hostsfile
    spdlog::info("net: dnsmasq reloads its static leases");
  }
  return true;
}

bool dnsmasq_process::stop() {
  const int pid = running_pid();
  if (!pid) return true;
  ::kill(pid, SIGTERM);
  if (!gone_within(pid, std::chrono::seconds(1))) {
    spdlog::warn("net: dnsmasq (pid {}) outlived SIGTERM by 1 s; sending SIGKILL", pid);
    ::kill(pid, SIGKILL);
    if (!gone_within(pid, std::chrono::seconds(5))) {
      // Its pid file stays: the next reconcile still sees it running.
      spdlog::error("net: dnsmasq (pid {}) still exists 5 s after SIGKILL; left {}/dnsmasq.pid in place", pid, dir_);
      return false;
    }
  }
  ::unlink((dir_ + "/dnsmasq.pid").c_str());
  spdlog::info("net: stopped dnsmasq (pid {})", pid);
  return true;
}

}  // namespace kumo::net
