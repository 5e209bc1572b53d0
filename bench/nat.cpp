// bench/nat: the kernel data plane (net/dataplane.h) with 10,000 elastic IPs.
//
// Method: the process unshares its own network namespace (root) before
// anything else, so the machine's network is never touched. Between
// full-apply runs the namespace is emptied (reconcile of the empty view,
// stop dnsmasq, delete the table) rather than replaced: a namespace torn down
// in the background slows the next one's link creation. The view: 41
// segments (kbr1000.., 10.16.x.0/24, no physical interface so no VXLAN) of
// 245 NICs (.10-.254), 10,045 NICs, the first 10,000 with a distinct public
// IP out of 100.64.0.0/10, one ingress rule per segment. No taps exist.
//   1. full apply, N runs: from nothing, a new make_kernel_dataplane() (fresh
//      state directory) and time its first reconcile(view): 41 bridges + the
//      nft table + writing the dnsmasq files and starting dnsmasq. Then `nft delete table ip kumo`
//      and a second dataplane instance's first reconcile (links and dnsmasq
//      already there and adopted: the nft table load is what it does), then
//      the same ruleset through `nft -f` alone (table deleted again first).
//   2. incremental, M rounds in the last namespace (10,000 EIPs present): one
//      more NIC (of the 45 spare) gets a public IP out of 198.18.0.0/15,
//      reconcile(); then it loses it, reconcile(). Also reconcile() of an
//      unchanged view (what every periodic pass pays).
//   3. where an incremental reconcile's time goes: the pure functions net/
//      calls on every reconcile (problems, eip_maps, nft_ruleset of the view
//      and of the view without public IPs, dnsmasq config/hosts,
//      desired_links), and the kernel side through libnftables as
//      nft_table::observe does it (`list table ip kumo` as JSON, then parsing
//      it), then one `add element` + `delete element` on the same libnftables
//      context, and other listings and an `add element` after a cheap one.
// Wall-clock times (steady_clock) of the calls; nothing is asserted.
// usage: bench_nat [full runs=5] [incremental rounds=50]
#include "net/dataplane.h"
#include "net/desired_state.h"

#include <nftables/libnftables.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <sched.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

using namespace kumo;
using clock_type = std::chrono::steady_clock;
namespace fs = std::filesystem;

namespace {

constexpr int segments = 41;
constexpr int nics_per_segment = 245;  // hosts .10 .. .254
constexpr int elastic_ips = 10000;

double ms_since(clock_type::time_point t) {
  return std::chrono::duration<double, std::milli>(clock_type::now() - t).count();
}

double time_ms(const std::function<void()>& f) {
  auto t = clock_type::now();
  f();
  return ms_since(t);
}

std::string loadavg() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * (v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

void print_summary(const char* what, const std::vector<double>& v, bool each = false) {
  if (v.empty()) return;
  std::printf("  %-62s p50 %8.2f ms  p95 %8.2f ms  max %8.2f ms  (n=%zu)\n", what, percentile(v, 0.5),
              percentile(v, 0.95), *std::max_element(v.begin(), v.end()), v.size());
  if (!each) return;
  std::printf("  %-62s", "");
  for (double x : v) std::printf(" %.0f", x);
  std::printf(" (each run, ms)\n");
}

int sh(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()); }

std::string hex(uint64_t v, int width) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%0*llx", width, static_cast<unsigned long long>(v));
  return buf;
}

std::string spare_public_ip(int k) { return "198.18." + std::to_string(k / 250) + "." + std::to_string(k % 250 + 1); }

net::network_view ten_thousand() {
  net::network_view v;
  for (int s = 0; s < segments; ++s)
    v.segments.push_back({static_cast<uint32_t>(1000 + s), "111111111111", "sg-" + hex(s, 17),
                          "10.16." + std::to_string(s) + ".0/24"});
  for (int i = 0; i < segments * nics_per_segment; ++i) {
    const int s = i / nics_per_segment, h = 10 + i % nics_per_segment;
    net::nic n;
    n.instance_id = "i-" + hex(i, 17);
    n.vni = 1000 + s;
    n.mac = "d0:0d:00:00:" + hex(i >> 8, 2) + ":" + hex(i & 255, 2);
    n.private_ip = "10.16." + std::to_string(s) + "." + std::to_string(h);
    if (i < elastic_ips) n.public_ip = "100.64." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1);
    n.tap = "kt" + hex(i, 13);
    v.nics.push_back(std::move(n));
  }
  for (int s = 0; s < segments; ++s)
    v.ingress.push_back({static_cast<uint32_t>(1000 + s), "tcp", 22, 22, "0.0.0.0/0", 0});
  return v;
}

// A network namespace of this process alone (single-threaded, so the whole
// process is in it), with lo up.
bool fresh_netns() {
  if (::unshare(CLONE_NEWNET) != 0) return false;
  return sh("ip link set lo up") == 0;
}

std::unique_ptr<net::dataplane> make(const std::string& dir) {
  std::string error;
  auto dp = net::make_kernel_dataplane({dir, false}, error);
  if (!dp) std::fprintf(stderr, "make_kernel_dataplane: %s\n", error.c_str());
  return dp;
}

bool reconciled(const net::reconcile_result& r, const char* what) {
  if (!r.ok) std::fprintf(stderr, "%s: reconcile failed: %s\n", what, r.error.c_str());
  return r.ok;
}

// libnftables as nft_table uses it, for the breakdown.
struct nft {
  nft_ctx* ctx = nft_ctx_new(NFT_CTX_DEFAULT);
  nft() {
    nft_ctx_buffer_output(ctx);
    nft_ctx_buffer_error(ctx);
  }
  ~nft() { nft_ctx_free(ctx); }
  bool run(const std::string& cmd, std::string* out = nullptr) {
    const bool ok = nft_run_cmd_from_buffer(ctx, cmd.c_str()) == 0;
    const char* text = nft_ctx_get_output_buffer(ctx);  // also empties the buffer
    nft_ctx_get_error_buffer(ctx);
    if (out) *out = text;
    return ok;
  }
};

}  // namespace

int main(int argc, char** argv) {
  // Everything below happens in network namespaces of this process alone.
  if (::geteuid() != 0 || !fresh_netns()) {
    std::fprintf(stderr, "bench_nat needs root (CAP_NET_ADMIN) to make its own network namespaces\n");
    return 1;
  }
  spdlog::set_level(spdlog::level::warn);  // net/ logs every bridge it makes or removes
  const int runs = argc > 1 ? std::max(1, std::atoi(argv[1])) : 5;
  const int rounds = argc > 2 ? std::max(1, std::atoi(argv[2])) : 50;
  utsname u{};
  ::uname(&u);
  auto t_view = clock_type::now();
  const auto view = ten_thousand();
  const double build_view_ms = ms_since(t_view);
  if (auto p = net::problems(view); !p.empty()) {
    std::fprintf(stderr, "the view is malformed: %s\n", p.front().c_str());
    return 1;
  }
  const auto ruleset = net::nft_ruleset(view);
  const auto base = fs::temp_directory_path() / ("bench-nat-" + std::to_string(::getpid()));
  fs::create_directories(base);
  {
    std::ofstream(base / "ruleset.nft") << "table ip kumo\ndelete table ip kumo\n" << ruleset;
  }
  std::printf("nat: kernel data plane with %d elastic IPs (%d segments x %d NICs = %d NICs, %zu ingress rules)\n",
              elastic_ips, segments, nics_per_segment, segments * nics_per_segment, view.ingress.size());
  std::printf("  machine: %u cores, Linux %s, %s", std::thread::hardware_concurrency(), u.release,
              [] {
                std::string v;
                if (FILE* p = ::popen("nft --version", "r")) {
                  char buf[128];
                  while (std::fgets(buf, sizeof buf, p)) v += buf;
                  ::pclose(p);
                }
                return v.empty() ? std::string("nft ?\n") : v;
              }().c_str());
  std::printf("  load average at start: %s; private network namespaces (unshare), state in %s\n", loadavg().c_str(),
              base.c_str());
  std::printf("  ruleset text: %zu bytes; building the view in the bench: %.1f ms (not counted below)\n",
              ruleset.size(), build_view_ms);
  std::printf("  goals: full apply < 1 s, incremental EIP change < 10 ms\n\n");

  // 1. Full apply.
  std::vector<double> full, nft_only_dp, nft_f, replace_existing;
  std::unique_ptr<net::dataplane> dp;
  std::string dir;
  int exit_code = 0;
  for (int r = 0; r < runs && !exit_code; ++r) {
    if (dp) {
      // Back to nothing in the same namespace: the empty view removes the
      // bridges and stops dnsmasq; then the (empty) table goes.
      if (!reconciled(dp->reconcile(net::network_view{}), "teardown")) exit_code = 1;
      dp->stop();
      dp.reset();
      sh("nft delete table ip kumo");
      if (sh("ip -o link show type bridge | grep -q kbr") == 0) {
        std::fprintf(stderr, "bridges were left after the teardown\n");
        exit_code = 1;
      }
      if (exit_code) break;
    }
    dir = (base / ("run" + std::to_string(r))).string();
    fs::create_directories(dir);
    dp = make(dir);
    if (!dp) {
      exit_code = 1;
      break;
    }
    net::reconcile_result res;
    full.push_back(time_ms([&] { res = dp->reconcile(view); }));
    if (!reconciled(res, "full apply")) {
      exit_code = 1;
      break;
    }
    // A second instance (kumod restarting) over a kernel with links and
    // dnsmasq but no table: its first reconcile loads the table.
    sh("nft delete table ip kumo");
    {
      auto dp2 = make(dir);
      if (!dp2) {
        exit_code = 1;
        break;
      }
      nft_only_dp.push_back(time_ms([&] { res = dp2->reconcile(view); }));
      if (!reconciled(res, "second instance, no table")) exit_code = 1;
    }
    // A second instance over a kernel that has everything (the table
    // included): its first reconcile replaces the table all the same.
    {
      auto dp3 = make(dir);
      if (!dp3) {
        exit_code = 1;
        break;
      }
      replace_existing.push_back(time_ms([&] { res = dp3->reconcile(view); }));
      if (!reconciled(res, "second instance, table present")) exit_code = 1;
    }
    sh("nft delete table ip kumo");
    nft_f.push_back(time_ms([&] {
      if (sh("nft -f " + (base / "ruleset.nft").string()) != 0) {
        std::fprintf(stderr, "nft -f failed\n");
        exit_code = 1;
      }
    }));
    // dp applied last in kumo's eyes; make the kernel match dp again.
    if (!reconciled(dp->reconcile(view), "settle")) exit_code = 1;
  }

  if (!exit_code) {
    std::printf("1. full apply of %d EIPs, %d runs in one network namespace (emptied between runs):\n", elastic_ips,
                runs);
    print_summary("first reconcile() from scratch (41 bridges + table + dnsmasq)", full, true);
    print_summary("first reconcile() of a 2nd instance, table deleted", nft_only_dp, true);
    print_summary("first reconcile() of a 3rd instance, all present (replaces)", replace_existing);
    print_summary("`nft -f` of the same ruleset alone (process incl.)", nft_f);
  }

  // 2. Incremental, with 10,000 present.
  std::vector<double> add, remove, noop;
  if (!exit_code) {
    auto changed = view;
    const int spare = segments * nics_per_segment - elastic_ips;
    for (int k = 0; k < rounds && !exit_code; ++k) {
      auto& n = changed.nics[elastic_ips + k % spare];
      n.public_ip = spare_public_ip(k);
      net::reconcile_result res;
      add.push_back(time_ms([&] { res = dp->reconcile(changed); }));
      if (!reconciled(res, "add one EIP")) exit_code = 1;
      if (k == 0 && sh("nft get element ip kumo eip_dnat { " + n.public_ip + " }") != 0) {
        std::fprintf(stderr, "the added EIP %s is not in eip_dnat\n", n.public_ip.c_str());
        exit_code = 1;
      }
      n.public_ip.clear();
      remove.push_back(time_ms([&] { res = dp->reconcile(changed); }));
      if (!reconciled(res, "remove one EIP")) exit_code = 1;
      if (k == 0 && sh("nft get element ip kumo eip_dnat { " + spare_public_ip(k) + " }") == 0) {
        std::fprintf(stderr, "the removed EIP is still in eip_dnat\n");
        exit_code = 1;
      }
      noop.push_back(time_ms([&] { res = dp->reconcile(changed); }));
      if (!reconciled(res, "unchanged view")) exit_code = 1;
    }
    if (!exit_code) {
      std::printf("\n2. incremental, %d EIPs present, %d rounds (each round: add one, remove it, unchanged):\n",
                  elastic_ips, rounds);
      print_summary("reconcile() adding one EIP (NIC gets a public IP)", add);
      print_summary("reconcile() removing one EIP", remove);
      print_summary("reconcile() of an unchanged view", noop);
    }
  }

  // 3. Where the time of an incremental reconcile goes.
  if (!exit_code) {
    std::vector<double> problems_ms, eip_ms, ruleset_ms, bare_ms, dnsmasq_ms, links_ms, list_ms, parse_ms,
        add_ms, add_after_list_ms, delete_ms, tables_ms, terse_ms,
        chains_ms;
    nft k;
    size_t listing_bytes = 0;
    for (int i = 0; i < 20; ++i) {
      problems_ms.push_back(time_ms([&] { (void)net::problems(view); }));
      eip_ms.push_back(time_ms([&] { (void)net::eip_maps(view); }));
      ruleset_ms.push_back(time_ms([&] { (void)net::nft_ruleset(view); }));
      bare_ms.push_back(time_ms([&] {
        auto bare = view;
        for (auto& n : bare.nics) n.public_ip.clear();
        (void)net::nft_ruleset(bare);
      }));
      dnsmasq_ms.push_back(time_ms([&] {
        (void)net::dnsmasq_config(view, dir);
        (void)net::dnsmasq_hosts(view);
      }));
      links_ms.push_back(time_ms([&] { (void)net::desired_links(view); }));
      std::string listing;
      // As observe() then the map update do it: the listing, then the
      // element change on the same context.
      nft_ctx_output_set_flags(k.ctx, NFT_CTX_OUTPUT_JSON);
      list_ms.push_back(time_ms([&] { k.run("list table ip kumo", &listing); }));
      nft_ctx_output_set_flags(k.ctx, 0);
      listing_bytes = listing.size();
      parse_ms.push_back(time_ms([&] {
        auto j = nlohmann::json::parse(listing, nullptr, false);
        if (!j.is_object()) std::fprintf(stderr, "the listing is not JSON\n");
        (void)j.dump();
      }));
      bool ok = true;
      auto element = [&](const char* verb, const std::string& ip) {
        return time_ms([&] {
          ok = k.run(std::string(verb) + " element ip kumo eip_dnat { " + ip +
                     (verb[0] == 'a' ? " : 10.16.40.200 }\n" : " }\n")) && ok;
        });
      };
      const auto ip = spare_public_ip(1000 + i), ip2 = spare_public_ip(2000 + i);
      add_after_list_ms.push_back(element("add", ip));
      delete_ms.push_back(element("delete", ip));
      nft_ctx_output_set_flags(k.ctx, NFT_CTX_OUTPUT_JSON | NFT_CTX_OUTPUT_TERSE);
      terse_ms.push_back(time_ms([&] { k.run("list table ip kumo"); }));
      nft_ctx_output_set_flags(k.ctx, 0);
      tables_ms.push_back(time_ms([&] { k.run("list tables"); }));
      chains_ms.push_back(time_ms([&] { k.run("list chains ip"); }));
      add_ms.push_back(element("add", ip2));
      element("delete", ip2);
      if (!ok) std::fprintf(stderr, "add/delete element failed\n");
    }
    std::printf("\n3. parts of one reconcile() at %d EIPs (20 runs each; pure = no kernel):\n", elastic_ips);
    print_summary("pure: problems(view) (kernel_dataplane logs them)", problems_ms);
    print_summary("pure: eip_maps(view)", eip_ms);
    print_summary("pure: nft_ruleset(view)", ruleset_ms);
    print_summary("pure: copy view, clear public IPs, nft_ruleset(bare)", bare_ms);
    print_summary("pure: dnsmasq_config + dnsmasq_hosts", dnsmasq_ms);
    print_summary("pure: desired_links(view)", links_ms);
    char what[96];
    std::snprintf(what, sizeof what, "kernel: libnftables `list table ip kumo` JSON (%zu KB)", listing_bytes / 1024);
    print_summary(what, list_ms);
    print_summary("parse that JSON + dump (nlohmann, as observe() does)", parse_ms);
    print_summary("kernel: `add element` of one EIP right after that listing", add_after_list_ms);
    print_summary("kernel: `delete element` of it right after", delete_ms);
    print_summary("kernel: the same listing terse (-t: fetched, not printed), JSON", terse_ms);
    print_summary("kernel: `list tables`", tables_ms);
    print_summary("kernel: `list chains ip` (no set elements fetched)", chains_ms);
    print_summary("kernel: `add element` of one EIP right after `list chains`", add_ms);
    std::printf("  load average at the end: %s\n", loadavg().c_str());
  }

  if (dp) dp->stop();
  dp.reset();
  std::error_code ec;
  fs::remove_all(base, ec);
  return exit_code;
}
