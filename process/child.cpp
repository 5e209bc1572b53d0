#include "process/child.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>

extern char** environ;

namespace kumo::process {
namespace {

constexpr size_t max_out = 1 << 20;
constexpr size_t max_err = 64 << 10;

std::string errno_text(int e) { return std::strerror(e); }

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// What the child does between clone() and exec, all prepared by the parent:
// the child shares the parent's memory (CLONE_VM, as vfork) and may only
// make system calls. Raw syscalls, because glibc's sigaction and sigprocmask
// refuse its two internal signals (32 and 33), and posix_spawn leaves those
// ignored in the child.
struct child_plan {
  const char* path = nullptr;
  char* const* argv = nullptr;
  char* const* envp = nullptr;
  int fds[3] = {-1, -1, -1};  // what becomes the child's 0, 1 and 2
  int max_fd = 1024;          // RLIMIT_NOFILE: where closing ends without close_range
  bool own_session = false;
  int exec_errno = 0;         // set by the child when exec failed (shared memory)
};

// The kernel's struct sigaction on x86_64 (SIG_DFL needs no restorer).
struct kernel_sigaction {
  void (*handler)(int);
  unsigned long flags;
  void (*restorer)();
  uint64_t mask;
};
constexpr int kernel_signals = 64;
constexpr size_t kernel_sigset_bytes = sizeof(uint64_t);

int child_main(void* arg) {
  auto* plan = static_cast<child_plan*>(arg);
  for (int sig = 1; sig <= kernel_signals; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    kernel_sigaction dfl{SIG_DFL, 0, nullptr, 0};
    ::syscall(SYS_rt_sigaction, sig, &dfl, nullptr, kernel_sigset_bytes);
  }
  const uint64_t none = 0;
  ::syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, nullptr, kernel_sigset_bytes);
  for (int target = 0; target < 3; ++target)
    if (::dup2(plan->fds[target], target) < 0) {
      plan->exec_errno = errno;
      ::_exit(127);
    }
  if (::syscall(SYS_close_range, 3u, ~0u, 0u) != 0)  // before Linux 5.9, or refused by a seccomp filter
    for (int fd = 3; fd < plan->max_fd; ++fd) ::close(fd);
  if (plan->own_session) ::setsid();
  ::execve(plan->path, plan->argv, plan->envp);
  plan->exec_errno = errno;
  ::_exit(127);
}

// A descriptor closed when it goes out of scope.
struct fd_holder {
  int fd = -1;
  explicit fd_holder(int f) : fd(f) {}
  ~fd_holder() {
    if (fd >= 0) ::close(fd);
  }
  fd_holder(const fd_holder&) = delete;
  fd_holder& operator=(const fd_holder&) = delete;
};

// argv0 as execvp would find it (looked up here: the child may not allocate).
std::string program_path(const std::string& argv0) {
  if (argv0.find('/') != std::string::npos) return argv0;
  const char* path = std::getenv("PATH");
  std::string dirs = path && *path ? path : "/usr/local/bin:/usr/bin:/bin";
  for (size_t at = 0; at <= dirs.size();) {
    const size_t end = std::min(dirs.find(':', at), dirs.size());
    auto candidate = (end > at ? dirs.substr(at, end - at) : std::string(".")) + "/" + argv0;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    at = end + 1;
  }
  return {};
}

// Starts argv with `fds` as its 0, 1 and 2 (the caller closes its own copies).
spawned start(const std::vector<std::string>& argv, const int (&fds)[3], bool own_session) {
  if (argv.empty()) return {-1, "nothing to run"};
  const auto path = program_path(argv[0]);
  if (path.empty()) return {-1, argv[0] + " could not be started: not found in PATH"};
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  child_plan plan;
  plan.path = path.c_str();
  plan.argv = args.data();
  plan.envp = environ;
  plan.own_session = own_session;
  if (rlimit r{}; ::getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur != RLIM_INFINITY)
    plan.max_fd = static_cast<int>(std::min<rlim_t>(r.rlim_cur, 1 << 20));
  // Sources above 2, so the child's dup2 onto 0..2 never overwrites a source
  // it still needs (a kumod started with stdio closed opens its files there).
  std::vector<std::unique_ptr<fd_holder>> moved;
  for (int i = 0; i < 3; ++i) {
    plan.fds[i] = fds[i];
    if (fds[i] >= 3) continue;
    moved.push_back(std::make_unique<fd_holder>(::fcntl(fds[i], F_DUPFD_CLOEXEC, 3)));
    if (moved.back()->fd < 0) return {-1, argv[0] + " could not be started: fcntl: " + errno_text(errno)};
    plan.fds[i] = moved.back()->fd;
  }
  // The child runs on a stack of its own; the parent waits (CLONE_VFORK)
  // until it has exec'd or exited, with every signal blocked, so no handler
  // of the parent can run in the child before it reset them.
  constexpr size_t stack_bytes = 64 << 10;
  auto stack = std::make_unique<char[]>(stack_bytes);
  const uint64_t all = ~uint64_t{0};
  uint64_t saved = 0;
  ::syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, &saved, kernel_sigset_bytes);
  const pid_t pid = ::clone(child_main, stack.get() + stack_bytes, CLONE_VM | CLONE_VFORK | SIGCHLD, &plan);
  const int clone_errno = errno;
  ::syscall(SYS_rt_sigprocmask, SIG_SETMASK, &saved, nullptr, kernel_sigset_bytes);
  if (pid < 0) return {-1, argv[0] + " could not be started: clone: " + errno_text(clone_errno)};
  if (plan.exec_errno != 0) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return {-1, argv[0] + " could not be started: " + errno_text(plan.exec_errno)};
  }
  return {pid, {}};
}

// An anonymous in-memory file the child writes its output to.
struct memory_file {
  int fd = -1;
  size_t read_at = 0;  // how much of it on_output has seen
  explicit memory_file(const char* name) : fd(::memfd_create(name, MFD_CLOEXEC)) {}
  ~memory_file() {
    if (fd >= 0) ::close(fd);
  }
  memory_file(const memory_file&) = delete;
  memory_file& operator=(const memory_file&) = delete;

  // What was written after `from`, at most `limit` bytes.
  std::string read_from(size_t from, size_t limit) const {
    std::string out;
    char buf[16384];
    while (out.size() < limit) {
      const auto n = ::pread(fd, buf, std::min(sizeof buf, limit - out.size()), static_cast<off_t>(from + out.size()));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }
  std::string unseen() {
    auto chunk = read_from(read_at, max_out);
    read_at += chunk.size();
    return chunk;
  }
};

int wait_blocking(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return -1;
  return status;
}

// Waits until the child ends or the deadline passes, calling `tick` at most
// every 100 ms meanwhile. Returns its wait status, or nothing on timeout. A
// pidfd turns readable when the child ends (Linux >= 5.3); without one, the
// child is polled with WNOHANG.
std::optional<int> wait_until(pid_t pid, std::chrono::steady_clock::time_point deadline,
                              const std::function<void()>& tick) {
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  for (;;) {
    int status = 0;
    const pid_t done = ::waitpid(pid, &status, WNOHANG);
    if (done == pid || (done < 0 && errno != EINTR)) {
      if (pidfd >= 0) ::close(pidfd);
      return done == pid ? status : -1;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      if (pidfd >= 0) ::close(pidfd);
      return std::nullopt;
    }
    const int wait_ms = static_cast<int>(std::min<long>(left.count(), 100));
    if (pidfd >= 0) {
      pollfd p{pidfd, POLLIN, 0};
      ::poll(&p, 1, wait_ms);
    } else {
      ::usleep(static_cast<useconds_t>(std::min(wait_ms, 20)) * 1000);
    }
    if (tick) tick();
  }
}

}  // namespace

spawned spawn(const std::vector<std::string>& argv, const spawn_options& options) {
  const auto out_path = options.output_file.empty() ? std::string("/dev/null") : options.output_file;
  fd_holder in(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  fd_holder out(::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (in.fd < 0) return {-1, "cannot open /dev/null: " + errno_text(errno)};
  if (out.fd < 0) return {-1, "cannot open " + out_path + ": " + errno_text(errno)};
  return start(argv, {in.fd, out.fd, out.fd}, options.own_session);
}

finished run(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
             const std::function<void(std::string_view)>& on_output) {
  finished f;
  memory_file out("kumo-child-stdout"), err("kumo-child-stderr");
  if (out.fd < 0 || err.fd < 0) {
    f.error = "memfd_create: " + errno_text(errno);
    return f;
  }
  fd_holder in(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (in.fd < 0) {
    f.error = "cannot open /dev/null: " + errno_text(errno);
    return f;
  }
  const auto child = start(argv, {in.fd, out.fd, err.fd}, false);
  if (!child) {
    f.error = child.error;
    return f;
  }
  f.started = true;
  auto report = [&] {
    if (!on_output) return;
    for (auto* file : {&out, &err})
      if (auto chunk = file->unseen(); !chunk.empty()) on_output(chunk);
  };
  auto status = wait_until(child.pid, std::chrono::steady_clock::now() + timeout, report);
  if (!status) {
    f.timed_out = true;
    ::kill(child.pid, SIGKILL);
    status = wait_blocking(child.pid);
  }
  report();
  if (*status >= 0 && WIFEXITED(*status)) f.exit_code = WEXITSTATUS(*status);
  if (*status >= 0 && WIFSIGNALED(*status)) f.signal = WTERMSIG(*status);
  f.out = out.read_from(0, max_out);
  f.err = err.read_from(0, max_err);
  return f;
}

std::string finished::failure(const std::vector<std::string>& argv) const {
  std::string cmd;
  for (const auto& a : argv) cmd += (cmd.empty() ? "" : " ") + a;
  if (!started) return error;
  std::string why = timed_out          ? "did not finish in time"
                    : signal != 0      ? std::string("was ended by ") + ::strsignal(signal)
                                       : "failed (exit " + std::to_string(exit_code) + ")";
  auto said = err.empty() ? out : err;
  if (said.size() > 300) said.resize(300);
  while (!said.empty() && (said.back() == '\n' || said.back() == '\r')) said.pop_back();
  return cmd + " " + why + (said.empty() ? "" : ": " + said);
}

bool alive(pid_t pid) {
  if (pid <= 0) return false;
  const auto stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  const auto paren = stat.rfind(')');  // "pid (comm) S ...": comm may hold anything
  if (paren == std::string::npos || paren + 2 >= stat.size()) return false;
  const char state = stat[paren + 2];
  return state != 'Z' && state != 'X' && state != 'x';
}

std::vector<std::string> arguments(pid_t pid) {
  const auto text = read_file("/proc/" + std::to_string(pid) + "/cmdline");
  std::vector<std::string> out;
  for (size_t at = 0; at < text.size();) {
    const size_t end = std::min(text.find('\0', at), text.size());
    out.push_back(text.substr(at, end - at));
    at = end + 1;
  }
  return out;
}

void reap(pid_t pid) {
  if (pid <= 0) return;
  int status = 0;
  while (::waitpid(pid, &status, WNOHANG) < 0 && errno == EINTR) {
  }
}

}  // namespace kumo::process
