// bench/run_to_running: seconds from RunInstances to `running` and to the
// demo guest's `kumo-guest: booted` console marker, on real QEMU (TCG) guests.
//
// Like tests/e2e/test_instances.py: runs tools/libvirtd and tools/mkimage
// <build>/guest, starts the real kumod (--hypervisor=libvirt, a fresh data dir,
// 127.0.0.1:0), registers the demo kernel, ramdisk and a machine image that
// boots them, then launches one t1.micro at a time, L times (default 10):
//   RunInstances (MinCount = MaxCount = 1)            -> "API reply"
//   DescribeInstances(InstanceId) until running       -> "running"
//   GetConsoleOutput until any output / the marker    -> "console" / "booted"
//   TerminateInstances, then until terminated and the libvirt domain is gone.
// Describe and GetConsoleOutput are polled by two threads, each on its own
// signed keep-alive connection (api/client.h), every P ms (default 20), so a
// figure is late by at most P ms plus one call. Times are from the moment the
// RunInstances request is sent. From kumod's log (timestamped lines) the bench
// also reads when the node defined the domain and when libvirt's start
// returned, which splits "running" into control plane and hypervisor time.
//
// Needs root (libvirtd runs guests as root here). Leaves no guest behind.
// usage: bench_run_to_running [launches=10] [poll ms=20]
#include "crypto/digest.h"
#include "api/client.h"
#include "api/ssh_keys.h"
#include "tests/support/subprocess.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <regex>
#include <thread>

using namespace kumo;
using clock_type = std::chrono::steady_clock;
namespace fs = std::filesystem;

namespace {

const char* marker = "kumo-guest: booted";
const std::string virsh = "/usr/bin/virsh";  // test::run execs without a PATH search

double ms_between(clock_type::time_point a, clock_type::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string loadavg() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

// kumod's log lines start with "2026-11-25T06:09:52.123Z": unix ms.
std::optional<int64_t> log_time_ms(const std::string& line) {
  std::tm tm{};
  int ms = 0;
  if (std::sscanf(line.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                  &tm.tm_min, &tm.tm_sec, &ms) != 7)
    return std::nullopt;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<int64_t>(timegm(&tm)) * 1000 + ms;
}

// kumod's output, read by a thread (kumod must never block on a full pipe).
struct kumod_log {
  std::mutex m;
  std::vector<std::string> lines;
  // The log time of the first line containing all of `needles`.
  std::optional<int64_t> time_of(const std::vector<std::string>& needles) {
    std::lock_guard lock(m);
    for (const auto& l : lines) {
      bool all = true;
      for (const auto& n : needles) all = all && l.find(n) != std::string::npos;
      if (all) return log_time_ms(l);
    }
    return std::nullopt;
  }
  std::optional<std::string> line_with(const std::vector<std::string>& needles) {
    std::lock_guard lock(m);
    for (const auto& l : lines) {
      bool all = true;
      for (const auto& n : needles) all = all && l.find(n) != std::string::npos;
      if (all) return l;
    }
    return std::nullopt;
  }
};

int virsh_domstate_rc(const std::string& name) {
  return test::run({virsh, "-c", "qemu:///system", "domstate", name}, std::chrono::seconds(20)).exit_code;
}

// Pulls the plug on a guest left behind (only on a failed run).
void remove_domain(const std::string& name) {
  test::run({virsh, "-c", "qemu:///system", "destroy", name}, std::chrono::seconds(20));
  test::run({virsh, "-c", "qemu:///system", "undefine", name}, std::chrono::seconds(20));
}

struct launch_result {
  std::string instance_id;
  double reply_ms = -1;     // RunInstances answered
  double running_ms = -1;   // DescribeInstances says running
  double console_ms = -1;   // GetConsoleOutput has any output
  double booted_ms = -1;    // ... has the marker
  double defined_ms = -1;   // kumod log: libvirt defined the domain
  double started_ms = -1;   // kumod log: the node's start call returned
  double terminate_ms = -1; // TerminateInstances -> terminated and no domain
  double api_server_ms = -1;  // kumod log: the gateway's own time for RunInstances
};

std::string state_of(const std::string& describe_body) {
  auto at = describe_body.find("<instanceState>");
  if (at == std::string::npos) return "";
  auto end = describe_body.find("</instanceState>", at);
  auto names = api::xml_texts(describe_body.substr(at, end - at), "name");
  return names.empty() ? "" : names.front();
}

struct summary {
  double p50 = 0, min = 0, max = 0;
  size_t n = 0;
};
summary summarize(std::vector<double> v) {
  summary s;
  std::erase_if(v, [](double x) { return x < 0; });
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  s.n = v.size();
  s.p50 = v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
  s.min = v.front();
  s.max = v.back();
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  const int launches = argc > 1 ? std::atoi(argv[1]) : 10;
  const int poll_ms = argc > 2 ? std::atoi(argv[2]) : 20;
  const auto poll = std::chrono::milliseconds(poll_ms);
  const fs::path root = KUMO_SOURCE_DIR;
  const fs::path guest = fs::path(test::binary("kumod")).parent_path().parent_path() / "guest";

  for (const auto& [tool, args] : std::vector<std::pair<std::string, std::vector<std::string>>>{
           {"libvirtd", {}}, {"mkimage", {guest.string()}}}) {
    std::vector<std::string> argv_{(root / "tools" / tool).string()};
    argv_.insert(argv_.end(), args.begin(), args.end());
    auto r = test::run(argv_, std::chrono::minutes(10));
    if (r.exit_code != 0) {
      std::fprintf(stderr, "tools/%s failed:\n%s\n", tool.c_str(), r.output.c_str());
      return 1;
    }
  }
  {
    auto r = test::run({virsh, "-c", "qemu:///system", "list", "--all", "--name"});
    std::string others;
    for (char& c : r.output) if (c == '\n') c = ' ';
    if (r.output.find_first_not_of(' ') != std::string::npos) others = r.output;
    if (!others.empty())
      std::printf("note: libvirt already has domains (not this bench's): %s\n", others.c_str());
  }

  test::temp_dir dir;
  test::subprocess kumod({test::binary("kumod"), "--data-dir=" + dir.path(), "--listen=127.0.0.1:0",
                          "--hypervisor=libvirt", "--node-vcpus=4", "--node-memory-mib=4096",
                          "--node-disk-gib=100", "--stop-grace-seconds=20"});
  auto ready = kumod.wait_for("kumod ready", std::chrono::seconds(60));
  if (!ready) {
    std::fprintf(stderr, "kumod did not start:\n%s\n", kumod.transcript().c_str());
    return 1;
  }
  kumod_log log;
  {
    std::lock_guard lock(log.m);
    std::string t = kumod.transcript();
    for (size_t at = 0, nl; (nl = t.find('\n', at)) != std::string::npos; at = nl + 1)
      log.lines.push_back(t.substr(at, nl - at));
  }
  std::atomic<bool> done{false};
  std::thread drain([&] {
    while (!done)
      if (auto l = kumod.read_line(std::chrono::milliseconds(200))) {
        std::lock_guard lock(log.m);
        log.lines.push_back(*l);
      }
  });
  std::smatch m;
  std::regex_search(*ready, m, std::regex(R"(http://127\.0\.0\.1:(\d+))"));
  api::endpoint ep{"127.0.0.1", static_cast<uint16_t>(std::stoi(m[1]))};
  std::string why;
  auto creds = api::read_credentials(dir.path() + "/admin-credentials", "kumo", why);
  if (!creds) {
    std::fprintf(stderr, "%s\n", why.c_str());
    return 1;
  }
  const auto hypervisor = log.line_with({"hypervisor: "});

  std::vector<std::string> launched;  // every instance id, for the clean-up
  int exit_code = 0;
  std::vector<launch_result> results;
  auto run = [&]() -> bool {
    api::signed_client c(ep, *creds, "kumo-1");
    auto image = [&](std::map<std::string, std::string> params) -> std::optional<std::string> {
      params["Action"] = "RegisterImage";
      auto r = c.call(params, why);
      auto ids = r && r->status == 200 ? api::xml_texts(r->body, "imageId") : std::vector<std::string>{};
      if (ids.empty()) {
        std::fprintf(stderr, "RegisterImage %s failed: %s %s\n", params["Name"].c_str(), why.c_str(),
                     r ? r->body.c_str() : "");
        return std::nullopt;
      }
      return ids.front();
    };
    auto kernel = image({{"Name", "demo-kernel"}, {"ImageLocation", (guest / "vmlinuz").string()}});
    auto ramdisk = kernel ? image({{"Name", "demo-ramdisk"}, {"ImageLocation", (guest / "initrd.img").string()}})
                          : std::nullopt;
    auto machine = ramdisk ? image({{"Name", "demo"}, {"KernelId", *kernel}, {"RamdiskId", *ramdisk}}) : std::nullopt;
    if (!machine) return false;

    std::printf("run_to_running: %d sequential launches of the demo guest (%s, t1.micro: 1 vCPU, 256 MiB), "
                "one instance each, terminated after each\n",
                launches, machine->c_str());
    std::printf("  kumod all-in-one on 127.0.0.1:%u, %s\n", ep.port,
                hypervisor ? hypervisor->substr(hypervisor->find("hypervisor: ")).c_str() : "hypervisor: ?");
    std::printf("  polling DescribeInstances and GetConsoleOutput every %d ms, each from its own thread and "
                "signed keep-alive connection; times from sending RunInstances\n", poll_ms);
    std::printf("  %u cores; load average at start: %s\n", std::max(1u, std::thread::hardware_concurrency()),
                loadavg().c_str());
    std::printf("  columns: (server) = RunInstances inside kumod, from its log line; defined / started = kumod log "
                "timestamps (ms) of libvirt's define and of the node's start call returning; the rest by this "
                "client; terminate = TerminateInstances until terminated and no libvirt domain\n");
    std::printf("  %-4s %-21s %9s %9s %9s %9s %9s %9s %9s %10s\n", "#", "instance", "API reply", "(server)",
                "defined", "started", "running", "console", "booted", "terminate");

    for (int i = 0; i < launches; ++i) {
      launch_result res;
      const int64_t w0 = wall_ms();
      const auto t0 = clock_type::now();
      auto r = c.call({{"Action", "RunInstances"}, {"ImageId", *machine}, {"MinCount", "1"}, {"MaxCount", "1"},
                       {"InstanceType", "t1.micro"}},
                      why);
      res.reply_ms = ms_between(t0, clock_type::now());
      auto ids = r && r->status == 200 ? api::xml_texts(r->body, "instanceId") : std::vector<std::string>{};
      if (ids.empty()) {
        std::fprintf(stderr, "RunInstances failed: %s %s\n", why.c_str(), r ? r->body.c_str() : "");
        return false;
      }
      const auto id = ids.front();
      const auto rids = api::xml_texts(r->body, "requestId");
      const std::string rid = rids.empty() ? "?" : rids.front();
      res.instance_id = id;
      launched.push_back(id);
      const auto deadline = t0 + std::chrono::seconds(120);

      std::thread describer([&] {
        api::signed_client d(ep, *creds, "kumo-1");
        std::string w;
        while (clock_type::now() < deadline) {
          auto started = clock_type::now();
          auto x = d.call({{"Action", "DescribeInstances"}, {"InstanceId.1", id}}, w);
          if (x && x->status == 200 && state_of(x->body) == "running") {
            res.running_ms = ms_between(t0, clock_type::now());
            return;
          }
          std::this_thread::sleep_until(started + poll);
        }
      });
      {
        api::signed_client k(ep, *creds, "kumo-1");
        std::string w;
        while (clock_type::now() < deadline) {
          auto started = clock_type::now();
          auto x = k.call({{"Action", "GetConsoleOutput"}, {"InstanceId", id}}, w);
          if (x && x->status == 200) {
            auto out = api::xml_texts(x->body, "output");
            auto text = out.empty() ? std::optional<std::string>{} : crypto::base64_decode(out.front());
            auto now = ms_between(t0, clock_type::now());
            if (text && !text->empty() && res.console_ms < 0) res.console_ms = now;
            if (text && text->find(marker) != std::string::npos) {
              res.booted_ms = now;
              break;
            }
          }
          std::this_thread::sleep_until(started + poll);
        }
      }
      describer.join();

      // Terminate; wait until Describe says terminated and libvirt has no domain.
      const auto tt = clock_type::now();
      auto term = c.call({{"Action", "TerminateInstances"}, {"InstanceId.1", id}}, why);
      if (!term || term->status != 200) {
        std::fprintf(stderr, "TerminateInstances failed: %s %s\n", why.c_str(), term ? term->body.c_str() : "");
        return false;
      }
      bool gone = false;
      while (clock_type::now() < tt + std::chrono::seconds(60)) {
        auto x = c.call({{"Action", "DescribeInstances"}, {"InstanceId.1", id}}, why);
        if (x && x->status == 200 && state_of(x->body) == "terminated" && virsh_domstate_rc(id) != 0) {
          gone = true;
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      if (gone) res.terminate_ms = ms_between(tt, clock_type::now());

      // kumod flushes its log every second: wait for this launch's lines.
      for (int k = 0; k < 30 && !log.time_of({"node ", "started " + id}); ++k)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      if (auto t = log.time_of({"libvirt: defined domain " + id})) res.defined_ms = double(*t - w0);
      if (auto t = log.time_of({"started " + id})) res.started_ms = double(*t - w0);
      if (auto l = log.line_with({"rid=" + rid + " ec2 RunInstances"})) {
        auto open = l->rfind('('), ms = l->rfind(" ms)");
        if (open != std::string::npos && ms != std::string::npos && ms > open)
          res.api_server_ms = std::atof(l->substr(open + 1, ms - open - 1).c_str());
      }
      auto f = [](double v) {
        static thread_local char buf[16][16];
        static thread_local int k = 0;
        char* b = buf[k++ % 16];
        if (v < 0) std::snprintf(b, 16, "%s", "-");
        else std::snprintf(b, 16, "%.3f s", v / 1000);
        return b;
      };
      std::printf("  %-4d %-21s %9s %9s %9s %9s %9s %9s %9s %10s\n", i + 1, id.c_str(), f(res.reply_ms),
                  f(res.api_server_ms), f(res.defined_ms), f(res.started_ms), f(res.running_ms),
                  f(res.console_ms), f(res.booted_ms), f(res.terminate_ms));
      std::fflush(stdout);
      results.push_back(res);
      if (res.running_ms < 0 || res.booted_ms < 0 || !gone) {
        std::fprintf(stderr, "launch %d (%s) did not complete (running %s, booted %s, gone %s)\n", i + 1,
                     id.c_str(), res.running_ms < 0 ? "no" : "yes", res.booted_ms < 0 ? "no" : "yes",
                     gone ? "yes" : "no");
        return false;
      }
    }
    return true;
  };
  if (!run()) exit_code = 1;

  if (!results.empty()) {
    auto column = [&](double launch_result::*field) {
      std::vector<double> v;
      for (const auto& r : results) v.push_back(r.*field);
      return summarize(v);
    };
    auto diff = [&](double launch_result::*a, double launch_result::*b) {
      std::vector<double> v;
      for (const auto& r : results)
        if (r.*a >= 0 && r.*b >= 0) v.push_back(r.*b - r.*a);
      return summarize(v);
    };
    auto line = [](const char* what, const summary& s) {
      std::printf("  %-58s p50 %7.3f s  min %7.3f s  max %7.3f s  (n=%zu)\n", what, s.p50 / 1000, s.min / 1000,
                  s.max / 1000, s.n);
    };
    std::printf("  summary over %zu launches (p50 = median):\n", results.size());
    line("RunInstances -> API reply", column(&launch_result::reply_ms));
    line("  of which in kumod's gateway (its log line)", column(&launch_result::api_server_ms));
    line("RunInstances -> domain defined (kumod log, ms resolution)", column(&launch_result::defined_ms));
    line("RunInstances -> libvirt start returned (kumod log)", column(&launch_result::started_ms));
    line("RunInstances -> running in DescribeInstances", column(&launch_result::running_ms));
    line("RunInstances -> first console output", column(&launch_result::console_ms));
    line("RunInstances -> 'kumo-guest: booted' on the console", column(&launch_result::booted_ms));
    std::printf("  breakdown:\n");
    using r = launch_result;
    line("API reply -> domain defined (controller push, node define)", diff(&r::reply_ms, &r::defined_ms));
    line("domain defined -> start returned (libvirt/QEMU start)", diff(&r::defined_ms, &r::started_ms));
    line("start returned -> running visible (report, event, view)", diff(&r::started_ms, &r::running_ms));
    line("running visible -> booted marker (guest boot under TCG)", diff(&r::running_ms, &r::booted_ms));
    line("TerminateInstances -> terminated and no domain", column(&launch_result::terminate_ms));
    auto s = column(&launch_result::running_ms);
    std::printf("  => p50 RunInstances -> running: %.3f s (goal <= 3 s); -> booted: %.3f s\n", s.p50 / 1000,
                column(&launch_result::booted_ms).p50 / 1000);
    std::printf("  load average at the end: %s\n", loadavg().c_str());
  }

  done = true;
  drain.join();
  kumod.signal(SIGTERM);
  kumod.wait();
  {  // kumod's log, for a closer look at any launch
    const std::string path = "/tmp/bench_run_to_running.kumod.log";
    std::ofstream out(path);
    out << kumod.transcript();
    std::printf("  kumod's log: %s\n", path.c_str());
  }
  // kumod leaves running guests alone when it stops: make sure none of ours is left.
  int left = 0;
  for (const auto& id : launched)
    if (virsh_domstate_rc(id) == 0) {
      ++left;
      remove_domain(id);
    }
  if (left) std::printf("  clean-up: removed %d domain(s) this bench left in libvirt\n", left);
  return exit_code;
}
