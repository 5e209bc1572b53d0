// The API gateway under CPU-heavy load, on the real kumod: each request runs
// in an actor of its own and keys are generated on a bounded pool, so while
// four clients loop CreateKeyPair (RSA 2048) and one pulls a DescribeInstances
// of 2,000 instances over and over, a fifth client's DescribeRegions stays
// fast. (With one gateway actor doing everything, its p50 was ~400 ms.) The
// figure to aim for (p99 < 20 ms) is a benchmark's; this test asserts
// p99 < 250 ms, which the single gateway actor could not meet.
#include "api/client.h"
#include "tests/support/subprocess.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <regex>
#include <thread>

using namespace kumo;
using namespace std::chrono_literals;

namespace {

constexpr int instances = 2000;
constexpr int per_call = 100;

struct kumod_under_load {
  test::temp_dir dir;
  test::subprocess proc;
  api::endpoint ep;
  api::credentials creds;

  kumod_under_load()
      : proc({test::binary("kumod"), "--data-dir=" + dir.path(), "--listen=127.0.0.1:0", "--hypervisor=fake",
              "--node-vcpus=" + std::to_string(instances), "--node-memory-mib=" + std::to_string(instances * 256),
              "--node-disk-gib=" + std::to_string(instances * 5)}) {
    auto ready = proc.wait_for("kumod ready", 60s);
    if (!ready) throw std::runtime_error("kumod did not become ready:\n" + proc.transcript());
    std::smatch m;
    std::regex_search(*ready, m, std::regex(R"(http://127\.0\.0\.1:(\d+))"));
    ep = {"127.0.0.1", static_cast<uint16_t>(std::stoi(m[1]))};
    std::string why;
    auto c = api::read_credentials(dir.path() + "/admin-credentials", "kumo", why);
    if (!c) throw std::runtime_error(why);
    creds = *c;
    // kumod logs every request: read its output, or it blocks on a full pipe.
    drain = std::thread([this] {
      while (!stopping) proc.read_line(100ms);
    });
  }
  ~kumod_under_load() {
    stopping = true;
    drain.join();
    proc.signal(SIGTERM);
    proc.wait();
  }
  std::atomic<bool> stopping{false};
  std::thread drain;
  api::signed_client client() const { return api::signed_client(ep, creds, "kumo-1"); }
};

// The body of a 200 answer, or a failure naming the call.
std::string ok_body(api::signed_client& c, const std::map<std::string, std::string>& params) {
  std::string why;
  auto r = c.call(params, why);
  if (!r) {
    ADD_FAILURE() << params.at("Action") << ": kumod unreachable: " << why;
    return "unreachable: " + why;
  }
  EXPECT_EQ(r->status, 200) << params.at("Action") << ": " << r->body;
  return r->body;
}

double p99_ms(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[std::min(v.size() - 1, v.size() * 99 / 100)];
}

TEST(ApiConcurrency, DescribeRegionsStaysFastWhileOthersGenerateKeysAndListThousandsOfInstances) {
  kumod_under_load k;
  auto admin = k.client();
  const auto disk = k.dir.path() + "/root.raw";
  std::ofstream(disk).close();
  std::filesystem::resize_file(disk, 4 << 20);
  auto image = api::xml_texts(ok_body(admin, {{"Action", "RegisterImage"}, {"Name", "disk"},
                                              {"ImageLocation", disk}}),
                              "imageId");
  ASSERT_EQ(image.size(), 1u);
  for (int launched = 0; launched < instances; launched += per_call) {
    auto body = ok_body(admin, {{"Action", "RunInstances"}, {"ImageId", image[0]}, {"InstanceType", "t1.micro"},
                                {"MinCount", std::to_string(per_call)}, {"MaxCount", std::to_string(per_call)}});
    ASSERT_EQ(api::xml_texts(body, "instanceId").size(), static_cast<size_t>(per_call)) << body.substr(0, 500);
  }

  std::atomic<bool> stop{false};
  std::atomic<int> keys{0}, listings{0};
  std::vector<std::thread> load;
  for (int t = 0; t < 4; ++t)
    load.emplace_back([&, t] {
      auto c = k.client();
      for (int n = 0; !stop; ++n) {
        auto body = ok_body(c, {{"Action", "CreateKeyPair"}, {"KeyName", "k" + std::to_string(t) + "-" +
                                                                             std::to_string(n)}});
        if (body.find("BEGIN RSA PRIVATE KEY") != std::string::npos) ++keys;
      }
    });
  load.emplace_back([&] {
    auto c = k.client();
    while (!stop) {
      auto body = ok_body(c, {{"Action", "DescribeInstances"}});
      if (api::xml_texts(body, "instanceId").size() == static_cast<size_t>(instances)) ++listings;
    }
  });

  // The fifth client, once both kinds of load run: DescribeRegions, one
  // after another, for 3 s (a few RSA keys' worth).
  auto probe = k.client();
  for (const auto until = std::chrono::steady_clock::now() + 120s;
       (keys == 0 || listings == 0) && std::chrono::steady_clock::now() < until;)
    std::this_thread::sleep_for(10ms);
  const int keys_before = keys, listings_before = listings;
  std::vector<double> latencies;
  for (const auto until = std::chrono::steady_clock::now() + 3s; std::chrono::steady_clock::now() < until;) {
    const auto t0 = std::chrono::steady_clock::now();
    auto body = ok_body(probe, {{"Action", "DescribeRegions"}});
    latencies.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    if (body.find("<regionName>kumo-1</regionName>") == std::string::npos) {
      ADD_FAILURE() << body;  // (no ASSERT: the load threads must be joined first)
      break;
    }
  }
  const int keys_during = keys - keys_before, listings_during = listings - listings_before;
  stop = true;
  for (auto& t : load) t.join();
  ASSERT_GT(keys_before, 0) << "no key was generated within 120 s";
  ASSERT_GT(listings_before, 0) << "no full listing within 120 s";

  const double p99 = p99_ms(latencies);
  std::sort(latencies.begin(), latencies.end());
  std::printf("DescribeRegions under load: %zu calls, p50 %.1f ms, p99 %.1f ms, max %.1f ms; meanwhile %d keys "
              "generated, %d full listings of %d instances\n",
              latencies.size(), latencies[latencies.size() / 2], p99, latencies.back(), keys_during, listings_during,
              instances);
  EXPECT_LT(p99, 250.0);
  EXPECT_GT(keys_during, 1) << "the key generators were not under load";
  EXPECT_GT(listings_during, 1) << "the listing client was not under load";
}

}  // namespace
