// Child processes of kumod (dnsmasq, qemu-img, dhcp_release, ...): the one
// place that starts, waits for and reaps them. A leaf library used by net/
// and actors/.
//
// Why one place: kumod blocks SIGTERM and SIGINT in every thread (main()
// waits for them with sigwait) and a signal mask survives fork and exec, so a
// child started any other way never sees SIGTERM. A child here gets an empty
// signal mask and every signal at its default disposition (SIGPIPE too),
// stdin from /dev/null, its output in a file (never a pipe that dies with
// kumod), and none of kumod's other file descriptors (a dnsmasq that outlives
// kumod must not keep its API socket open). It is started like posix_spawn
// does it (clone with CLONE_VM | CLONE_VFORK), so a large kumod copies no
// page tables per child, but by hand: posix_spawn leaves glibc's two
// internal signals (32, 33) ignored in the child.
//
// Reaping is by pid only, never waitpid(-1): other code waits for its own
// children. Whether a process lives is read from /proc/<pid>/stat, where a
// zombie ('Z') is dead: kill(pid, 0) succeeds on a zombie, which where PID 1
// never reaps orphans stays one for ever.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace kumo::process {

struct spawn_options {
  std::string output_file;   // stdout and stderr, truncated first; empty: /dev/null
  bool own_session = false;  // setsid(): a daemon that outlives kumod takes no signal meant for kumod's terminal
};

struct spawned {
  pid_t pid = -1;
  std::string error;  // why it could not start, when pid <= 0
  explicit operator bool() const { return pid > 0; }
};

// Starts argv[0] (looked up in PATH) as a child of this process. The caller
// reaps it: wait() or, for one left running, reap() once it ended.
spawned spawn(const std::vector<std::string>& argv, const spawn_options& options = {});

struct finished {
  bool started = false;    // false: `error` says why it could not run
  bool timed_out = false;  // killed (SIGKILL) after the timeout
  int exit_code = -1;      // when it exited; -1 when a signal ended it
  int signal = 0;          // the signal that ended it, or 0
  std::string out;         // its stdout (the first 1 MiB)
  std::string err;         // its stderr (the first 64 KiB)
  std::string error;
  bool ok() const { return started && !timed_out && exit_code == 0; }
  // "qemu-img create ... failed (exit 1): <stderr, or stdout>" and the like.
  std::string failure(const std::vector<std::string>& argv) const;
};

// Runs argv to the end (SIGKILL after `timeout`). Its stdout and stderr go to
// two anonymous in-memory files; `on_output`, when given, sees what either
// wrote so far at most every 100 ms while it runs (progress lines).
finished run(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
             const std::function<void(std::string_view)>& on_output = {});

// True while `pid` is a process that has not ended: /proc/<pid>/stat exists
// and its state is neither zombie nor dead.
bool alive(pid_t pid);

// Its arguments, argv[0] first; empty when gone (or a zombie).
std::vector<std::string> arguments(pid_t pid);

// Collects the exit status of `pid` if it is an ended child of this process;
// never blocks, never touches other children.
void reap(pid_t pid);

}  // namespace kumo::process
