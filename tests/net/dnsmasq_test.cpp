// dnsmasq_process::stop(): the pid file goes only once the process is gone.
// The stand-ins for dnsmasq are shells whose command line names the state
// directory's dnsmasq.conf, as the real one's does (that is how
// dnsmasq_process tells its dnsmasq from a reused pid); no root needed.
#include "net/dnsmasq.h"
#include "tests/support/subprocess.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <fstream>
#include <memory>

namespace kumo::net {
namespace {

using namespace std::chrono_literals;

// A running stand-in; the pid file names it when `ours`.
std::unique_ptr<test::subprocess> stand_in(const std::string& dir, bool ignores_sigterm, bool ours = true) {
  auto p = std::make_unique<test::subprocess>(std::vector<std::string>{
      "/bin/sh", "-c", std::string(ignores_sigterm ? "trap '' TERM; " : "") + "echo ready; while :; do sleep 0.05; done",
      "dnsmasq", "--conf-file=" + (ours ? dir : std::string("/elsewhere")) + "/dnsmasq.conf"});
  EXPECT_TRUE(p->wait_for("ready", 10s)) << p->transcript();
  std::ofstream(dir + "/dnsmasq.pid") << p->pid() << "\n";
  return p;
}

// 'Z' once it died (our child, not reaped yet), 'S'/'R' while it runs.
char state_of(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto paren = stat.rfind(')');
  return paren == std::string::npos || paren + 2 >= stat.size() ? '?' : stat[paren + 2];
}

double seconds_of(const std::function<void()>& f) {
  const auto t = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

TEST(Dnsmasq, StopEndsItWithSigtermAndThenRemovesThePidFile) {
  test::temp_dir dir;
  auto d = stand_in(dir.path(), false);
  dnsmasq_process p(dir.path());
  bool stopped = false;
  EXPECT_LT(seconds_of([&] { stopped = p.stop(); }), 1.0);
  EXPECT_TRUE(stopped);
  EXPECT_EQ(state_of(d->pid()), 'Z') << "stop() returned while it still ran";
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/dnsmasq.pid"));
  EXPECT_EQ(d->wait(), 128 + SIGTERM);
}

TEST(Dnsmasq, StopKillsOneThatOutlivesSigtermBeforeItRemovesThePidFile) {
  test::temp_dir dir;
  auto d = stand_in(dir.path(), true);
  dnsmasq_process p(dir.path());
  bool stopped = false;
  EXPECT_GE(seconds_of([&] { stopped = p.stop(); }), 1.0) << "SIGTERM gets a second";
  EXPECT_TRUE(stopped);
  const bool dead = state_of(d->pid()) == 'Z';
  EXPECT_TRUE(dead) << "stop() returned while it still ran";
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/dnsmasq.pid"));
  if (!dead) d->signal(SIGKILL);  // the test fails above rather than hang below
  EXPECT_EQ(d->wait(), 128 + SIGKILL);
}

TEST(Dnsmasq, StopLeavesAProcessThatIsNotOursAlone) {
  test::temp_dir dir;
  auto other = stand_in(dir.path(), false, false);  // a reused pid: another config
  dnsmasq_process p(dir.path());
  EXPECT_TRUE(p.stop()) << "none of ours runs";
  EXPECT_NE(state_of(other->pid()), 'Z');
  EXPECT_TRUE(std::filesystem::exists(dir.path() + "/dnsmasq.pid"));
}

}  // namespace
}  // namespace kumo::net
