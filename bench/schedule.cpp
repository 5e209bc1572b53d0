// bench/schedule: instances/s through RunInstances -> placed -> running, and
// DescribeInstances latency, at 10,000 instances on 100 fake nodes.
//
// Everything kumod's cloud role runs, in this one process: the event store
// (RocksDB in a temp dir, synced group commits), cloud_actors (journal,
// aggregates, views, the compute controller and the Zone ledger), 100 node
// actors each on its own fake driver (distinct node ids, capacity for 128
// m1.small each), the EC2 gateway and the Beast HTTP server on 127.0.0.1:0.
// The admin account is created through the account client like kumod's
// bootstrap; a fake kernel (a bzImage header) and a gzip ramdisk are
// registered through the API, then a machine image that boots them.
//
// Launch: C concurrent callers (one keep-alive connection each) send signed
// RunInstances with MinCount = MaxCount = 100 until N instances are launched.
// A probe actor subscribed to the journal (like any projection) timestamps
// every durable capacity_reserved, launched and state_changed->running event,
// so "placed", "launched" and "running" are the moments the events were
// committed, as the controller sees them. Then DescribeInstances is timed:
// the full listing, a MaxResults=1000 walk, and one instance by id; and the
// controller's list query alone (in-process, no HTTP/XML), to split the time.
//
// The load generator, the node actors and the cloud share the machine's cores
// (kumod's default: as many CAF workers as cores), and the node actors do the
// real file work a node does per instance (a directory, two hard links, a
// sparse disk file), so the figures are a floor.
//
// usage: bench_schedule [instances=10000] [callers=4] [pack|spread, default spread]
//        [describe calls=20]
#include "actors/account/account_actors.h"
#include "actors/cloud.h"
#include "actors/node/node.h"
#include "actors/protocol/messages.h"
#include "api/client.h"
#include "api/ec2.h"
#include "api/http_server.h"
#include "api/request_id.h"
#include "hypervisor/driver.h"
#include "persistence/event_store.h"
#include "tests/support/subprocess.h"

#include <caf/all.hpp>
#include <sys/resource.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>
#include <unordered_map>

using namespace kumo;
using namespace kumo::actors;
using clock_type = std::chrono::steady_clock;

namespace {

constexpr int node_count = 100;
constexpr int per_call = 100;  // RunInstances MaxCount (kumo's limit per call)
const std::string zone_name = "kumo-1a";

double ms_between(clock_type::time_point a, clock_type::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

std::string loadavg() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

// CPU seconds this process has used (all threads, user + system).
double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

struct stats {
  double p50 = 0, p99 = 0, min = 0, max = 0;
  size_t n = 0;
};
stats summarize(std::vector<double> v) {
  stats s;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  s.n = v.size();
  s.p50 = v[v.size() / 2];
  s.p99 = v[std::min(v.size() - 1, v.size() * 99 / 100)];
  s.min = v.front();
  s.max = v.back();
  return s;
}
void print_stats(const char* what, const stats& s, const char* unit = "ms") {
  std::printf("  %-52s p50 %8.2f %s  p99 %8.2f %s  min %8.2f  max %8.2f  (n=%zu)\n", what, s.p50, unit, s.p99,
              unit, s.min, s.max, s.n);
}

// What the journal committed, as its subscribers (the views) see it.
struct timeline {
  std::mutex m;
  uint64_t placed = 0, launched = 0, running = 0;
  clock_type::time_point first_placed, last_placed, first_launched, last_launched, first_running, last_running;
  std::unordered_map<std::string, clock_type::time_point> launched_at;  // by instance id
  std::vector<double> launch_to_running_ms;                             // per instance
  std::atomic<uint64_t> running_now{0};
  std::atomic<uint64_t> launched_now{0};
};

caf::behavior probe(caf::event_based_actor* self, caf::actor journal, std::shared_ptr<timeline> tl) {
  self->request(journal, caf::infinite, subscribe_atom::value, caf::actor_cast<caf::actor>(self))
      .then([](uint64_t) {});
  return {
      [=](committed_atom, const committed_events& events) {
        const auto now = clock_type::now();
        std::lock_guard lock(tl->m);
        for (const auto& r : events) {
          if (r.type == "capacity_reserved" && r.stream.rfind("zone/", 0) == 0) {
            zone::event ev;
            if (!zone::aggregate::decode(r, ev).ok()) continue;
            if (!tl->placed) tl->first_placed = now;
            tl->placed += std::get<zone::capacity_reserved>(ev).placements.size();
            tl->last_placed = now;
          } else if (r.stream.rfind("instance/", 0) == 0) {
            const auto id = r.stream.substr(r.stream.rfind('/') + 1);
            if (r.type == "launched") {
              if (!tl->launched) tl->first_launched = now;
              ++tl->launched;
              tl->last_launched = now;
              tl->launched_at[id] = now;
              tl->launched_now = tl->launched;
            } else if (r.type == "state_changed") {
              instance::event ev;
              if (!instance::aggregate::decode(r, ev).ok()) continue;
              if (std::get<instance::state_changed>(ev).to != instance::lifecycle::running) continue;
              if (!tl->running) tl->first_running = now;
              ++tl->running;
              tl->last_running = now;
              if (auto it = tl->launched_at.find(id); it != tl->launched_at.end())
                tl->launch_to_running_ms.push_back(ms_between(it->second, now));
              tl->running_now = tl->running;
            }
          }
        }
      },
  };
}

bool write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return static_cast<bool>(out);
}

// What a Linux bzImage looks like to kumo: the "HdrS" magic at 0x202.
std::string fake_bzimage() {
  std::string data(8192, '\0');
  data.replace(0x202, 4, "HdrS");
  return data;
}

uint32_t crc32(const std::string& data) {
  uint32_t c = 0xffffffffu;
  for (unsigned char b : data) {
    c ^= b;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
  }
  return ~c;
}

// A valid gzip file (one stored deflate block) holding an empty newc cpio
// archive: what `gunzip | cpio -t` accepts as an initramfs.
std::string fake_initramfs() {
  std::string cpio = "070701" + std::string(104, '0') + "TRAILER!!!" + std::string(1, '\0');
  std::string g = {'\x1f', '\x8b', '\x08', '\0', '\0', '\0', '\0', '\0', '\0', '\x03'};
  const auto len = static_cast<uint16_t>(cpio.size());
  g += {'\x01', char(len & 0xff), char(len >> 8), char(~len & 0xff), char((~len >> 8) & 0xff)};
  g += cpio;
  for (uint32_t v : {crc32(cpio), static_cast<uint32_t>(cpio.size())})
    for (int k = 0; k < 4; ++k) g += char((v >> (8 * k)) & 0xff);
  return g;
}

std::optional<std::string> call_for(api::signed_client& c, const std::map<std::string, std::string>& params,
                                    const std::string& tag) {
  std::string why;
  auto r = c.call(params, why);
  if (!r || r->status != 200) {
    std::fprintf(stderr, "%s failed: %s %s\n", params.at("Action").c_str(), why.c_str(),
                 r ? r->body.c_str() : "");
    return std::nullopt;
  }
  auto texts = api::xml_texts(r->body, tag);
  if (texts.empty()) {
    std::fprintf(stderr, "%s: no <%s> in %s\n", params.at("Action").c_str(), tag.c_str(), r->body.c_str());
    return std::nullopt;
  }
  return texts.front();
}

size_t count_of(const std::string& body, const std::string& needle) {
  size_t n = 0;
  for (size_t at = 0; (at = body.find(needle, at)) != std::string::npos; at += needle.size()) ++n;
  return n;
}

struct options {
  int instances = 10000;
  int callers = 4;
  bool spread = true;
  int describe_calls = 20;
  uint64_t per_node = 128;  // m1.small capacity of each node
};

// The cloud role, 100 nodes, the gateway and the HTTP endpoint in this process.
struct cloud_under_test {
  caf::actor_system& sys;
  cloud_actors cloud;
  compute_config cc;
  std::shared_ptr<timeline> tl = std::make_shared<timeline>();
  caf::actor prober;
  std::vector<caf::actor> nodes;
  caf::actor gateway;
  std::unique_ptr<api::http_server> http;
  api::endpoint ep;
  api::credentials creds;
  std::string account_id;
  std::string image_id;

  explicit cloud_under_test(caf::actor_system& s) : sys(s) {}
  // Every way out goes through here: the actor system waits for every actor
  // (the nodes tick forever) when it is destroyed.
  ~cloud_under_test() {
    if (http) http->stop();
    for (auto* a : {&gateway, &prober})
      if (*a) caf::anon_send_exit(*a, caf::exit_reason::user_shutdown);
    for (auto& n : nodes) caf::anon_send_exit(n, caf::exit_reason::user_shutdown);
    nodes.clear();  // a detached actor's thread ends only when its last handle goes
    gateway = nullptr;
    prober = nullptr;
    if (cloud.journal) cloud.shutdown(sys);
  }

  bool start(persistence::event_store& store, const std::string& data_dir, const options& o) {
    cc.zones = {zone_name};
    cc.placement = o.spread ? zone::policy::spread : zone::policy::pack;
    cloud = cloud_actors::spawn(sys, store, cc);
    prober = sys.spawn(probe, cloud.journal, tl);
    for (int i = 0; i < node_count; ++i) {
      node_config nc;
      char id[32];
      std::snprintf(id, sizeof id, "node-%03d", i);
      nc.node_id = id;
      nc.zone = zone_name;
      nc.instances_dir = data_dir + "/instances/" + id;
      std::filesystem::create_directories(nc.instances_dir);
      nc.vcpus = o.per_node;
      nc.memory_mib = o.per_node * 256;
      nc.disk_gib = o.per_node * 5;
      std::shared_ptr<hypervisor::driver> driver = hypervisor::make_fake_driver();
      nodes.push_back(spawn_node(sys, nc, driver, [c = cloud.compute] { return c; }));
    }
    // Registration is asynchronous: wait until the Zone ledger has them all.
    caf::scoped_actor self{sys};
    auto deadline = clock_type::now() + std::chrono::seconds(60);
    size_t known = 0;
    while (known < node_count && clock_type::now() < deadline) {
      self->request(cloud.zones, std::chrono::seconds(10), zone_name, get_state_atom::value)
          .receive([&](zone_reply& r) { known = r.state.nodes.size(); }, [](caf::error&) {});
      if (known < node_count) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (known < node_count) {
      std::fprintf(stderr, "only %zu of %d nodes registered\n", known, node_count);
      return false;
    }
    // The controller marks a node available right after the ledger answers it.
    std::this_thread::sleep_for(std::chrono::milliseconds(200));

    // The admin account, as kumod's bootstrap makes it.
    actors::account::client accounts{sys, cloud.accounts, cloud.accounts_view};
    auto r = accounts.create("admin", true, {"kumo:bootstrap", api::new_request_id()});
    if (r.error) {
      std::fprintf(stderr, "admin account: %s\n", r.error->message.c_str());
      return false;
    }
    creds = {r.state.keys.front().access_key_id, r.state.keys.front().secret_access_key};
    account_id = r.state.account_id;

    gateway = api::spawn_ec2_gateway(sys, cloud, {"kumo-1", {zone_name}, data_dir, default_instance_types()});
    api::http_config hc;
    hc.address = "127.0.0.1";
    hc.port = 0;
    hc.handler = [g = gateway](api::http_parts req, std::string rid, api::reply_fn done) {
      api::submit(g, std::move(req), std::move(rid), std::move(done));
    };
    std::string error;
    http = api::http_server::start(hc, error);
    if (!http) {
      std::fprintf(stderr, "http: %s\n", error.c_str());
      return false;
    }
    ep = {"127.0.0.1", http->port()};

    // Images: a fake kernel and ramdisk (real files, copied into the image
    // store), and a machine image that boots them.
    write_file(data_dir + "/vmlinuz", fake_bzimage());
    write_file(data_dir + "/initrd.img", fake_initramfs());
    api::signed_client c(ep, creds, "kumo-1");
    auto kernel = call_for(c, {{"Action", "RegisterImage"}, {"Name", "bench-kernel"},
                               {"ImageLocation", data_dir + "/vmlinuz"}}, "imageId");
    auto ramdisk = call_for(c, {{"Action", "RegisterImage"}, {"Name", "bench-ramdisk"},
                                {"ImageLocation", data_dir + "/initrd.img"}}, "imageId");
    if (!kernel || !ramdisk) return false;
    auto machine = call_for(c, {{"Action", "RegisterImage"}, {"Name", "bench-machine"},
                                {"KernelId", *kernel}, {"RamdiskId", *ramdisk}}, "imageId");
    if (!machine) return false;
    image_id = *machine;
    std::printf("  images: kernel %s, ramdisk %s, machine %s\n", kernel->c_str(), ramdisk->c_str(),
                image_id.c_str());
    return true;
  }

  // RunInstances x100 from `callers` threads until o.instances are launched;
  // then waits until all are durably running. Returns how many were launched.
  uint64_t launch(const options& o) {
    const int calls = (o.instances + per_call - 1) / per_call;
    std::atomic<int> next_call{0};
    std::atomic<uint64_t> acked{0}, failures{0};
    std::vector<std::vector<double>> call_ms(o.callers);
    std::mutex first_error_mutex;
    std::string first_error;
    const double cpu_at_start = cpu_seconds();
    const auto launch_start = clock_type::now();
    std::vector<std::thread> threads;
    for (int t = 0; t < o.callers; ++t)
      threads.emplace_back([&, t] {
        api::signed_client c(ep, creds, "kumo-1");
        std::string why;
        const std::string count = std::to_string(per_call);
        while (next_call++ < calls) {
          auto t0 = clock_type::now();
          auto r = c.call({{"Action", "RunInstances"}, {"ImageId", image_id}, {"MinCount", count},
                           {"MaxCount", count}, {"InstanceType", "m1.small"}},
                          why);
          call_ms[t].push_back(ms_between(t0, clock_type::now()));
          size_t got = r && r->status == 200 ? count_of(r->body, "<instanceId>") : 0;
          if (got != static_cast<size_t>(per_call)) {
            failures++;
            std::lock_guard lock(first_error_mutex);
            if (first_error.empty()) first_error = r ? r->body.substr(0, 400) : why;
          }
          acked += got;
        }
      });
    // Progress, once a second: what the API acknowledged, what is durable.
    std::atomic<bool> launching{true};
    std::thread progress([&] {
      auto next = launch_start + std::chrono::seconds(1);
      while (launching) {
        std::this_thread::sleep_until(next);
        next += std::chrono::seconds(1);
        if (!launching) break;
        std::printf("    t=%5.1f s  acknowledged %6llu  launched %6llu  running %6llu  load %s\n",
                    ms_between(launch_start, clock_type::now()) / 1000, (unsigned long long)acked.load(),
                    (unsigned long long)tl->launched_now.load(), (unsigned long long)tl->running_now.load(),
                    loadavg().c_str());
        std::fflush(stdout);
      }
    });
    for (auto& th : threads) th.join();
    const auto acked_all = clock_type::now();
    const uint64_t total = acked.load();
    auto deadline = acked_all + std::chrono::minutes(10);
    while (tl->running_now < total && clock_type::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    const auto running_all = clock_type::now();
    const double cpu_launch = cpu_seconds() - cpu_at_start;
    launching = false;
    progress.join();

    std::vector<double> all_calls;
    for (auto& v : call_ms) all_calls.insert(all_calls.end(), v.begin(), v.end());
    const double ack_s = ms_between(launch_start, acked_all) / 1000;
    const double run_s = ms_between(launch_start, running_all) / 1000;
    std::printf("  launch: %llu of %d instances acknowledged by RunInstances in %.2f s (%d calls, %llu failed)%s%s\n",
                (unsigned long long)total, o.instances, ack_s, calls, (unsigned long long)failures.load(),
                first_error.empty() ? "" : "; first failure: ", first_error.c_str());
    {
      std::lock_guard lock(tl->m);
      std::printf("  durable events seen by a journal subscriber (times from the first RunInstances sent):\n");
      std::printf("    placed   (capacity_reserved) %6llu  first %7.3f s  last %7.3f s\n",
                  (unsigned long long)tl->placed, ms_between(launch_start, tl->first_placed) / 1000,
                  ms_between(launch_start, tl->last_placed) / 1000);
      std::printf("    launched (launched)          %6llu  first %7.3f s  last %7.3f s\n",
                  (unsigned long long)tl->launched, ms_between(launch_start, tl->first_launched) / 1000,
                  ms_between(launch_start, tl->last_launched) / 1000);
      std::printf("    running  (state_changed)     %6llu  first %7.3f s  last %7.3f s\n",
                  (unsigned long long)tl->running, ms_between(launch_start, tl->first_running) / 1000,
                  ms_between(launch_start, tl->last_running) / 1000);
    }
    std::printf("  => placement + launch (API acknowledged): %8.0f instances/s\n", total / ack_s);
    std::printf("  => to running (all %llu durable running):  %8.0f instances/s  (goal >= 1,000)\n",
                (unsigned long long)total, tl->running_now < total ? 0.0 : total / run_s);
    print_stats("RunInstances x100 call latency", summarize(all_calls));
    {
      std::lock_guard lock(tl->m);
      print_stats("per instance: launched -> running (both durable)", summarize(tl->launch_to_running_ms));
    }
    std::printf("  CPU used by this process (cloud, nodes, HTTP and the %d client threads) while launching: "
                "%.1f s over %.1f s = %.2f of %u cores\n",
                o.callers, cpu_launch, run_s, cpu_launch / run_s, std::max(1u, std::thread::hardware_concurrency()));
    std::printf("  load average after launching: %s\n", loadavg().c_str());
    return tl->running_now < total ? 0 : total;
  }

  // What idle instances cost (controller resyncs with full desired sets, node
  // reports), and how long one controller checkpoint blocks the controller.
  void background_costs(uint64_t total) {
    const double c0 = cpu_seconds();
    const auto w0 = clock_type::now();
    std::this_thread::sleep_for(std::chrono::seconds(6));
    const double idle = (cpu_seconds() - c0) / (ms_between(w0, clock_type::now()) / 1000);
    std::printf("  idle cost with %llu running instances (no API calls, 6 s): %.2f cores busy "
                "(controller resync every %lld ms + %d node reports per %lld ms)\n",
                (unsigned long long)total, idle, (long long)cc.resync_interval.count(), node_count,
                (long long)node_config{}.report_interval.count());

    // A checkpoint is written every 10,000 events and every 5 s after any
    // event. Flush, add one event (a security group), then time one.
    caf::scoped_actor self{sys};
    uint64_t before = 0, applied = 0, after = 0;
    self->request(cloud.compute, std::chrono::seconds(60), checkpoint_atom::value)
        .receive([&](uint64_t at) { before = at; }, [](caf::error&) {});
    api::signed_client c(ep, creds, "kumo-1");
    std::string why;
    c.call({{"Action", "CreateSecurityGroup"}, {"GroupName", "bench"}, {"GroupDescription", "bench"}}, why);
    for (int i = 0; i < 500 && applied <= before; ++i) {
      self->request(cloud.compute, std::chrono::seconds(60), applied_atom::value)
          .receive([&](uint64_t at) { applied = at; }, [](caf::error&) {});
      if (applied <= before) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    auto t0 = clock_type::now();
    self->request(cloud.compute, std::chrono::seconds(60), checkpoint_atom::value)
        .receive([&](uint64_t at) { after = at; }, [](caf::error&) {});
    if (after > before)
      std::printf("  controller checkpoint with %llu instances (JSON of the whole view + RocksDB put), "
                  "during which the controller answers nothing: %.1f ms\n",
                  (unsigned long long)total, ms_between(t0, clock_type::now()));
  }

  void describe(uint64_t total, int calls) {
    std::printf("  DescribeInstances with %llu instances in the account, %d calls each, one connection, "
                "no other API calls:\n", (unsigned long long)total, calls);
    {
      caf::scoped_actor self{sys};
      std::vector<double> v;
      size_t listed = 0, running = 0;
      for (int i = 0; i < calls; ++i) {
        auto t0 = clock_type::now();
        self->request(cloud.compute, std::chrono::seconds(60), list_instances_atom::value, account_id, uint64_t{0})
            .receive(
                [&](std::vector<instance_view>& all) {
                  listed = all.size();
                  running = std::count_if(all.begin(), all.end(), [](const instance_view& x) {
                    return x.state.status == instance::lifecycle::running;
                  });
                },
                [&](caf::error& e) { std::fprintf(stderr, "list: %s\n", sys.render(e).c_str()); });
        v.push_back(ms_between(t0, clock_type::now()));
      }
      std::printf("    controller list query alone (in-process, no HTTP/XML): %zu listed, %zu running\n", listed,
                  running);
      print_stats("  (list_instances_atom -> vector<instance_view>)", summarize(v));
    }
    api::signed_client c(ep, creds, "kumo-1");
    std::string why;
    auto timed = [&](const std::map<std::string, std::string>& params, std::string& body) {
      auto t0 = clock_type::now();
      auto r = c.call(params, why);
      double ms = ms_between(t0, clock_type::now());
      body.clear();
      if (!r || r->status != 200)
        std::fprintf(stderr, "DescribeInstances failed: %s %s\n", why.c_str(),
                     r ? r->body.substr(0, 300).c_str() : "");
      else
        body = std::move(r->body);
      return ms;
    };
    std::vector<double> full, one, page, walk;
    size_t items = 0, pages = 0, page_bytes = 0, walked = 0, bytes = 0;
    std::string body, some_id;
    for (int i = 0; i < calls; ++i) {
      full.push_back(timed({{"Action", "DescribeInstances"}}, body));
      items = count_of(body, "<instanceId>");
      bytes = body.size();
      if (some_id.empty())
        if (auto ids = api::xml_texts(body, "instanceId"); !ids.empty()) some_id = ids[ids.size() / 2];
    }
    std::printf("    full listing: %zu instances, %.1f MiB of XML per reply\n", items, bytes / 1048576.0);
    print_stats("  DescribeInstances (all, no MaxResults)", summarize(full));
    for (int i = 0; i < calls; ++i) {
      auto t0 = clock_type::now();
      std::string token;
      walked = 0;
      pages = 0;
      do {
        std::map<std::string, std::string> params{{"Action", "DescribeInstances"}, {"MaxResults", "1000"}};
        if (!token.empty()) params["NextToken"] = token;
        page.push_back(timed(params, body));
        page_bytes = body.size();
        walked += count_of(body, "<instanceId>");
        ++pages;
        auto next = api::xml_texts(body, "nextToken");
        token = next.empty() ? "" : next.front();
      } while (!token.empty());
      walk.push_back(ms_between(t0, clock_type::now()));
    }
    std::printf("    MaxResults=1000: %zu pages, %zu instances per walk, ~%.1f MiB per page\n", pages, walked,
                page_bytes / 1048576.0);
    print_stats("  DescribeInstances (one page of 1000)", summarize(page));
    print_stats("  DescribeInstances (walk of all pages)", summarize(walk));
    for (int i = 0; i < calls; ++i)
      one.push_back(timed({{"Action", "DescribeInstances"}, {"InstanceId.1", some_id}}, body));
    print_stats("  DescribeInstances (InstanceId.1 = one instance)", summarize(one));
    std::printf("    (goal: DescribeInstances p50 < 50 ms at 10,000 instances)\n");
  }

  void journal_stats_line() {
    caf::scoped_actor self{sys};
    self->request(cloud.journal, std::chrono::seconds(10), stats_atom::value)
        .receive(
            [&](journal_stats& js) {
              std::printf("  journal: %llu events in %llu appends, %llu synced batches (largest: %llu appends)\n",
                          (unsigned long long)js.events, (unsigned long long)js.appends,
                          (unsigned long long)js.batches, (unsigned long long)js.largest_batch);
            },
            [](caf::error&) {});
  }
};

}  // namespace

int main(int argc, char** argv) {
  options o;
  if (argc > 1) o.instances = std::atoi(argv[1]);
  if (argc > 2) o.callers = std::max(1, std::atoi(argv[2]));
  if (argc > 3) o.spread = std::string(argv[3]) != "pack";
  if (argc > 4) o.describe_calls = std::max(1, std::atoi(argv[4]));
  // m1.small = 1 vCPU, 256 MiB, 5 GiB: at least 128 per node (12,800 in the
  // zone), and a quarter more than asked for in all.
  o.per_node = std::max<uint64_t>(128, (o.instances * 5 / 4 + node_count - 1) / node_count);

  test::temp_dir dir;
  const std::string data_dir = dir.path();
  // kumod logs one line per request and per domain started: keep that cost,
  // but in a file.
  auto logger = spdlog::basic_logger_mt("kumod", data_dir + "/kumod.log");
  logger->set_level(spdlog::level::info);
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(logger);

  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  std::printf("schedule: %d instances (m1.small) via RunInstances x%d per call, %d concurrent callers, "
              "%d fake nodes x %llu instances of capacity, placement %s\n",
              o.instances, per_call, o.callers, node_count, (unsigned long long)o.per_node,
              o.spread ? "spread" : "pack");
  std::printf("  in-process: RocksDB event store in %s (synced group commits), cloud actors, %d node actors "
              "(detached, one fake driver each), EC2 gateway + HTTP on 127.0.0.1; %u cores, "
              "CAF scheduler.max-threads=%u; load average at start: %s\n",
              data_dir.c_str(), node_count, cores, std::max(2u, cores), loadavg().c_str());

  persistence::status st;
  auto store = persistence::event_store::open(data_dir + "/events", persistence::open_mode::read_write, st);
  if (!store) {
    std::fprintf(stderr, "event store: %s\n", st.message.c_str());
    return 1;
  }
  caf::actor_system_config caf_cfg;
  caf_cfg.set("scheduler.max-threads", std::max(2u, cores));  // kumod's default
  int exit_code = 1;
  {
    caf::actor_system sys{caf_cfg};
    cloud_under_test c{sys};
    if (c.start(*store, data_dir, o)) {
      if (auto total = c.launch(o)) {
        c.background_costs(total);
        c.describe(total, o.describe_calls);
        if (total == static_cast<uint64_t>(o.instances)) exit_code = 0;
      }
      c.journal_stats_line();
      std::printf("  load average at the end: %s\n", loadavg().c_str());
    }
  }  // stops every actor; the actor system waits for them
  store.reset();
  spdlog::shutdown();
  return exit_code;
}
