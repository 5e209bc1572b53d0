// The real kumod binary: first start, admin credentials (read back by the real
// aws CLI), the data dir lock, SIGTERM, restart, bad flags.
#include "../support/subprocess.h"

#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sys/stat.h>

using namespace kumo;

namespace {

struct running_kumod {
  explicit running_kumod(const std::string& data_dir)
      : proc({test::binary("kumod"), "--data-dir=" + data_dir, "--listen=127.0.0.1:0",
              "--hypervisor=fake"}) {
    auto ready = proc.wait_for("kumod ready", std::chrono::seconds(30));
    if (!ready) throw std::runtime_error("kumod did not become ready:\n" + proc.transcript());
    std::smatch m;
    std::regex_search(*ready, m, std::regex(R"(http://127\.0\.0\.1:(\d+))"));
    port = static_cast<uint16_t>(std::stoi(m[1]));
  }
  int stop() {
    proc.signal(SIGTERM);
    return proc.wait();
  }
  test::subprocess proc;
  uint16_t port = 0;
};

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), {}};
}

std::string aws_configure_get(const std::string& creds, const std::string& key) {
  auto r = test::run({"/usr/bin/env", "AWS_SHARED_CREDENTIALS_FILE=" + creds, "AWS_CONFIG_FILE=/dev/null",
                      "/usr/bin/aws", "configure", "get", key, "--profile", "kumo"});
  auto out = r.output;
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return r.exit_code == 0 ? out : "aws failed: " + r.output;
}

size_t count_events(const std::string& data_dir, const std::string& type = "") {
  std::vector<std::string> argv{test::binary("kumoctl"), "--data-dir=" + data_dir, "events", "--json"};
  if (!type.empty()) argv.push_back("--type=" + type);
  auto r = test::run(argv);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  return static_cast<size_t>(std::count(r.output.begin(), r.output.end(), '\n'));
}

}  // namespace

TEST(Kumod, FirstStartCreatesAdminWhoseCredentialsTheAwsCliReads) {
  test::temp_dir dir;
  running_kumod k(dir.path());
  auto creds = dir.path() + "/admin-credentials";
  struct stat st{};
  ASSERT_EQ(stat(creds.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  auto text = slurp(creds);
  std::smatch m;
  ASSERT_TRUE(std::regex_search(text, m, std::regex(R"(aws_access_key_id = (AKIA[A-Z2-7]{16}))"))) << text;
  std::string key_id = m[1];
  ASSERT_TRUE(std::regex_search(text, m, std::regex(R"(aws_secret_access_key = (\S{40}))"))) << text;
  std::string secret = m[1];
  EXPECT_NE(text.find("[kumo]"), std::string::npos);
  EXPECT_EQ(aws_configure_get(creds, "aws_access_key_id"), key_id);
  EXPECT_EQ(aws_configure_get(creds, "aws_secret_access_key"), secret);

  // The key is the admin's, in the log (secret redacted on the way out).
  auto events = test::run({test::binary("kumoctl"), "--data-dir=" + dir.path(), "events"});
  EXPECT_NE(events.output.find("account_created"), std::string::npos) << events.output;
  EXPECT_NE(events.output.find(key_id), std::string::npos) << events.output;
  EXPECT_EQ(events.output.find(secret), std::string::npos) << "secret leaked: " << events.output;

  auto health = test::http_get(k.port, "/healthz");
  EXPECT_EQ(health.status, 200);
  EXPECT_NE(health.body.find("\"region\":\"kumo-1\""), std::string::npos) << health.body;
  // Nothing but the readiness probe is served unsigned.
  auto other = test::http_get(k.port, "/?Action=DescribeRegions&Version=2016-11-15");
  EXPECT_EQ(other.status, 401);
  EXPECT_NE(other.body.find("<Code>MissingAuthenticationToken</Code>"), std::string::npos) << other.body;
  EXPECT_NE(other.body.find("<RequestID>"), std::string::npos) << other.body;

  EXPECT_EQ(k.stop(), 0) << k.proc.transcript();
  EXPECT_NE(k.proc.transcript().find("stopped cleanly"), std::string::npos);
  // The log holds secrets: nothing in the data dir is open to group or others.
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir.path())) {
    struct stat fs{};
    ASSERT_EQ(stat(entry.path().c_str(), &fs), 0);
    EXPECT_EQ(fs.st_mode & 077, 0u) << entry.path() << " is readable by others";
  }
  struct stat ds{};
  ASSERT_EQ(stat(dir.path().c_str(), &ds), 0);
  EXPECT_EQ(ds.st_mode & 077, 0u);
}

TEST(Kumod, SecondKumodOnTheSameDataDirIsRefusedClearly) {
  test::temp_dir dir;
  running_kumod first(dir.path());
  auto second = test::run({test::binary("kumod"), "--data-dir=" + dir.path(), "--listen=127.0.0.1:0",
                           "--hypervisor=fake"});
  EXPECT_EQ(second.exit_code, 1);
  EXPECT_NE(second.output.find("is already in use by another kumod (pid " +
                               std::to_string(first.proc.pid()) + ")"),
            std::string::npos)
      << second.output;
  // Nothing corrupted, and the first one still serves.
  EXPECT_EQ(test::http_get(first.port, "/healthz").status, 200);
  auto verify = test::run({test::binary("kumoctl"), "--data-dir=" + dir.path(), "verify"});
  EXPECT_EQ(verify.exit_code, 0) << verify.output;
  EXPECT_EQ(first.stop(), 0);
}

TEST(Kumod, RestartKeepsTheAdminAndReissuesALostCredentialsFile) {
  test::temp_dir dir;
  auto creds = dir.path() + "/admin-credentials";
  { running_kumod k(dir.path()); EXPECT_EQ(k.stop(), 0); }
  auto original = slurp(creds);
  { running_kumod k(dir.path()); EXPECT_EQ(k.stop(), 0); }
  EXPECT_EQ(slurp(creds), original) << "a clean restart must not touch the credentials";
  EXPECT_EQ(count_events(dir.path(), "account_created"), 1u);

  std::filesystem::remove(creds);
  { running_kumod k(dir.path()); EXPECT_EQ(k.stop(), 0); }
  auto reissued = slurp(creds);
  ASSERT_FALSE(reissued.empty());
  EXPECT_NE(reissued, original);
  EXPECT_EQ(count_events(dir.path(), "account_created"), 1u) << "still one admin";
  EXPECT_EQ(count_events(dir.path(), "access_key_created"), 2u);
  // Lost again: the admin is at AWS's two-key limit, so the oldest key retires.
  std::filesystem::remove(creds);
  { running_kumod k(dir.path()); EXPECT_EQ(k.stop(), 0); }
  EXPECT_EQ(count_events(dir.path(), "access_key_deleted"), 1u);
  EXPECT_EQ(count_events(dir.path(), "access_key_created"), 3u);
}

TEST(Kumod, BadFlagsAreRefusedWithTheReason) {
  auto r = test::run({test::binary("kumod"), "--listen=nonsense"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("--listen must be HOST:PORT"), std::string::npos) << r.output;
  r = test::run({test::binary("kumod"), "--role=node"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("--role=node needs --cluster=HOST:PORT"), std::string::npos) << r.output;
  r = test::run({test::binary("kumod"), "--role=storage"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("--role=storage runs with the cloud role"), std::string::npos) << r.output;
  // An unreachable hypervisor stops kumod at once, saying what to do.
  test::temp_dir dir;
  r = test::run({test::binary("kumod"), "--data-dir=" + dir.path(), "--listen=127.0.0.1:0",
                 "--libvirt-uri=qemu+unix:///system?socket=/nonexistent/libvirt-sock"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("is not reachable"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("tools/libvirtd"), std::string::npos) << r.output;
  r = test::run({test::binary("kumod"), "--colour=blue"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("unknown setting 'colour'"), std::string::npos) << r.output;
}

TEST(Kumod, HelpPrintsTheUsageAndSucceeds) {
  for (const char* flag : {"--help", "-h"}) {
    auto r = test::run({test::binary("kumod"), "--listen=nonsense", flag});
    EXPECT_EQ(r.exit_code, 0) << flag;
    EXPECT_EQ(r.output.rfind("usage: kumod", 0), 0u) << flag << ": " << r.output;
  }
  auto r = test::run({test::binary("kumoctl"), "--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.output.rfind("usage: kumoctl", 0), 0u) << r.output;
}

TEST(Kumod, ConfigFileIsReadAndFlagsOverrideIt) {
  test::temp_dir dir;
  {
    std::ofstream cfg(dir.path() + "/kumod.conf");
    cfg << "# kumod settings\nregion = test-region-9\nlisten = 127.0.0.1:1\nhypervisor = fake\ndata-dir = "
        << dir.path() << "/data\n";
  }
  test::subprocess p({test::binary("kumod"), "--config=" + dir.path() + "/kumod.conf",
                      "--listen=127.0.0.1:0"});
  auto ready = p.wait_for("kumod ready", std::chrono::seconds(30));
  ASSERT_TRUE(ready) << p.transcript();
  EXPECT_NE(ready->find("region=test-region-9"), std::string::npos) << *ready;
  EXPECT_NE(ready->find("data-dir=" + dir.path() + "/data"), std::string::npos) << *ready;
  p.signal(SIGTERM);
  EXPECT_EQ(p.wait(), 0);
}
