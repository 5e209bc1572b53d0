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
//      reconcile(); then it loses it, reconcile(); then reconcile() of the
//      unchanged view (what every periodic pass pays). Every third round,
//      someone else commits to nftables (`nft add/delete table ip
//      bench_other`) and one more reconcile() is timed: nftables' generation
//      moved, so that pass lists the table and diffs it: what drift
//      detection costs, and what the pass pays that nft_table makes list the
//      table when 30 s passed since its last listing (not reached here).
//   3. where an incremental reconcile's time goes, step by step as
//      kernel_dataplane::reconcile runs them, each on an instance of its own
//      over the kernel state of section 2: desired() into a reused
//      desired_plane (as reconcile does) and into a fresh one, one validation
//      of the view alone (problems()), link_table::reconcile (as a pass with
//      no link change announced does, and as one that reads every link and
//      address: a new instance's first pass), nft_table::reconcile
//      adding/removing one EIP, dnsmasq_process::reconcile of an unchanged
//      plane. Then what a listing pass pays: libnftables'
//      `list table ip kumo` as JSON, parsing it, and an `add element` on the
//      context that just listed (why nft_table lists on a context of its own).
// Wall-clock times (steady_clock) of the calls. Checked on the way: every
// call succeeds, the added EIP is in eip_dnat and the removed one is not, and
// passes after another table's commit or in section 3 report no repair.
// usage: bench_nat [full runs=5] [incremental rounds=50]
#include "net/dataplane.h"
#include "net/desired_state.h"
#include "net/dnsmasq.h"
#include "net/link_table.h"
#include "net/nft_table.h"

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
  std::vector<double> add, remove, noop, after_foreign;
  const auto incremental_start = clock_type::now();
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
      // Someone else commits to nftables (another table): the generation
      // moves, so the next pass lists the table and diffs it.
      if (k % 3 == 2) {
        const bool other_exists = after_foreign.size() % 2;
        if (sh(other_exists ? "nft delete table ip bench_other" : "nft add table ip bench_other") != 0) {
          std::fprintf(stderr, "nft could not change table ip bench_other\n");
          exit_code = 1;
        }
        after_foreign.push_back(time_ms([&] { res = dp->reconcile(changed); }));
        if (!reconciled(res, "after a foreign commit")) exit_code = 1;
        if (!res.repairs.empty()) {
          std::fprintf(stderr, "a foreign table was taken for drift: %s\n", res.repairs.front().c_str());
          exit_code = 1;
        }
      }
    }
    if (after_foreign.size() % 2) sh("nft delete table ip bench_other");
    if (!exit_code) {
      const double took_s = ms_since(incremental_start) / 1000;
      std::printf("\n2. incremental, %d EIPs present, %d rounds in %.1f s (each round: add one, remove it, unchanged;\n"
                  "   every third round also a commit to another nft table, then a pass):\n",
                  elastic_ips, rounds, took_s);
      print_summary("reconcile() adding one EIP (NIC gets a public IP)", add, true);
      print_summary("reconcile() removing one EIP", remove, true);
      print_summary("reconcile() of an unchanged view", noop);
      print_summary("reconcile() after another nft commit (listing + diff)", after_foreign);
      std::printf("  (a pass lists the table only when nftables' generation is not the one kumo's last write left,\n"
                  "   or %lld s after its last listing, at the cost of the last row; here the last row's passes\n"
                  "   list every third round, so no pass of the other rows lists)\n",
                  static_cast<long long>(net::nft_table::relist_every.count()));
    }
  }

  // 3. Where the time of an incremental reconcile goes: the same steps as
  // kernel_dataplane::reconcile, each timed alone, on instances of their own
  // over the kernel state section 2 left.
  if (!exit_code) {
    std::vector<double> plane_ms, fresh_ms, check_ms, links_ms, links_read_ms, nft_ms, dnsmasq_ms, list_ms, parse_ms,
        add_ms;
    std::string error;
    auto links = net::link_table::open(error);
    auto table = net::nft_table::open(error);
    if (!links || !table) {
      std::fprintf(stderr, "parts: %s\n", error.c_str());
      exit_code = 1;
    }
    net::dnsmasq_process dnsmasq(dir);  // adopts dp's
    net::desired_plane plane, with_one_more;
    auto more = view;
    more.nics[elastic_ips].public_ip = spare_public_ip(0);
    net::desired(more, dir, with_one_more);
    std::vector<std::string> repairs;
    // Its first pass lists the table (and takes the missing EIP for drift,
    // the log being what the kernel should have had).
    if (!exit_code && !table->reconcile(with_one_more, repairs, error)) {
      std::fprintf(stderr, "parts: nft: %s\n", error.c_str());
      exit_code = 1;
    }
    repairs.clear();
    nft k;
    size_t listing_bytes = 0;
    for (int i = 0; i < 20 && !exit_code; ++i) {
      plane_ms.push_back(time_ms([&] { net::desired(view, dir, plane); }));
      fresh_ms.push_back(time_ms([&] { (void)net::desired(view, dir); }));
      check_ms.push_back(time_ms([&] { (void)net::problems(view); }));
      bool ok = true;
      links_ms.push_back(time_ms([&] { ok = links->reconcile(plane, repairs, error) && ok; }));
      if (auto fresh = net::link_table::open(error))  // its first pass reads every link and address
        links_read_ms.push_back(time_ms([&] { ok = fresh->reconcile(plane, repairs, error) && ok; }));
      // One EIP more, then one fewer: map elements through libnftables.
      nft_ms.push_back(time_ms([&] { ok = table->reconcile(with_one_more, repairs, error) && ok; }));
      nft_ms.push_back(time_ms([&] { ok = table->reconcile(plane, repairs, error) && ok; }));
      dnsmasq_ms.push_back(time_ms([&] { ok = dnsmasq.reconcile(plane, repairs, error) && ok; }));
      if (!ok || !repairs.empty()) {
        std::fprintf(stderr, "parts: %s\n", ok ? repairs.front().c_str() : error.c_str());
        exit_code = 1;
      }
    }
    // Then (the element changes below are commits of someone else for
    // nft_table, which would make its passes above list the table):
    for (int i = 0; i < 20 && !exit_code; ++i) {
      // What a pass that lists pays: the listing as JSON and its parsing.
      std::string listing;
      nft_ctx_output_set_flags(k.ctx, NFT_CTX_OUTPUT_JSON);
      list_ms.push_back(time_ms([&] { k.run("list table ip kumo", &listing); }));
      nft_ctx_output_set_flags(k.ctx, 0);
      listing_bytes = listing.size();
      parse_ms.push_back(time_ms([&] {
        auto j = nlohmann::json::parse(listing, nullptr, false);
        if (!j.is_object()) std::fprintf(stderr, "the listing is not JSON\n");
        (void)j.dump();
      }));
      // And an element update on a context that just listed (why nft_table
      // lists on a context of its own).
      add_ms.push_back(time_ms([&] { k.run("add element ip kumo eip_dnat { " + spare_public_ip(1000 + i) + " : 10.16.40.200 }"); }));
      k.run("delete element ip kumo eip_dnat { " + spare_public_ip(1000 + i) + " }");
    }
    if (!exit_code) {
      std::printf("\n3. parts of one reconcile() at %d EIPs, in kernel_dataplane's order (20 runs each):\n", elastic_ips);
      print_summary("pure: desired(view) into last pass's plane (as reconcile)", plane_ms);
      print_summary("pure: desired(view) into a fresh desired_plane", fresh_ms);
      print_summary("pure: of which one validation of the view (problems(view))", check_ms);
      print_summary("kernel: link_table::reconcile, no link change announced", links_ms);
      print_summary("kernel: link_table::reconcile reading all links and addresses", links_read_ms);
      print_summary("kernel: nft_table::reconcile, one EIP more or fewer", nft_ms);
      print_summary("kernel: dnsmasq reconcile, unchanged (files compared)", dnsmasq_ms);
      char what[96];
      std::snprintf(what, sizeof what, "kernel: libnftables `list table ip kumo` JSON (%zu KB)", listing_bytes / 1024);
      print_summary(what, list_ms);
      print_summary("parse that JSON + dump (nlohmann, as a listing pass does)", parse_ms);
      print_summary("kernel: `add element` on the context that just listed", add_ms);
    }
    std::printf("  load average at the end: %s\n", loadavg().c_str());
  }

  if (dp) dp->stop();
  dp.reset();
  std::error_code ec;
  fs::remove_all(base, ec);
  return exit_code;
}
