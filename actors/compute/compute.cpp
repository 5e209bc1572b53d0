#include "actors/compute/compute.h"

#include "actors/network/segment.h"
#include "actors/runtime/aggregate.h"
#include "actors/runtime/aggregate_view.h"
#include "actors/runtime/projection.h"
#include "actors/storage/attachments.h"
#include "actors/storage/storage_actors.h"
#include "net/desired_state.h"
#include "persistence/time_format.h"

#include <set>

namespace kumo::actors {
namespace {

using clock = std::chrono::steady_clock;
using reconcile_atom = caf::atom_constant<caf::atom("reconcile")>;
using instance::lifecycle;

constexpr auto request_timeout = std::chrono::seconds(30);
// Every this many resyncs, reservations of instances that are gone are released.
constexpr int sweep_every = 15;

struct node_entry {
  caf::actor handle;
  node_capacity capacity;
  clock::time_point last_seen;
  bool available = false;
};

// The read model: every instance, indexed by node and by instance id. The
// members after `by_instance_id` are the controller's runtime view of the
// cluster; they are not checkpointed (nodes re-register, reports repeat).
struct compute_model {
  static constexpr const char* name = "compute";
  static constexpr uint32_t state_version = 4;

  aggregate_view<instance::aggregate> instances;
  // The network segments, for each instance's NIC. RunInstances records the
  // NIC before the instance, so the launch event re-pushes with it.
  aggregate_view<segment::aggregate> segments;
  storage::attachment_index attachments;  // volumes attached to instances
  std::map<std::string, std::set<std::string>> by_node;  // node id -> aggregate ids
  std::map<std::string, std::string> by_instance_id;     // i-... -> aggregate id

  std::set<std::string> dirty_nodes;  // desired sets changed since the last push
  std::vector<std::pair<std::string, std::string>> to_release;  // (zone, instance id)
  std::map<std::string, node_entry> nodes;
  std::set<std::string> in_flight;  // instances with an observe command on its way
  int resyncs = 0;

  void index(const std::string& id, const instance::state& s) {
    by_node[s.spec.node_id].insert(id);
    by_instance_id[s.spec.instance_id] = id;
  }

  void apply(const persistence::event_record& r) {
    static const std::string prefix = std::string(instance::aggregate::kind) + "/";
    instances.apply(r);
    segments.apply(r);
    for (const auto& instance_id : attachments.apply(r)) {
      auto it = by_instance_id.find(instance_id);
      if (const auto* s = it == by_instance_id.end() ? nullptr : instances.find(it->second))
        dirty_nodes.insert(s->spec.node_id);
    }
    if (r.stream.compare(0, prefix.size(), prefix) != 0) return;
    const auto id = r.stream.substr(prefix.size());
    const auto* s = instances.find(id);
    if (!s) return;
    index(id, *s);
    dirty_nodes.insert(s->spec.node_id);
    if (s->status == lifecycle::terminated && r.type == "state_changed")
      to_release.emplace_back(s->spec.zone, s->spec.instance_id);
  }

  std::string save() const {
    return nlohmann::json{{"instances", instances.save()}, {"volumes", attachments.save()}, {"segments", segments.save()}}
        .dump();
  }
  bool load(const std::string& text) {
    auto j = nlohmann::json::parse(text, nullptr, false);
    if (!j.is_object() || !j.contains("instances") || !j.contains("volumes") || !j.contains("segments")) return false;
    if (!instances.load(j["instances"].get<std::string>()) || !attachments.load(j["volumes"].get<std::string>()) ||
        !segments.load(j["segments"].get<std::string>()))
      return false;
    instances.for_each([&](const std::string& id, const instance::state& s) { index(id, s); });
    return true;
  }
};

using controller_actor = caf::stateful_actor<projection_state<compute_model>>;

desired_instance desired_of(const instance::state& s) {
  desired_instance d;
  d.instance_id = s.spec.instance_id;
  d.account_id = s.spec.account_id;
  d.instance_type = s.spec.size.instance_type;
  d.vcpus = s.spec.size.vcpus;
  d.memory_mib = s.spec.size.memory_mib;
  d.disk_gib = s.spec.size.disk_gib;
  d.kernel_path = s.spec.kernel_path;
  d.ramdisk_path = s.spec.ramdisk_path;
  d.disk_image_path = s.spec.disk_image_path;
  switch (s.status) {
    case lifecycle::pending:
    case lifecycle::running: d.power = static_cast<uint8_t>(desired_power::run); break;
    case lifecycle::stopping:
    case lifecycle::stopped: d.power = static_cast<uint8_t>(desired_power::stop); break;
    case lifecycle::shutting_down:
    case lifecycle::terminated: d.power = static_cast<uint8_t>(desired_power::absent); break;
  }
  d.first_boot = s.status == lifecycle::pending;
  d.force_stop = s.stop_forced;
  d.reboot_generation = s.reboot_generation;
  d.reboot_done = s.reboot_done;
  return d;
}

bool forgotten(const instance::state& s, const compute_config& cfg) {
  return s.status == lifecycle::terminated &&
         persistence::now_ms() - s.changed_ms >
             std::chrono::duration_cast<std::chrono::milliseconds>(cfg.terminated_visible).count();
}

// The instance's NIC and the segment it is on, when it has one.
std::pair<const segment::state*, const segment::nic*> nic_of(const compute_model& m, const instance::launch_spec& spec) {
  const auto* seg = m.segments.find(segment::id_of_instance(spec.account_id, spec.security_group_ids));
  if (!seg || !seg->active()) return {};
  auto it = seg->nics.find(spec.instance_id);
  return it == seg->nics.end() ? std::pair<const segment::state*, const segment::nic*>{} : std::pair{seg, &it->second};
}

// Sends a node its full desired set.
void push(controller_actor* self, const std::string& node_id, const compute_config& cfg) {
  // A model behind the log would tell the node to drop guests (and their links) it should keep.
  if (self->state.stuck) return;
  auto& m = self->state.model;
  auto node = m.nodes.find(node_id);
  if (node == m.nodes.end() || !node->second.handle) return;
  node_assignment a;
  for (const auto& id : m.by_node[node_id])
    if (const auto* s = m.instances.find(id); s && !forgotten(*s, cfg)) {
      a.instances.push_back(desired_of(*s));
      if (auto [seg, nic] = nic_of(m, s->spec); cfg.attach_nics && nic) {
        a.instances.back().nic_mac = nic->mac;
        a.instances.back().nic_tap = nic->tap;
        a.instances.back().nic_vni = seg->current.vni;
        a.instances.back().nic_subnet = seg->current.subnet;
        a.instances.back().nic_ip = nic->private_ip;
      }
      a.instances.back().volumes = storage::desired_volumes(m.attachments.of_instance(s->spec.instance_id));
    }
  a.segment_mode = cfg.segment_mode;
  self->send(node->second.handle, assign_atom::value, std::move(a));
}

void release(controller_actor* self, const caf::actor& zones, const std::string& zone,
             const std::string& instance_id) {
  self->request(zones, request_timeout, zone, zone::command{zone::release{instance_id}},
                request_meta{"kumo:cluster", "release-" + instance_id})
      .then([=](zone_reply& r) {
              if (r.error) spdlog::warn("zone {}: releasing {} failed: {}", zone, instance_id, r.error->message);
            },
            [=](caf::error& e) {
              spdlog::warn("zone {}: releasing {} failed: {}; retried by the next sweep", zone,
                           instance_id, self->system().render(e));
            });
}

// Releases reservations whose instance terminated or never launched (a crash
// between placement and launch): level-triggered, so nothing leaks for long.
void sweep_reservations(controller_actor* self, const caf::actor& zones, const compute_config& cfg) {
  for (const auto& z : cfg.zones)
    self->request(zones, request_timeout, z, get_state_atom::value).then([=](zone_reply& r) {
      if (r.error) return;
      const auto& m = self->state.model;
      const auto now = persistence::now_ms();
      for (const auto& [instance_id, res] : r.state.reservations) {
        auto it = m.by_instance_id.find(instance_id);
        const auto* s = it == m.by_instance_id.end() ? nullptr : m.instances.find(it->second);
        bool gone = s ? s->status == lifecycle::terminated : now - res.reserved_ms > 5 * 60 * 1000;
        if (gone) release(self, zones, z, instance_id);
      }
    });
}

// Sends the Volume aggregates what an instance's state or its node's report
// implies for the volumes attached to it (see storage::attachment_orders).
void order_attachments(controller_actor* self, const caf::actor& volumes, const instance::state& s,
                       const std::vector<std::string>* node_has) {
  auto& m = self->state.model;
  if (!volumes) return;
  const bool gone = s.status == lifecycle::terminated;
  for (auto& o : storage::attachment_orders(gone, m.attachments.of_instance(s.spec.instance_id), node_has)) {
    if (!m.attachments.in_flight.insert(o.volume_id).second) continue;
    auto id = o.volume_id;
    self->request(volumes, request_timeout, id, std::move(o.cmd),
                  request_meta{"kumo:cluster", "attachment-" + s.spec.instance_id})
        .then(
            [=](volume_reply& r) {
              self->state.model.attachments.in_flight.erase(id);
              if (r.error) spdlog::warn("volume {}: attachment report not applied: {}", id, r.error->message);
            },
            [=](caf::error& e) {
              self->state.model.attachments.in_flight.erase(id);
              spdlog::warn("volume {}: attachment report not applied: {}", id, self->system().render(e));
            });
  }
}

// Volumes still attached to terminated instances are detached (and deleted
// when they were to be deleted on termination).
void release_volumes_of_terminated(controller_actor* self, const caf::actor& volumes) {
  auto& m = self->state.model;
  for (const auto& instance_id : m.attachments.instances()) {
    auto it = m.by_instance_id.find(instance_id);
    const auto* s = it == m.by_instance_id.end() ? nullptr : m.instances.find(it->second);
    if (s && s->status == lifecycle::terminated) order_attachments(self, volumes, *s, nullptr);
  }
}

void on_report(controller_actor* self, const caf::actor& instances, const caf::actor& zones,
               const caf::actor& volumes, const node_report& report) {
  auto& m = self->state.model;
  const auto zone_of_node = m.nodes.count(report.node_id) ? m.nodes[report.node_id].capacity.zone : "";
  for (const auto& name : report.removed_domains)
    self->request(zones, request_timeout, zone_of_node,
                  zone::command{zone::record_removal{report.node_id, name, persistence::now_ms()}},
                  request_meta{"kumo:node/" + report.node_id, "reconcile-" + name})
        .then([](zone_reply&) {},
              [=](caf::error& e) {
                spdlog::warn("node {}: removal of {} not recorded: {}", report.node_id, name,
                             self->system().render(e));
              });
  for (const auto& o : report.instances) {
    auto it = m.by_instance_id.find(o.instance_id);
    if (it == m.by_instance_id.end()) continue;
    const auto id = it->second;
    const auto* s = m.instances.find(id);
    if (!s || s->spec.node_id != report.node_id || o.what > 3) continue;
    if (o.volumes_seen) order_attachments(self, volumes, *s, &o.volumes);
    instance::observe cmd{static_cast<instance::observed>(o.what), o.detail, persistence::now_ms(),
                          o.rebooted_generation, o.repair};
    // The aggregate's own pure decide says whether this report changes anything.
    // A repair is reported once, so it is sent even while another report is on its way.
    auto d = instance::aggregate::decide(id, *s, cmd);
    if (d.error || d.events.empty()) continue;
    if (!m.in_flight.insert(id).second && o.repair.empty()) continue;
    self->request(instances, request_timeout, id, instance::command{cmd},
                  request_meta{"kumo:node/" + report.node_id, "reconcile-" + o.instance_id})
        .then(
            [=](instance_reply& r) {
              self->state.model.in_flight.erase(id);
              if (r.error) spdlog::warn("instance {}: report not applied: {}", id, r.error->message);
            },
            [=](caf::error& e) {
              self->state.model.in_flight.erase(id);
              spdlog::warn("instance {}: report not applied: {}", id, self->system().render(e));
            });
  }
}

caf::behavior controller(controller_actor* self, persistence::event_store* store, caf::actor journal,
                         caf::actor instances, caf::actor zones, caf::actor volumes, compute_config cfg) {
  self->state.after_fold = [=] {
    auto& m = self->state.model;
    for (const auto& n : m.dirty_nodes) push(self, n, cfg);
    m.dirty_nodes.clear();
    for (const auto& [z, id] : m.to_release) release(self, zones, z, id);
    m.to_release.clear();
  };
  self->set_down_handler([=](caf::down_msg& dm) {
    for (auto& [id, n] : self->state.model.nodes)
      if (n.handle && n.handle.address() == dm.source) {
        spdlog::warn("node {}: gone ({}); its instances are impaired until it returns", id,
                     self->system().render(dm.reason));
        n.handle = nullptr;
        n.available = false;
      }
  });
  self->delayed_send(self, cfg.resync_interval, reconcile_atom::value);
  return projection_behavior(
      self, store, journal,
      [=](register_node_atom, node_capacity& cap, caf::actor& node) -> caf::result<bool> {
        if (cap.protocol != node_protocol_version)
          return caf::make_error(caf::sec::runtime_error,
                                 "node " + cap.node_id + " speaks node protocol " + std::to_string(cap.protocol) +
                                     ", this cluster " + std::to_string(node_protocol_version) +
                                     ": run the same kumod version on both");
        if (std::find(cfg.zones.begin(), cfg.zones.end(), cap.zone) == cfg.zones.end())
          return caf::make_error(caf::sec::runtime_error,
                                 "node " + cap.node_id + " is in zone " + cap.zone +
                                     ", which this cluster does not serve");
        auto rp = self->make_response_promise<bool>();
        zone::register_node cmd{cap.node_id, {cap.vcpus, cap.memory_mib, cap.disk_gib}};
        self->request(zones, request_timeout, cap.zone, zone::command{cmd},
                      request_meta{"kumo:node/" + cap.node_id, "register-" + cap.node_id})
            .then(
                [=](zone_reply& r) mutable {
                  if (r.error) {
                    rp.deliver(caf::make_error(caf::sec::runtime_error, r.error->message));
                    return;
                  }
                  auto& n = self->state.model.nodes[cap.node_id];
                  if (n.handle != node) self->monitor(node);
                  n = {node, cap, clock::now(), true};
                  spdlog::info("node {}: registered in zone {} ({})", cap.node_id, cap.zone, cap.hypervisor);
                  push(self, cap.node_id, cfg);
                  rp.deliver(true);
                },
                [=](caf::error& e) mutable { rp.deliver(std::move(e)); });
        return rp;
      },
      [=](node_report_atom, const node_report& report) {
        auto it = self->state.model.nodes.find(report.node_id);
        if (it == self->state.model.nodes.end() || !it->second.handle) return;  // must register first
        if (!it->second.available) spdlog::info("node {}: reporting again", report.node_id);
        it->second.last_seen = clock::now();
        it->second.available = true;
        on_report(self, instances, zones, volumes, report);
      },
      [=](place_atom, place_request& req, request_meta& meta) -> caf::result<place_reply> {
        const auto zone = req.zone.empty() ? cfg.zones.front() : req.zone;
        zone::reserve cmd;
        cmd.instance_ids = req.instance_ids;
        cmd.each = {req.size.vcpus, req.size.memory_mib, req.size.disk_gib};
        cmd.min_count = req.min_count;
        cmd.placement = cfg.placement;
        cmd.at_ms = persistence::now_ms();
        for (const auto& [id, n] : self->state.model.nodes)
          if (n.available && n.capacity.zone == zone) cmd.available_nodes.push_back(id);
        auto rp = self->make_response_promise<place_reply>();
        self->request(zones, request_timeout, zone, zone::command{cmd}, meta)
            .then(
                [=](zone_reply& r) mutable {
                  place_reply out;
                  out.zone = zone;
                  out.error = r.error;
                  if (!r.error)
                    for (const auto& id : req.instance_ids)
                      if (auto it = r.state.reservations.find(id); it != r.state.reservations.end())
                        out.node_of[id] = it->second.node_id;
                  rp.deliver(std::move(out));
                },
                [=](caf::error& e) mutable { rp.deliver(std::move(e)); });
        return rp;
      },
      [=](list_instances_atom, const std::string& account, uint64_t min_gseq) {
        answer_when_applied(self, min_gseq, [self, account, cfg] {
          std::vector<instance_view> out;
          const auto& m = self->state.model;
          for (auto& s : m.instances.list(account)) {
            if (forgotten(s, cfg)) continue;
            auto n = m.nodes.find(s.spec.node_id);
            bool up = n != m.nodes.end() && n->second.available;
            std::vector<instance_volume> volumes;
            for (const auto& v : m.attachments.of_instance(s.spec.instance_id))
              volumes.push_back({v.attach.device, v.volume_id, volume::name_of(v.attach.state), v.attach.at_ms,
                                 v.attach.delete_on_termination});
            out.push_back({std::move(s), up, std::move(volumes)});
          }
          return out;
        });
      },
      [=](console_atom, const std::string& account, const std::string& instance_id) -> caf::result<std::string> {
        const auto& m = self->state.model;
        const auto* s = m.instances.find(instance::aggregate_id(account, instance_id));
        if (!s) return caf::make_error(caf::sec::runtime_error, "no instance " + instance_id);
        auto n = m.nodes.find(s->spec.node_id);
        if (n == m.nodes.end() || !n->second.handle)
          return caf::make_error(caf::sec::runtime_error,
                                 "node " + s->spec.node_id + " of " + instance_id + " is not reachable");
        auto rp = self->make_response_promise<std::string>();
        self->request(n->second.handle, request_timeout, console_atom::value, instance_id)
            .then([=](std::string& text) mutable { rp.deliver(std::move(text)); },
                  [=](caf::error& e) mutable { rp.deliver(std::move(e)); });
        return rp;
      },
      [=](reconcile_atom) {
        auto& m = self->state.model;
        for (auto& [id, n] : m.nodes) {
          if (n.available && clock::now() - n.last_seen > cfg.node_timeout) {
            spdlog::warn("node {}: no report for {} ms; its instances are impaired", id,
                         cfg.node_timeout.count());
            n.available = false;
          }
          push(self, id, cfg);
        }
        if (++m.resyncs % sweep_every == 1) sweep_reservations(self, zones, cfg);
        release_volumes_of_terminated(self, volumes);
        self->delayed_send(self, cfg.resync_interval, reconcile_atom::value);
      });
}

}  // namespace

compute_actors spawn_compute(caf::actor_system& sys, const caf::actor& journal,
                             persistence::event_store& store, compute_config cfg, caf::actor volumes) {
  compute_actors c;
  c.instances = spawn_aggregate_registry<instance::aggregate>(sys, journal, store);
  c.zones = spawn_aggregate_registry<zone::aggregate>(sys, journal, store);
  c.controller = sys.spawn(controller, &store, journal, c.instances, c.zones, std::move(volumes), std::move(cfg));
  return c;
}

}  // namespace kumo::actors
