// bench/volumes: CreateVolume -> available latency for 1 GiB and 100 GiB
// sparse volumes, and AttachVolume -> attached / visible in a running real
// guest (libvirt/QEMU TCG, the demo guest), and DetachVolume -> available.
//
// Method: runs tools/libvirtd and tools/mkimage <build>/guest, starts the
// real kumod (all-in-one, --hypervisor=libvirt, fresh data dir, 127.0.0.1:0),
// registers the demo guest and boots one t1.micro. Then, one at a time:
//   CreateVolume(Size) ... DescribeVolumes(VolumeId) polled every P ms until
//   "available" (the file exists, made by qemu-img, and stat() says exactly
//   Size GiB), then DeleteVolume; N times for 1 GiB and N times for 100 GiB;
//   AttachVolume(1 GiB, /dev/sdf) ... DescribeVolumes until "attached" (the
//   node hot-plugged it and reported it) and GetConsoleOutput until the guest
//   prints one more "kumo-guest: disk vdX 1073741824" line (the guest polls
//   /sys/block once a second, so this figure includes up to 1 s of its
//   polling); then DetachVolume ... until "available" and until the guest
//   prints "kumo-guest: disk-removed"; N times.
// Times are from sending the request, on one signed keep-alive connection
// per poller (api/client.h). Needs root (libvirtd). Leaves no guest behind.
// usage: bench_volumes [runs=10] [poll ms=10]
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
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <regex>
#include <thread>

using namespace kumo;
using clock_type = std::chrono::steady_clock;
namespace fs = std::filesystem;

namespace {

const std::string virsh = "/usr/bin/virsh";

double ms_since(clock_type::time_point t) {
  return std::chrono::duration<double, std::milli>(clock_type::now() - t).count();
}

std::string loadavg() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

void print_summary(const char* what, std::vector<double> v) {
  if (v.empty()) return;
  std::sort(v.begin(), v.end());
  double p50 = v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
  std::printf("  %-52s p50 %8.1f ms  min %8.1f ms  max %8.1f ms  (n=%zu)\n", what, p50, v.front(), v.back(),
              v.size());
}

struct session {
  api::endpoint ep;
  api::credentials creds;
  std::chrono::milliseconds poll;

  std::optional<std::string> call(api::signed_client& c, std::map<std::string, std::string> params,
                                  const std::string& want_tag) {
    std::string why;
    auto r = c.call(params, why);
    if (!r || r->status != 200) {
      std::fprintf(stderr, "%s failed: %s %s\n", params["Action"].c_str(), why.c_str(), r ? r->body.c_str() : "");
      return std::nullopt;
    }
    auto v = api::xml_texts(r->body, want_tag);
    return v.empty() ? std::string{} : v.front();
  }

  // Polls until pred(body of DescribeVolumes) holds; ms since t0, or -1 after 120 s.
  double until_volume(const std::string& id, clock_type::time_point t0,
                      const std::function<bool(const std::string&)>& pred) {
    api::signed_client c(ep, creds, "kumo-1");
    std::string why;
    while (ms_since(t0) < 120000) {
      auto started = clock_type::now();
      auto r = c.call({{"Action", "DescribeVolumes"}, {"VolumeId.1", id}}, why);
      if (r && r->status == 200 && pred(r->body)) return ms_since(t0);
      std::this_thread::sleep_until(started + poll);
    }
    return -1;
  }
};

bool has_status(const std::string& body, const std::string& s) {
  return body.find("<status>" + s + "</status>") != std::string::npos;
}

}  // namespace

int main(int argc, char** argv) {
  const int runs = argc > 1 ? std::atoi(argv[1]) : 10;
  const int poll_ms = argc > 2 ? std::atoi(argv[2]) : 10;
  const fs::path root = KUMO_SOURCE_DIR;
  const fs::path guest = fs::path(test::binary("kumod")).parent_path().parent_path() / "guest";
  for (const auto& [tool, args] : std::vector<std::pair<std::string, std::vector<std::string>>>{
           {"libvirtd", {}}, {"mkimage", {guest.string()}}}) {
    std::vector<std::string> cmd{(root / "tools" / tool).string()};
    cmd.insert(cmd.end(), args.begin(), args.end());
    if (auto r = test::run(cmd, std::chrono::minutes(10)); r.exit_code != 0) {
      std::fprintf(stderr, "tools/%s failed:\n%s\n", tool.c_str(), r.output.c_str());
      return 1;
    }
  }
  test::temp_dir dir;
  test::subprocess kumod({test::binary("kumod"), "--data-dir=" + dir.path(), "--listen=127.0.0.1:0",
                          "--hypervisor=libvirt", "--node-vcpus=4", "--node-memory-mib=2048",
                          "--node-disk-gib=200", "--stop-grace-seconds=10"});
  auto ready = kumod.wait_for("kumod ready", std::chrono::seconds(60));
  if (!ready) {
    std::fprintf(stderr, "kumod did not start:\n%s\n", kumod.transcript().c_str());
    return 1;
  }
  std::atomic<bool> done{false};
  std::thread drain([&] {  // kumod must never block on a full pipe
    while (!done) kumod.read_line(std::chrono::milliseconds(200));
  });
  std::smatch m;
  std::regex_search(*ready, m, std::regex(R"(http://127\.0\.0\.1:(\d+))"));
  std::string why;
  auto creds = api::read_credentials(dir.path() + "/admin-credentials", "kumo", why);
  if (!creds) return 1;
  session s{{"127.0.0.1", static_cast<uint16_t>(std::stoi(m[1]))}, *creds, std::chrono::milliseconds(poll_ms)};
  api::signed_client c(s.ep, s.creds, "kumo-1");

  std::string instance;
  int exit_code = 1;
  [&] {
    auto kernel = s.call(c, {{"Action", "RegisterImage"}, {"Name", "demo-kernel"},
                             {"ImageLocation", (guest / "vmlinuz").string()}}, "imageId");
    auto ramdisk = s.call(c, {{"Action", "RegisterImage"}, {"Name", "demo-ramdisk"},
                              {"ImageLocation", (guest / "initrd.img").string()}}, "imageId");
    if (!kernel || !ramdisk) return;
    auto image = s.call(c, {{"Action", "RegisterImage"}, {"Name", "demo"}, {"KernelId", *kernel},
                            {"RamdiskId", *ramdisk}}, "imageId");
    if (!image) return;
    auto iid = s.call(c, {{"Action", "RunInstances"}, {"ImageId", *image}, {"MinCount", "1"}, {"MaxCount", "1"},
                          {"InstanceType", "t1.micro"}}, "instanceId");
    if (!iid || iid->empty()) return;
    instance = *iid;
    auto console = [&]() -> std::string {
      std::string w;
      auto r = c.call({{"Action", "GetConsoleOutput"}, {"InstanceId", instance}}, w);
      auto out = r && r->status == 200 ? api::xml_texts(r->body, "output") : std::vector<std::string>{};
      auto text = out.empty() ? std::optional<std::string>{} : crypto::base64_decode(out.front());
      return text.value_or("");
    };
    auto count_lines = [&](const std::regex& re) {
      auto text = console();
      return std::distance(std::sregex_iterator(text.begin(), text.end(), re), std::sregex_iterator());
    };
    static const std::regex one_gib(R"(kumo-guest: disk vd[b-z] 1073741824\b)");
    static const std::regex removed(R"(kumo-guest: disk-removed vd[b-z])");
    auto disk_lines = [&] { return count_lines(one_gib); };
    auto t_boot = clock_type::now();
    while (console().find("kumo-guest: booted") == std::string::npos) {
      if (ms_since(t_boot) > 120000) {
        std::fprintf(stderr, "the guest did not boot\n");
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    std::printf("volumes: %d runs each; kumod all-in-one on 127.0.0.1:%u (libvirt, QEMU TCG), data dir %s\n", runs,
                s.ep.port, dir.path().c_str());
    std::printf("  DescribeVolumes polled every %d ms; %u cores; load average at start: %s\n", poll_ms,
                std::max(1u, std::thread::hardware_concurrency()), loadavg().c_str());

    for (uint64_t gib : {uint64_t{1}, uint64_t{100}}) {
      std::vector<double> reply, available;
      for (int i = 0; i < runs; ++i) {
        auto t0 = clock_type::now();
        auto vid = s.call(c, {{"Action", "CreateVolume"}, {"Size", std::to_string(gib)},
                              {"AvailabilityZone", "kumo-1a"}}, "volumeId");
        if (!vid || vid->empty()) return;
        reply.push_back(ms_since(t0));
        auto t = s.until_volume(*vid, t0, [](const std::string& b) { return has_status(b, "available"); });
        if (t < 0) return;
        available.push_back(t);
        if (!s.call(c, {{"Action", "DeleteVolume"}, {"VolumeId", *vid}}, "return")) return;
      }
      auto label = std::to_string(gib) + " GiB sparse: CreateVolume -> API reply (creating)";
      print_summary(label.c_str(), reply);
      label = std::to_string(gib) + " GiB sparse: CreateVolume -> available";
      print_summary(label.c_str(), available);
    }

    auto vid = s.call(c, {{"Action", "CreateVolume"}, {"Size", "1"}, {"AvailabilityZone", "kumo-1a"}}, "volumeId");
    if (!vid || s.until_volume(*vid, clock_type::now(), [](const std::string& b) { return has_status(b, "available"); }) < 0)
      return;
    std::vector<double> attached, in_guest, detached, gone_in_guest;
    for (int i = 0; i < runs; ++i) {
      auto before = disk_lines();
      auto t0 = clock_type::now();
      if (!s.call(c, {{"Action", "AttachVolume"}, {"VolumeId", *vid}, {"InstanceId", instance}, {"Device", "/dev/sdf"}},
                  "status"))
        return;
      auto t = s.until_volume(*vid, t0, [](const std::string& b) { return has_status(b, "attached"); });
      if (t < 0) return;
      attached.push_back(t);
      while (disk_lines() <= before && ms_since(t0) < 60000) std::this_thread::sleep_for(std::chrono::milliseconds(poll_ms));
      if (disk_lines() <= before) return;
      in_guest.push_back(ms_since(t0));
      auto removals = count_lines(removed);
      auto t1 = clock_type::now();
      if (!s.call(c, {{"Action", "DetachVolume"}, {"VolumeId", *vid}}, "status")) return;
      auto d = s.until_volume(*vid, t1, [](const std::string& b) {
        return has_status(b, "available") && b.find("<instanceId>") == std::string::npos;
      });
      if (d < 0) return;
      detached.push_back(d);
      // The guest polls /sys/block every second: the next attach waits until
      // it has seen this disk go, or it would not notice the disk coming back.
      while (count_lines(removed) <= removals && ms_since(t1) < 60000)
        std::this_thread::sleep_for(std::chrono::milliseconds(poll_ms));
      if (count_lines(removed) <= removals) return;
      gone_in_guest.push_back(ms_since(t1));
    }
    print_summary("1 GiB: AttachVolume -> attached (node hot-plug + report)", attached);
    print_summary("1 GiB: AttachVolume -> guest console shows the disk", in_guest);
    print_summary("1 GiB: DetachVolume -> available (guest released it)", detached);
    print_summary("1 GiB: DetachVolume -> guest console shows it gone", gone_in_guest);
    std::printf("  load average at the end: %s\n", loadavg().c_str());
    exit_code = 0;
  }();
  if (!instance.empty()) {
    std::string w;
    c.call({{"Action", "TerminateInstances"}, {"InstanceId.1", instance}}, w);
    for (int k = 0; k < 200 && test::run({virsh, "-c", "qemu:///system", "domstate", instance}).exit_code == 0; ++k)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    test::run({virsh, "-c", "qemu:///system", "destroy", instance});
    test::run({virsh, "-c", "qemu:///system", "undefine", instance});
  }
  done = true;
  drain.join();
  kumod.signal(SIGTERM);
  kumod.wait();
  if (exit_code) std::fprintf(stderr, "bench failed; kumod log:\n%s\n", kumod.transcript().c_str());
  return exit_code;
}
