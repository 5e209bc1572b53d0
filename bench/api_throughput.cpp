// bench/api_throughput: signed EC2 requests per second against a real kumod.
// Starts kumod on a fresh data dir, imports 1,000 key pairs, then for 1, 16
// and 128 concurrent keep-alive connections (one client thread each) sends
// SigV4-signed DescribeRegions and DescribeKeyPairs for a fixed time and
// prints requests/s and p50/p99 latency. The load generator shares the two
// cores with kumod, so the figures are a floor, not a ceiling. Also prints
// what signing alone costs the client, and one client's DescribeRegions
// latency while four others loop CreateKeyPair (RSA 2048).
//
// usage: api_throughput [seconds per run, default 3]
#include "crypto/digest.h"
#include "api/client.h"
#include "api/sigv4.h"
#include "api/ssh_keys.h"
#include "tests/support/subprocess.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <regex>
#include <thread>

using namespace kumo;
using clock_type = std::chrono::steady_clock;

namespace {

struct run_result {
  uint64_t requests = 0;
  uint64_t errors = 0;
  double seconds = 0;
  double p50_ms = 0, p99_ms = 0;
};

run_result drive(const api::endpoint& ep, const api::credentials& creds, int connections,
                 const std::map<std::string, std::string>& params, double seconds) {
  std::vector<std::vector<double>> latencies(connections);
  std::atomic<uint64_t> errors{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  auto start = clock_type::now();
  for (int i = 0; i < connections; ++i)
    threads.emplace_back([&, i] {
      api::signed_client client(ep, creds, "kumo-1");
      std::string why;
      while (!stop) {
        auto t0 = clock_type::now();
        auto r = client.call(params, why);
        if (!r || r->status != 200) errors++;
        latencies[i].push_back(std::chrono::duration<double, std::milli>(clock_type::now() - t0).count());
      }
    });
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& t : threads) t.join();
  run_result res;
  res.seconds = std::chrono::duration<double>(clock_type::now() - start).count();
  std::vector<double> all;
  for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  std::sort(all.begin(), all.end());
  res.requests = all.size();
  res.errors = errors;
  if (!all.empty()) {
    res.p50_ms = all[all.size() / 2];
    res.p99_ms = all[std::min(all.size() - 1, all.size() * 99 / 100)];
  }
  return res;
}

}  // namespace

int main(int argc, char** argv) {
  const double seconds = argc > 1 ? std::atof(argv[1]) : 3.0;
  test::temp_dir dir;
  // kumod as shipped: info-level logs (one line per request) to a pipe that a
  // thread here keeps draining.
  test::subprocess kumod({test::binary("kumod"), "--data-dir=" + dir.path(), "--listen=127.0.0.1:0",
                           "--hypervisor=fake"});
  auto ready = kumod.wait_for("kumod ready", std::chrono::seconds(60));
  if (!ready) {
    std::fprintf(stderr, "kumod did not start:\n%s\n", kumod.transcript().c_str());
    return 1;
  }
  std::smatch m;
  std::regex_search(*ready, m, std::regex(R"(http://127\.0\.0\.1:(\d+))"));
  std::atomic<bool> done{false};
  std::thread drain([&] {
    while (!done) kumod.read_line(std::chrono::milliseconds(200));
  });
  api::endpoint ep{"127.0.0.1", static_cast<uint16_t>(std::stoi(m[1]))};
  std::string why;
  auto creds = api::read_credentials(dir.path() + "/admin-credentials", "kumo", why);
  if (!creds) {
    std::fprintf(stderr, "%s\n", why.c_str());
    return 1;
  }

  // 1,000 key pairs to describe (ED25519 public keys; RSA generation would
  // only measure OpenSSL).
  {
    api::signed_client c(ep, *creds, "kumo-1");
    auto start = clock_type::now();
    for (int i = 0; i < 1000; ++i) {
      std::string blob;
      auto put = [&](const std::string& s) {
        for (int shift = 24; shift >= 0; shift -= 8) blob.push_back(static_cast<char>((s.size() >> shift) & 0xff));
        blob += s;
      };
      put("ssh-ed25519");
      std::string raw(32, '\0');
      for (int b = 0; b < 32; ++b) raw[b] = static_cast<char>((i * 31 + b * 7) & 0xff);
      put(raw);
      auto r = c.call({{"Action", "ImportKeyPair"}, {"KeyName", "bench-" + std::to_string(i)},
                       {"PublicKeyMaterial", crypto::base64_encode("ssh-ed25519 " + crypto::base64_encode(blob))}},
                      why);
      if (!r || r->status != 200) {
        std::fprintf(stderr, "import failed: %s %s\n", why.c_str(), r ? r->body.c_str() : "");
        return 1;
      }
    }
    std::printf("api_throughput: imported 1000 key pairs in %.2f s (sequential, durable)\n",
                std::chrono::duration<double>(clock_type::now() - start).count());
  }
  {  // What the client spends signing, per request.
    api::http_parts req{"POST", "/", {{"host", "127.0.0.1:8773"}, {"content-type", "application/x-www-form-urlencoded; charset=utf-8"}, {"x-amz-date", "20261125T000000Z"}}, "Action=DescribeRegions&Version=2016-11-15"};
    api::sigv4_claim claim{creds->access_key_id, "20261125", "kumo-1", "ec2", "20261125T000000Z", "content-type;host;x-amz-date", "", false, 0};
    auto start = clock_type::now();
    const int n = 20000;
    for (int i = 0; i < n; ++i)
      claim.signature = api::signature(creds->secret_access_key, claim, api::string_to_sign(claim, api::canonical_request(req, claim)));
    std::printf("  SigV4 sign (= verify) cost: %.1f us per request\n",
                std::chrono::duration<double, std::micro>(clock_type::now() - start).count() / n);
  }
  std::printf("  %.0f s per run; client threads and kumod share the 2 cores\n", seconds);
  for (const auto& [name, params] : std::vector<std::pair<std::string, std::map<std::string, std::string>>>{
           {"DescribeRegions", {{"Action", "DescribeRegions"}}},
           {"DescribeKeyPairs (1000 keys)", {{"Action", "DescribeKeyPairs"}}}}) {
    for (int conns : {1, 16, 128}) {
      auto r = drive(ep, *creds, conns, params, seconds);
      std::printf("  %-28s %3d conns: %8.0f req/s  p50 %6.2f ms  p99 %7.2f ms  (%llu requests, %llu errors)\n",
                  name.c_str(), conns, r.requests / r.seconds, r.p50_ms, r.p99_ms,
                  (unsigned long long)r.requests, (unsigned long long)r.errors);
    }
  }
  {  // One client's DescribeRegions while four others loop CreateKeyPair (RSA 2048).
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> keys{0};
    std::vector<std::thread> generating;
    for (int t = 0; t < 4; ++t)
      generating.emplace_back([&, t] {
        api::signed_client c(ep, *creds, "kumo-1");
        std::string why;
        for (int n = 0; !stop; ++n) {
          auto r = c.call({{"Action", "CreateKeyPair"}, {"KeyName", "rsa-" + std::to_string(t) + "-" + std::to_string(n)}},
                          why);
          if (r && r->status == 200) keys++;
        }
      });
    auto r = drive(ep, *creds, 1, {{"Action", "DescribeRegions"}}, seconds);
    stop = true;
    for (auto& t : generating) t.join();
    std::printf("  DescribeRegions, 1 conn, while 4 conns loop CreateKeyPair (RSA 2048): p50 %.2f ms  p99 %.2f ms  "
                "(%llu requests, %llu errors; %llu keys generated meanwhile)\n",
                r.p50_ms, r.p99_ms, (unsigned long long)r.requests, (unsigned long long)r.errors,
                (unsigned long long)keys.load());
  }
  done = true;
  drain.join();
  kumod.signal(SIGTERM);
  kumod.wait();
  return 0;
}
