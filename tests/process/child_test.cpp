// process::spawn and process::run: what a child of kumod starts with (no
// blocked or ignored signal, no inherited descriptor, output in a file), how
// it is waited for, and that reaping takes only the pid asked for.
#include "process/child.h"

#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace kumo::process {
namespace {

using namespace std::chrono_literals;

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The value of a "Name:\tvalue" line of /proc/<pid>/status text.
std::string status_field(const std::string& status, const std::string& name) {
  auto at = status.find("\n" + name + ":\t");
  if (at == std::string::npos) return "(no " + name + ")";
  at += name.size() + 3;
  return status.substr(at, status.find('\n', at) - at);
}

// Polls a condition the kernel settles on its own (a child ending).
template <class F>
bool eventually(F f) {
  for (int i = 0; i < 500; ++i) {
    if (f()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return f();
}

// The parent's signal state as kumod's: SIGTERM and SIGINT blocked (for
// sigwait), SIGPIPE and SIGHUP ignored; put back at the end.
class KumodSignalState : public ::testing::Test {
 protected:
  void SetUp() override {
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    ASSERT_EQ(pthread_sigmask(SIG_BLOCK, &stop, &saved_mask_), 0);
    saved_pipe_ = ::signal(SIGPIPE, SIG_IGN);
    saved_hup_ = ::signal(SIGHUP, SIG_IGN);
  }
  void TearDown() override {
    pthread_sigmask(SIG_SETMASK, &saved_mask_, nullptr);
    ::signal(SIGPIPE, saved_pipe_);
    ::signal(SIGHUP, saved_hup_);
  }
  sigset_t saved_mask_{};
  sighandler_t saved_pipe_ = SIG_DFL, saved_hup_ = SIG_DFL;
};

TEST_F(KumodSignalState, ARunChildHasNoBlockedAndNoIgnoredSignal) {
  const auto parent = read_file("/proc/self/status");
  ASSERT_NE(status_field(parent, "SigBlk"), "0000000000000000") << "the parent's mask is set";
  ASSERT_NE(status_field(parent, "SigIgn"), "0000000000000000");
  auto r = run({"cat", "/proc/self/status"}, 10s);
  ASSERT_TRUE(r.ok()) << r.failure({"cat"});
  EXPECT_EQ(status_field(r.out, "SigBlk"), "0000000000000000") << r.out;
  EXPECT_EQ(status_field(r.out, "SigIgn"), "0000000000000000") << r.out;
}

TEST_F(KumodSignalState, ASpawnedDaemonHasNoBlockedAndNoIgnoredSignalAndItsOwnSession) {
  const auto out = std::filesystem::temp_directory_path() / ("kumo-child-" + std::to_string(::getpid()));
  auto child = spawn({"sh", "-c", "cat /proc/$$/status; exec sleep 30"}, {out.string(), true});
  ASSERT_TRUE(child) << child.error;
  ASSERT_TRUE(eventually([&] { return read_file(out).find("SigIgn") != std::string::npos; }));
  const auto status = read_file(out);
  EXPECT_EQ(status_field(status, "SigBlk"), "0000000000000000") << status;
  // (sh itself ignores nothing it was not told to.)
  EXPECT_EQ(status_field(status, "SigIgn"), "0000000000000000") << status;
  // setsid(): its session is its own pid (field 6 of stat).
  const auto stat = read_file("/proc/" + std::to_string(child.pid) + "/stat");
  std::istringstream rest(stat.substr(stat.rfind(')') + 2));
  std::string state, ppid, pgrp, session;
  rest >> state >> ppid >> pgrp >> session;
  EXPECT_EQ(session, std::to_string(child.pid));
  // SIGTERM, blocked in this parent, ends it.
  ::kill(child.pid, SIGTERM);
  EXPECT_TRUE(eventually([&] { return !alive(child.pid); }));
  reap(child.pid);
  std::filesystem::remove(out);
}

TEST(Child, KeepsNoDescriptorOfItsParent) {
  const int fd = ::open("/dev/null", O_RDONLY);  // no O_CLOEXEC on purpose
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::dup2(fd, 77), 77);
  auto r = run({"sh", "-c", "ls /proc/$$/fd"}, 10s);
  ::close(77);
  ::close(fd);
  ASSERT_TRUE(r.ok()) << r.failure({"ls"});
  std::istringstream fds(r.out);
  for (std::string n; fds >> n;) EXPECT_NE(n, "77") << r.out;
  EXPECT_NE(r.out.find('0'), std::string::npos) << r.out;  // the listing is real
}

TEST(Child, RunSeparatesOutputReportsProgressAndTheExitCode) {
  std::string seen;
  const std::vector<std::string> argv{"sh", "-c", "echo one; echo oops >&2; sleep 0.3; echo two; exit 3"};
  auto r = run(argv, 10s, [&](std::string_view chunk) { seen += chunk; });
  EXPECT_TRUE(r.started);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.out, "one\ntwo\n");
  EXPECT_EQ(r.err, "oops\n");
  EXPECT_NE(seen.find("one\n"), std::string::npos);
  EXPECT_NE(seen.find("two\n"), std::string::npos);
  EXPECT_NE(seen.find("oops\n"), std::string::npos);
  EXPECT_NE(r.failure(argv).find("failed (exit 3): oops"), std::string::npos) << r.failure(argv);
}

TEST(Child, RunKillsAChildThatOutlivesItsTimeout) {
  const auto started = std::chrono::steady_clock::now();
  auto r = run({"sleep", "30"}, 200ms);
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.signal, SIGKILL);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 10s);
  EXPECT_NE(r.failure({"sleep", "30"}).find("did not finish in time"), std::string::npos);
}

TEST(Child, AMissingProgramIsReportedNotRun) {
  auto r = run({"kumo-no-such-program"}, 10s);
  EXPECT_FALSE(r.started);
  EXPECT_NE(r.error.find("kumo-no-such-program could not be started"), std::string::npos) << r.error;
  EXPECT_FALSE(spawn({"kumo-no-such-program"}));
}

TEST(Child, AZombieIsDeadAndReapTakesOnlyThePidAskedFor) {
  auto a = spawn({"true"});
  auto b = spawn({"true"});
  ASSERT_TRUE(a && b);
  // Both end at once, and stay zombies until reaped: kill(pid, 0) would
  // still succeed on them, alive() does not.
  ASSERT_TRUE(eventually([&] { return !alive(a.pid) && !alive(b.pid); }));
  EXPECT_EQ(::kill(a.pid, 0), 0) << "a zombie is still a pid";
  reap(a.pid);
  EXPECT_FALSE(std::filesystem::exists("/proc/" + std::to_string(a.pid)));
  EXPECT_TRUE(std::filesystem::exists("/proc/" + std::to_string(b.pid))) << "b was reaped too";
  reap(b.pid);
  EXPECT_FALSE(std::filesystem::exists("/proc/" + std::to_string(b.pid)));
  EXPECT_TRUE(alive(::getpid()));
  const auto self = arguments(::getpid());
  ASSERT_FALSE(self.empty());
  EXPECT_NE(self[0].find("process_tests"), std::string::npos);
  EXPECT_TRUE(arguments(a.pid).empty()) << "gone: no arguments";
}

}  // namespace
}  // namespace kumo::process
