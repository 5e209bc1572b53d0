#include "actors/network/network_actors.h"

#include "actors/network/host_view.h"
#include "actors/network/releases.h"
#include "actors/runtime/aggregate.h"
#include "actors/runtime/aggregate_view.h"
#include "actors/runtime/projection.h"
#include "persistence/time_format.h"

#include <optional>
#include <set>
#include <utility>

namespace kumo::actors {
namespace {

using apply_atom = caf::atom_constant<caf::atom("netapply")>;
using resync_atom = caf::atom_constant<caf::atom("netresync")>;
constexpr auto request_timeout = std::chrono::seconds(30);

// The read model: the ledger, the segments, the instances and the security
// groups, folded from the log. `dirty` says the desired view may have changed.
struct network_model {
  static constexpr const char* name = "network";
  static constexpr uint32_t state_version = 2;

  aggregate_view<network::aggregate> ledger;
  aggregate_view<segment::aggregate> segments;
  aggregate_view<instance::aggregate> instances;
  aggregate_view<security_group::aggregate> groups;
  // Runtime only, not checkpointed:
  bool dirty = true;
  bool applying = false;            // a reconcile is with the data plane
  bool again = false;               // ... and another is due when it returns
  std::set<std::string> releasing;  // what has a release on its way ("nic:", "instance:", "retire:", "lease:")

  void apply(const persistence::event_record& r) {
    auto kind = r.stream.substr(0, r.stream.find('/'));
    if (kind == network::aggregate::kind) {
      ledger.apply(r);
      dirty |= r.type != "repaired";  // recording a repair changes nothing to apply
    } else if (kind == segment::aggregate::kind) {
      segments.apply(r);
      dirty = true;
    } else if (kind == instance::aggregate::kind) {
      instances.apply(r);
      dirty = true;
    } else if (kind == security_group::aggregate::kind) {
      groups.apply(r);
      dirty = true;
    }
  }
  std::string save() const {
    return nlohmann::json{{"ledger", ledger.save()},
                          {"segments", segments.save()},
                          {"instances", instances.save()},
                          {"groups", groups.save()}}
        .dump();
  }
  bool load(const std::string& text) {
    auto j = nlohmann::json::parse(text, nullptr, false);
    if (!j.is_object() || !j.contains("ledger") || !j.contains("segments") || !j.contains("instances") ||
        !j.contains("groups"))
      return false;
    return ledger.load(j["ledger"].get<std::string>()) && segments.load(j["segments"].get<std::string>()) &&
           instances.load(j["instances"].get<std::string>()) && groups.load(j["groups"].get<std::string>());
  }
};

using controller_actor = caf::stateful_actor<projection_state<network_model>>;

const network::state& ledger_of(const network_model& m, const std::string& region) {
  static const network::state empty;
  const auto* s = m.ledger.find(region);
  return s ? *s : empty;
}

const instance::state* instance_of(const network_model& m, const std::string& account_id,
                                   const std::string& instance_id) {
  return m.instances.find(instance::aggregate_id(account_id, instance_id));
}

network::segments_by_id segments_of(const network_model& m) {
  network::segments_by_id out;
  m.segments.for_each([&](const std::string& id, const segment::state& s) { out[id] = &s; });
  return out;
}

// Blocking kernel work happens here, never in the controller.
caf::behavior dataplane_worker(caf::event_based_actor*, std::shared_ptr<net::dataplane> dp) {
  return {
      [dp](apply_atom, const net::network_view& view) { return dp->reconcile(view); },
  };
}

struct setup {
  network_config cfg;
  caf::actor ledger;
  caf::actor segments;
  caf::actor worker;  // null in ledger mode
  host_plane plane;
};

// Sends `cmd` to `registry`. With a `once` key, not while the same key is
// still on its way (the controller asks again on every pass until the log
// shows it done). A refusal or failure is logged; the next pass tries again.
template <class Reply, class Command>
void send(controller_actor* self, const setup& s, const caf::actor& registry, const std::string& id, Command cmd,
          const std::string& what, const std::string& once = {}) {
  auto& releasing = self->state.model.releasing;
  if (!once.empty() && !releasing.insert(once).second) return;
  if (!once.empty()) spdlog::info("network {}: {}", s.cfg.region, what);
  auto done = [=] {
    if (!once.empty()) self->state.model.releasing.erase(once);
  };
  self->request(registry, request_timeout, id, std::move(cmd), request_meta{"kumo:network/" + s.cfg.host_id, what})
      .then(
          [=](Reply& r) {
            done();
            if (r.error) spdlog::info("network {}: {}: refused: {}", s.cfg.region, what, r.error->message);
          },
          [=](caf::error& e) {
            done();
            spdlog::warn("network {}: {}: failed: {}; retried", s.cfg.region, what, self->system().render(e));
          });
}

void tell_ledger(controller_actor* self, const setup& s, network::command cmd, const std::string& what,
                 const std::string& once = {}) {
  send<network_reply>(self, s, s.ledger, s.cfg.region, std::move(cmd), what, once);
}
void tell_segment(controller_actor* self, const setup& s, const std::string& id, segment::command cmd,
                  const std::string& what, const std::string& once) {
  send<segment_reply>(self, s, s.segments, id, std::move(cmd), what, once);
}

// Gives back what no live instance uses (see releases.h).
void release_unused(controller_actor* self, const setup& s) {
  if (self->state.stuck) return;  // a model behind the log would think live instances are gone
  const auto& m = self->state.model;
  auto plan = network::plan_releases(
      ledger_of(m, s.cfg.region), segments_of(m),
      [&](const std::string& account_id, const std::string& instance_id) {
        return instance_of(m, account_id, instance_id);
      },
      persistence::now_ms(), s.cfg.orphan_grace.count());
  for (const auto& n : plan.nics)
    tell_segment(self, s, n.segment_id, segment::release_nic{n.instance_id, n.allocated_ms},
                 "releasing the NIC of " + n.instance_id + " (" + n.private_ip + " on segment " + n.segment_id + ")",
                 "nic:" + n.instance_id);
  for (const auto& p : plan.instances)
    tell_ledger(self, s, network::release_instances{{p.instance_id}, p.attached_ms},
                "releasing the public side of " + p.instance_id, "instance:" + p.instance_id);
  for (const auto& r : plan.retire) {
    const auto lease = "lease " + std::to_string(r.lease_number) + " (segment id " + std::to_string(r.vni) + ")";
    tell_segment(self, s, r.segment_id, segment::retire{r.lease_number},
                 r.never_taken_up ? "retiring " + lease + ": segment " + r.segment_id + " never took it up"
                                  : "segment " + r.segment_id + " has no NIC left: giving back " + lease,
                 "retire:" + r.segment_id);
  }
  for (const auto& l : plan.free)
    tell_ledger(self, s, network::release_lease{l.account_id, l.group_id, l.number},
                "freeing lease " + std::to_string(l.number) + " (segment id " + std::to_string(l.vni) +
                    "), given back by segment " + segment::aggregate_id(l.account_id, l.group_id),
                "lease:" + std::to_string(l.vni));
}

net::network_view desired_view(const network_model& m, const network::segments_by_id& segments, const setup& s) {
  network::groups_by_id groups;
  m.groups.for_each([&](const std::string&, const security_group::state& g) { groups[g.group_id] = &g; });
  return network::host_view(ledger_of(m, s.cfg.region), segments, groups,
                            {s.cfg.segments, s.cfg.physical_interface, s.cfg.metadata_port, s.cfg.guest_mtu});
}

void reconcile(controller_actor* self, const setup& s, std::optional<caf::response_promise> caller = {});

void finished(controller_actor* self, const setup& s) {
  auto& m = self->state.model;
  m.applying = false;
  if (std::exchange(m.again, false)) reconcile(self, s);
}

// Desired vs observed, through the worker; repairs become ledger events.
void reconcile(controller_actor* self, const setup& s, std::optional<caf::response_promise> caller) {
  auto& st = self->state;
  if (st.stuck) {  // never push a partial view: it would tear down others' segments
    if (caller) caller->deliver(net::reconcile_result{false, "the network read model is stuck; run `kumoctl verify`", {}});
    return;
  }
  if (!s.worker) {
    if (caller) caller->deliver(net::reconcile_result{false, "networking is not managed on this host", {}});
    return;
  }
  auto& m = st.model;
  if (m.applying && !caller) {  // coalesce: one more pass with the newest view when this one is back
    m.again = true;
    return;
  }
  m.dirty = false;
  m.applying = true;
  const auto segments = segments_of(m);  // once per pass: the metadata table and the view both read it
  if (s.plane.metadata)
    s.plane.metadata->update(network::metadata_of(
        ledger_of(m, s.cfg.region), segments,
        [&](const std::string& account_id, const std::string& instance_id) {
          return instance_of(m, account_id, instance_id);
        },
        s.cfg.region));
  self->request(s.worker, caf::infinite, apply_atom::value, desired_view(m, segments, s))
      .then(
          [=](net::reconcile_result& r) mutable {
            if (!r.ok) spdlog::error("network {}: host {}: {}", s.cfg.region, s.cfg.host_id, r.error);
            for (const auto& what : r.repairs) {
              spdlog::warn("network {}: host {}: repair: {}", s.cfg.region, s.cfg.host_id, what);
              tell_ledger(self, s, network::record_repair{s.cfg.host_id, what, persistence::now_ms()},
                          "record-repair");
            }
            if (caller) caller->deliver(std::move(r));
            finished(self, s);
          },
          [=](caf::error& e) mutable {
            spdlog::error("network {}: data plane failed: {}", s.cfg.region, self->system().render(e));
            if (caller) caller->deliver(std::move(e));
            finished(self, s);
          });
}

caf::behavior controller(controller_actor* self, persistence::event_store* store, caf::actor journal, setup s) {
  if (s.worker) self->link_to(s.worker);  // the worker goes when the controller does
  self->state.after_fold = [=] {
    release_unused(self, s);
    if (self->state.model.dirty) reconcile(self, s);
  };
  self->delayed_send(self, s.cfg.reconcile_interval, resync_atom::value);
  return projection_behavior(
      self, store, journal,
      [=](resync_atom) {
        release_unused(self, s);
        reconcile(self, s);  // level-triggered: also when nothing changed in the log
        self->delayed_send(self, s.cfg.reconcile_interval, resync_atom::value);
      },
      [=](list_network_atom, const std::string& account_id, uint64_t min_global_seq) {
        answer_when_applied(self, min_global_seq, [=] {
          const auto& m = self->state.model;
          const auto mine = m.segments.list(account_id);  // the account's range only
          network::segments_by_id by_id;
          for (const auto& seg : mine) by_id[segment::aggregate_id(seg.account_id, seg.group_id)] = &seg;
          return network::account_view(ledger_of(m, s.cfg.region), by_id, account_id);
        });
      },
      [=](net_reconcile_atom) {
        auto rp = self->make_response_promise();
        reconcile(self, s, rp);
        return rp;
      });
}

}  // namespace

network_actors spawn_network(caf::actor_system& sys, const caf::actor& journal, persistence::event_store& store,
                             network_config cfg, host_plane plane) {
  network_actors a;
  if (cfg.mode == network_mode::off) return a;  // no ledger: instances get no NIC, Describe* shows no address
  a.ledger = spawn_aggregate_registry<network::aggregate>(sys, journal, store);
  a.segments = spawn_aggregate_registry<segment::aggregate>(sys, journal, store);
  setup s{cfg, a.ledger, a.segments, {}, plane};
  if (cfg.mode == network_mode::managed && plane.dataplane)
    s.worker = sys.spawn<caf::detached>(dataplane_worker, plane.dataplane);
  a.controller = sys.spawn(controller, &store, journal, std::move(s));
  return a;
}

}  // namespace kumo::actors
