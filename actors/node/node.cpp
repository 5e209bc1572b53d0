#include "actors/node/node.h"
#include "actors/node/volumes.h"

#include "actors/protocol/messages.h"
#include "actors/protocol/node.h"
#include "net/desired_state.h"
#include "process/child.h"

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <net/if.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>

namespace kumo::actors {
namespace {

namespace fs = std::filesystem;
using clock = std::chrono::steady_clock;
using hypervisor::domain_state;

enum observation : uint8_t { obs_running = 0, obs_shut_off = 1, obs_absent = 2, obs_failed = 3 };

struct node_state {
  node_config cfg;
  std::shared_ptr<hypervisor::driver> driver;
  std::function<caf::actor()> connect;  // finds the cluster (local handle or remote lookup)
  caf::actor cluster;                   // null while the cluster is unreachable
  bool registered = false;
  bool assigned = false;  // no orphan clean-up before the cluster has said what should exist
  std::map<std::string, desired_instance> desired;
  std::map<std::string, uint64_t> reboots_done;  // carried out here, not yet in the log
  std::map<std::string, clock::time_point> shutdown_sent;
  std::map<std::string, clock::time_point> orphan_since;
  std::set<std::string> waiting_for_network;  // instances whose bridge does not exist yet
  net::segment_mode segment_mode = net::segment_mode::vxlan;  // the cloud's, from the assignment
  static inline const char* name = "node";
};
using node_actor = caf::stateful_actor<node_state>;

fs::path instance_dir(const node_state& st, const std::string& id) {
  return fs::path(st.cfg.instances_dir) / id;
}

// The instance's own link (or copy) of an image file: deregistering the
// image later never breaks an instance that boots from it.
hypervisor::result pin_file(const std::string& src, const fs::path& dst) {
  std::error_code ec;
  if (fs::exists(dst, ec)) return hypervisor::result::success();
  fs::create_hard_link(src, dst, ec);
  if (ec) fs::copy_file(src, dst, ec);  // another file system
  if (ec) return hypervisor::result::failure("cannot take " + src + " for the instance: " + ec.message());
  return hypervisor::result::success();
}

// Creates the instance's root/ephemeral disk once: exactly disk_gib GiB,
// sparse. A disk image becomes a qcow2 overlay on it, so the image is shared.
hypervisor::result prepare_disk(const desired_instance& d, const fs::path& dir, hypervisor::disk_spec& disk) {
  const uint64_t bytes = d.disk_gib << 30;
  if (d.disk_image_path.empty()) {
    disk = {(dir / "disk.raw").string(), "vda", "raw", false};
    if (fs::exists(disk.path)) return hypervisor::result::success();
    int fd = ::open(disk.path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0 || ::ftruncate(fd, static_cast<off_t>(bytes)) != 0) {
      if (fd >= 0) ::close(fd);
      return hypervisor::result::failure("cannot create disk " + disk.path + ": " + std::strerror(errno));
    }
    ::close(fd);
    return hypervisor::result::success();
  }
  disk = {(dir / "disk.qcow2").string(), "vda", "qcow2", false};
  if (fs::exists(disk.path)) return hypervisor::result::success();
  const auto base = (dir / "base.img").string();
  if (auto r = pin_file(d.disk_image_path, base); !r) return r;
  std::ifstream image(base, std::ios::binary);
  char magic[4] = {};
  image.read(magic, 4);
  const std::string base_format = std::string(magic, 4) == "QFI\xfb" ? "qcow2" : "raw";
  const std::vector<std::string> argv{"qemu-img", "create", "-q", "-f", "qcow2", "-F", base_format,
                                      "-b", base, disk.path, std::to_string(bytes)};
  if (auto r = process::run(argv, std::chrono::minutes(1)); !r.ok())
    return hypervisor::result::failure("cannot create " + disk.path + " on " + base + ": " + r.failure(argv));
  return hypervisor::result::success();
}

hypervisor::result define_domain(node_state& st, const desired_instance& d) {
  auto dir = instance_dir(st, d.instance_id);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return hypervisor::result::failure("cannot create " + dir.string() + ": " + ec.message());
  hypervisor::domain_spec spec;
  spec.name = d.instance_id;
  spec.account_id = d.account_id;
  spec.instance_type = d.instance_type;
  spec.vcpus = static_cast<unsigned>(d.vcpus);
  spec.memory_mib = d.memory_mib;
  if (!d.kernel_path.empty()) {
    spec.kernel = (dir / "vmlinuz").string();
    if (auto r = pin_file(d.kernel_path, spec.kernel); !r) return r;
    spec.cmdline = "console=ttyS0 panic=-1 kumo.instance_id=" + d.instance_id;
  }
  if (!d.ramdisk_path.empty()) {
    spec.initrd = (dir / "initrd.img").string();
    if (auto r = pin_file(d.ramdisk_path, spec.initrd); !r) return r;
  }
  spec.console_log = (dir / "console.log").string();
  hypervisor::disk_spec disk;
  if (auto r = prepare_disk(d, dir, disk); !r) return r;
  spec.disks.push_back(disk);
  add_volume_disks(d, spec.disks);
  if (d.nic_vni != 0) spec.nics.push_back({d.nic_mac, net::bridge_name(d.nic_vni), d.nic_tap});
  return st.driver->define(spec);
}

void remove_files(node_state& st, const std::string& id) {
  std::error_code ec;
  fs::remove_all(instance_dir(st, id), ec);
  if (ec) spdlog::warn("node {}: could not remove files of {}: {}", st.cfg.node_id, id, ec.message());
}

observed_instance observe(const std::string& id, observation what, std::string detail = {}) {
  return {id, what, std::move(detail)};
}

// Starts (defining first if needed) a domain that should run.
observed_instance bring_up(node_state& st, const desired_instance& d, domain_state now) {
  std::string repair;
  if (now == domain_state::absent) {
    if (!d.first_boot) {
      repair = "node " + st.cfg.node_id + " recreated the domain, which had vanished while it should run";
      spdlog::warn("node {}: repair: {} should be running but has no domain; recreating it",
                   st.cfg.node_id, d.instance_id);
    }
    if (auto r = define_domain(st, d); !r) return observe(d.instance_id, obs_failed, r.message);
  }
  if (auto r = st.driver->start(d.instance_id); !r) return observe(d.instance_id, obs_failed, r.message);
  // A fresh boot fulfils every reboot request made so far.
  st.reboots_done[d.instance_id] = d.reboot_generation;
  spdlog::info("node {}: started {}", st.cfg.node_id, d.instance_id);
  auto seen = observe(d.instance_id, obs_running);
  seen.rebooted_generation = d.reboot_generation;
  seen.repair = std::move(repair);
  return seen;
}

observed_instance reconcile_one(node_state& st, const desired_instance& d, domain_state now) {
  const auto& id = d.instance_id;
  const bool up = now == domain_state::running || now == domain_state::paused ||
                  now == domain_state::shutting_down;
  switch (static_cast<desired_power>(d.power)) {
    case desired_power::run: {
      st.shutdown_sent.erase(id);
      if (!up) {
        // A guest that powered itself off is reported (it becomes stopped);
        // only a launch or start boots it, and a vanished domain is recreated.
        if (d.first_boot || now == domain_state::absent) return bring_up(st, d, now);
        return observe(id, obs_shut_off, "the guest powered off");
      }
      // The log says which reboots were carried out, so a request survives a
      // node restart (at worst a guest is rebooted twice, never not at all).
      auto& done = st.reboots_done[id];
      done = std::max(done, d.reboot_done);
      if (done < d.reboot_generation) {
        if (auto r = st.driver->reboot(id, true); !r)
          spdlog::warn("node {}: reboot of {} failed: {}", st.cfg.node_id, id, r.message);
        else
          spdlog::info("node {}: rebooted {}", st.cfg.node_id, id);
        done = d.reboot_generation;  // EC2 does not retry a failed reboot either
      }
      auto seen = observe(id, obs_running);
      seen.rebooted_generation = done;
      return seen;
    }
    case desired_power::stop: {
      if (!up) {
        st.shutdown_sent.erase(id);
        return observe(id, now == domain_state::absent ? obs_absent : obs_shut_off);
      }
      auto sent = st.shutdown_sent.find(id);
      if (d.force_stop || (sent != st.shutdown_sent.end() && clock::now() - sent->second >= st.cfg.stop_grace)) {
        if (auto r = st.driver->destroy(id); !r) return observe(id, obs_running, r.message);
        st.shutdown_sent.erase(id);
        return observe(id, obs_shut_off);
      }
      if (sent == st.shutdown_sent.end()) {
        if (auto r = st.driver->shutdown(id); !r)
          spdlog::warn("node {}: ACPI shutdown of {} failed: {}", st.cfg.node_id, id, r.message);
        st.shutdown_sent[id] = clock::now();
      }
      return observe(id, obs_running);
    }
    case desired_power::absent: {
      st.shutdown_sent.erase(id);
      st.reboots_done.erase(id);
      if (now != domain_state::absent) {
        if (auto r = st.driver->destroy(id); !r) return observe(id, obs_failed, r.message);
        if (auto r = st.driver->undefine(id); !r) return observe(id, obs_failed, r.message);
        spdlog::info("node {}: removed {}", st.cfg.node_id, id);
      }
      remove_files(st, id);
      return observe(id, obs_absent);
    }
  }
  return observe(id, obs_failed, "unknown desired power state");
}

// Destroys kumo domains nobody asked for, after a grace period, and says which.
std::vector<std::string> collect_orphans(node_state& st, const std::vector<hypervisor::domain_info>& domains) {
  std::vector<std::string> removed;
  std::map<std::string, clock::time_point> still;
  for (const auto& dom : domains) {
    if (!dom.kumo || st.desired.count(dom.name)) continue;
    auto since = st.orphan_since.count(dom.name) ? st.orphan_since[dom.name] : clock::now();
    if (clock::now() - since < st.cfg.orphan_grace) {
      still[dom.name] = since;
      continue;
    }
    spdlog::warn("node {}: repair: destroying domain {} (account {}): the log has no instance for it",
                 st.cfg.node_id, dom.name, dom.account_id);
    st.driver->destroy(dom.name);
    st.driver->undefine(dom.name);
    remove_files(st, dom.name);
    removed.push_back(dom.name);
  }
  st.orphan_since = std::move(still);
  return removed;
}

// The L2 this node's guests need: their segments' bridges (no address: the
// gateway is the cloud host's) and VXLAN/VLAN devices, and their taps.
net::network_view guest_links(const node_state& st) {
  net::network_view v;
  v.gateway = false;
  v.mode = st.segment_mode;
  v.physical_interface = st.cfg.net_interface;
  std::map<uint32_t, const desired_instance*> segments;
  for (const auto& [id, d] : st.desired) {
    if (d.nic_vni == 0 || static_cast<desired_power>(d.power) == desired_power::absent) continue;
    segments.emplace(d.nic_vni, &d);
    v.nics.push_back({id, d.nic_vni, d.nic_mac, d.nic_ip, "", d.nic_tap});
  }
  for (const auto& [vni, d] : segments) v.segments.push_back({vni, d->account_id, "", d->nic_subnet});
  return v;
}

void reconcile_links(node_state& st) {
  auto r = st.cfg.links->reconcile(guest_links(st));
  for (const auto& what : r.repairs) spdlog::info("node {}: network: {}", st.cfg.node_id, what);
  if (!r.ok) spdlog::error("node {}: network: {}", st.cfg.node_id, r.error);
}

node_report reconcile(node_state& st) {
  node_report report{st.cfg.node_id, {}};
  if (st.cfg.links && st.assigned) reconcile_links(st);
  auto domains = st.driver->list();
  std::map<std::string, domain_state> now;
  for (const auto& dom : domains) now[dom.name] = dom.state;
  for (const auto& [id, d] : st.desired) {
    auto it = now.find(id);
    // Managed networking creates the segment's bridge from the same log; a
    // guest that should run waits for it rather than failing to start.
    if (it == now.end() && d.nic_vni != 0 && static_cast<desired_power>(d.power) == desired_power::run &&
        if_nametoindex(net::bridge_name(d.nic_vni).c_str()) == 0) {
      if (st.waiting_for_network.insert(id).second)
        spdlog::info("node {}: {} waits for bridge {} before it boots", st.cfg.node_id, id, net::bridge_name(d.nic_vni));
      continue;
    }
    st.waiting_for_network.erase(id);
    auto seen = reconcile_one(st, d, it == now.end() ? domain_state::absent : it->second);
    if (static_cast<desired_power>(d.power) != desired_power::absent) reconcile_volumes(*st.driver, st.cfg.node_id, d, seen);
    report.instances.push_back(std::move(seen));
  }
  if (st.assigned) report.removed_domains = collect_orphans(st, domains);
  return report;
}

void reconcile_and_report(node_actor* self) {
  auto report = reconcile(self->state);
  if (self->state.registered) self->send(self->state.cluster, node_report_atom::value, std::move(report));
}

void try_register(node_actor* self) {
  auto& st = self->state;
  if (!st.cluster) {
    st.cluster = st.connect();
    if (!st.cluster) return;  // logged by connect(); tried again on the next tick
    self->monitor(st.cluster);
  }
  node_capacity cap{node_protocol_version, st.cfg.node_id, st.cfg.zone, st.cfg.vcpus, st.cfg.memory_mib, st.cfg.disk_gib,
                    st.driver->describe()};
  self->request(st.cluster, std::chrono::seconds(10), register_node_atom::value, cap,
                caf::actor_cast<caf::actor>(self))
      .then(
          [=](bool) {
            spdlog::info("node {}: registered with the cluster ({} vCPU, {} MiB, {} GiB, {})",
                         self->state.cfg.node_id, self->state.cfg.vcpus, self->state.cfg.memory_mib,
                         self->state.cfg.disk_gib, self->state.driver->describe());
            self->state.registered = true;
          },
          [=](caf::error& e) {
            spdlog::warn("node {}: cluster did not accept the registration ({}); retrying",
                         self->state.cfg.node_id, self->system().render(e));
          });
}

caf::behavior node_behavior(node_actor* self, node_config cfg,
                            std::shared_ptr<hypervisor::driver> driver,
                            std::function<caf::actor()> connect) {
  auto& st = self->state;
  st.cfg = std::move(cfg);
  st.driver = std::move(driver);
  st.connect = std::move(connect);
  // The cluster went away (its process stopped or the connection broke):
  // guests keep running; the node looks for the cluster again every tick.
  self->set_down_handler([=](caf::down_msg& dm) {
    auto& st = self->state;
    if (!st.cluster || dm.source != st.cluster.address()) return;
    spdlog::warn("node {}: lost the cluster ({}); guests keep running, reconnecting",
                 st.cfg.node_id, self->system().render(dm.reason));
    st.cluster = nullptr;
    st.registered = false;
  });
  caf::actor_addr me = self->address();
  st.driver->on_lifecycle([me](const hypervisor::lifecycle_event& ev) {
    if (auto a = caf::actor_cast<caf::actor>(me)) caf::anon_send(a, lifecycle_atom::value, ev.name);
  });
  spdlog::info("node {}: zone {}, hypervisor {}", st.cfg.node_id, st.cfg.zone, st.driver->describe());
  try_register(self);
  self->delayed_send(self, st.cfg.report_interval, tick_atom::value);
  return {
      [=](assign_atom, node_assignment& a) {
        auto& st = self->state;
        st.desired.clear();
        for (auto& d : a.instances) st.desired[d.instance_id] = std::move(d);
        st.segment_mode = static_cast<net::segment_mode>(a.segment_mode);
        st.assigned = true;
        // Only a cluster that accepted the registration assigns instances, and
        // it does so before its reply arrives: without this the first report
        // (with any repair made on start) would be dropped.
        st.registered = true;
        reconcile_and_report(self);
      },
      [=](lifecycle_atom, const std::string&) { reconcile_and_report(self); },
      [=](tick_atom) {
        if (!self->state.registered) try_register(self);
        reconcile_and_report(self);
        self->delayed_send(self, self->state.cfg.report_interval, tick_atom::value);
      },
      [=](console_atom, const std::string& instance_id) {
        return self->state.driver->console_output(instance_id);
      },
  };
}

}  // namespace

caf::actor spawn_node(caf::actor_system& sys, node_config cfg,
                      std::shared_ptr<hypervisor::driver> driver, std::function<caf::actor()> connect) {
  return sys.spawn<caf::detached>(node_behavior, std::move(cfg), std::move(driver), std::move(connect));
}

void detect_capacity(node_config& cfg) {
  // CPUs are overcommitted 4:1 by default (guests mostly idle); memory and
  // disk are not.
  if (!cfg.vcpus) cfg.vcpus = 4 * static_cast<uint64_t>(std::max(1L, ::sysconf(_SC_NPROCESSORS_ONLN)));
  if (!cfg.memory_mib)
    cfg.memory_mib = static_cast<uint64_t>(::sysconf(_SC_PHYS_PAGES)) *
                     static_cast<uint64_t>(::sysconf(_SC_PAGESIZE)) >> 20;
  if (!cfg.disk_gib) {
    struct statvfs v {};
    if (::statvfs(cfg.instances_dir.c_str(), &v) == 0)
      cfg.disk_gib = static_cast<uint64_t>(v.f_bavail) * v.f_frsize >> 30;
  }
}

}  // namespace kumo::actors
