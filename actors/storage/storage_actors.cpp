#include "actors/storage/storage_actors.h"

#include "actors/runtime/aggregate.h"
#include "actors/runtime/aggregate_view.h"
#include "actors/runtime/projection.h"
#include "actors/storage/backing_store.h"
#include "persistence/time_format.h"

#include <map>
#include <set>
#include <utility>

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kumo::actors::storage::file_result)

namespace kumo::actors {
namespace {

using file_done_atom = caf::atom_constant<caf::atom("filedone")>;
using progress_atom = caf::atom_constant<caf::atom("progress")>;
using resync_atom = caf::atom_constant<caf::atom("resync")>;
using storage::file_result;

constexpr auto request_timeout = std::chrono::seconds(30);

struct storage_model {
  static constexpr const char* name = "storage";
  static constexpr uint32_t state_version = 1;

  aggregate_view<volume::aggregate> volumes;
  aggregate_view<snapshot::aggregate> snapshots;
  // Runtime only: file operations under way (0) or done and waiting for the
  // view to fold their event (its global seq); claimed instance devices.
  std::map<std::string, uint64_t> in_flight;
  std::map<std::pair<std::string, std::string>, std::string> device_claims;

  void apply(const persistence::event_record& r) {
    volumes.apply(r);
    snapshots.apply(r);
  }
  std::string save() const {
    return nlohmann::json{{"volumes", volumes.save()}, {"snapshots", snapshots.save()}}.dump();
  }
  bool load(const std::string& text) {
    auto j = nlohmann::json::parse(text, nullptr, false);
    if (!j.is_object() || !j.contains("volumes") || !j.contains("snapshots")) return false;
    return volumes.load(j["volumes"].get<std::string>()) && snapshots.load(j["snapshots"].get<std::string>());
  }

  bool device_taken(const std::string& account, const std::string& instance_id, const std::string& target_dev,
                    const std::string& claimant) const {
    auto c = device_claims.find({instance_id, target_dev});
    if (c != device_claims.end() && c->second != claimant) return true;
    for (const auto& v : volumes.list(account))
      if (v.attach.state != volume::attach_status::none && v.attach.instance_id == instance_id &&
          v.attach.target_dev == target_dev)
        return true;
    return false;
  }
};

using controller_actor = caf::stateful_actor<projection_state<storage_model>>;

struct controller_setup {
  caf::actor volumes;
  caf::actor snapshots;
  storage_config cfg;
};

// One blocking file operation on its own thread; the result goes back to the controller.
template <class F>
void run_worker(controller_actor* self, const std::string& id, const std::string& op, F work) {
  self->state.model.in_flight[id] = 0;
  caf::actor controller = caf::actor_cast<caf::actor>(self);
  self->system().spawn<caf::detached>([=](caf::event_based_actor* w) {
    file_result r;
    try {
      r = work(w, controller);
    } catch (const std::exception& e) {
      r = {false, 0, e.what()};
    }
    w->send(controller, file_done_atom::value, id, op, r);
  });
}

template <class Command, class Reply>
void tell(controller_actor* self, const caf::actor& registry, const std::string& id, Command cmd) {
  self->request(registry, request_timeout, id, std::move(cmd), request_meta{"kumo:storage", "storage-" + id})
      .then(
          [=](Reply& r) {
            auto& m = self->state.model;
            if (r.error) {
              spdlog::warn("storage: {}: {}", id, r.error->message);
              m.in_flight.erase(id);
            } else if (m.in_flight.count(id)) {
              m.in_flight[id] = std::max<uint64_t>(r.global_seq, 1);
            }
          },
          [=](caf::error& e) {
            spdlog::warn("storage: {}: {}; retried on the next resync", id, self->system().render(e));
            self->state.model.in_flight.erase(id);
          });
}

// A file another operation still reads: a volume's while a snapshot of it is
// being copied, a snapshot's while a volume is being made from it. Its
// removal waits for that to finish.
bool still_read(const storage_model& m, const std::string& path) {
  bool read = false;
  m.snapshots.for_each([&](const std::string&, const snapshot::state& s) {
    read = read || (s.status == snapshot::status::pending && s.spec.source_path == path);
  });
  m.volumes.for_each([&](const std::string&, const volume::state& v) {
    read = read || (v.status == volume::status::creating && v.spec.snapshot_path == path);
  });
  return read;
}

bool busy(const storage_model& m, const std::string& id, uint64_t applied) {
  auto it = m.in_flight.find(id);
  return it != m.in_flight.end() && (it->second == 0 || it->second > applied);
}

// Starts the file work the log asks for and nobody is doing yet.
void converge(controller_actor* self, const controller_setup& setup) {
  auto& st = self->state;
  auto& m = st.model;
  std::erase_if(m.in_flight, [&](const auto& kv) { return kv.second != 0 && kv.second <= st.applied; });
  m.volumes.for_each([&](const std::string& id, const volume::state& v) {
    if (busy(m, id, st.applied)) return;
    if (v.status == volume::status::creating) {
      auto path = v.spec.file_path;
      auto bytes = v.spec.size_gib * volume::gib;
      auto from = v.spec.snapshot_path;
      spdlog::info("storage: creating {} ({} GiB{}{})", id, v.spec.size_gib, from.empty() ? "" : " from ",
                   v.spec.snapshot_id);
      run_worker(self, id, "create", [=](caf::event_based_actor*, const caf::actor&) {
        return storage::create_volume_file(path, bytes, from);
      });
    } else if (v.modification.state == volume::modify_status::modifying) {
      auto path = v.spec.file_path;
      auto bytes = v.modification.target_size_gib * volume::gib;
      spdlog::info("storage: growing {} to {} GiB", id, v.modification.target_size_gib);
      run_worker(self, id, "grow", [=](caf::event_based_actor*, const caf::actor&) {
        return storage::grow_file(path, bytes);
      });
    } else if (v.status == volume::status::deleting && !still_read(m, v.spec.file_path)) {
      auto path = v.spec.file_path;
      run_worker(self, id, "remove", [=](caf::event_based_actor*, const caf::actor&) {
        return storage::remove_file(path);
      });
    }
  });
  m.snapshots.for_each([&](const std::string& id, const snapshot::state& s) {
    if (busy(m, id, st.applied)) return;
    if (s.status == snapshot::status::pending) {
      auto source = s.spec.source_path;
      auto dest = s.spec.file_path;
      spdlog::info("storage: snapshot {} of {} started", id, s.spec.volume_id);
      run_worker(self, id, "copy", [=](caf::event_based_actor* w, const caf::actor& controller) {
        int last = 0;
        return storage::copy_to_snapshot(source, dest, [&](int pct) {
          if (pct >= last + 10 && pct < 100) {  // at most ten progress events
            last = pct;
            w->send(controller, progress_atom::value, id, pct);
          }
        });
      });
    } else if (s.status == snapshot::status::deleting && !still_read(m, s.spec.file_path)) {
      auto path = s.spec.file_path;
      run_worker(self, id, "remove", [=](caf::event_based_actor*, const caf::actor&) {
        return storage::remove_file(path);
      });
    }
  });
}

// Files the log has no live volume or snapshot for: left by a crash, or by
// anything else. Removed, and logged as a repair.
void remove_orphans(controller_actor* self, const controller_setup& setup) {
  auto& m = self->state.model;
  auto sweep = [&](const std::string& dir, auto known) {
    for (const auto& name : storage::list_files(dir)) {
      auto id = storage::aggregate_id_of_file(name);
      if (!id.empty() && (known(id) || m.in_flight.count(id))) continue;
      auto path = dir + "/" + name;
      spdlog::warn("storage: repair: removing {}: no volume or snapshot in the log owns it", path);
      if (::unlink(path.c_str()) != 0) spdlog::warn("storage: could not remove {}", path);
    }
  };
  sweep(storage::volumes_dir(setup.cfg.data_dir), [&](const std::string& id) { return m.volumes.find(id) != nullptr; });
  sweep(storage::snapshots_dir(setup.cfg.data_dir),
        [&](const std::string& id) { return m.snapshots.find(id) != nullptr; });
}

caf::behavior controller(controller_actor* self, persistence::event_store* store, caf::actor journal,
                         controller_setup setup) {
  self->state.after_fold = [=] { converge(self, setup); };
  self->delayed_send(self, setup.cfg.resync, resync_atom::value);
  auto& model = self->state.model;
  return projection_behavior(
      self, store, journal,
      [=, &model](list_volumes_atom, const std::string& account, uint64_t min_gseq) {
        answer_when_applied(self, min_gseq, [&model, account] { return model.volumes.list(account); });
      },
      [=, &model](list_snapshots_atom, const std::string& account, uint64_t min_gseq) {
        answer_when_applied(self, min_gseq, [&model, account] {
          return model.snapshots.select([&](const snapshot::state& s) { return snapshot::restorable_by(s, account); });
        });
      },
      [=, &model](claim_device_atom, const std::string& account, const std::string& instance_id,
                  const std::string& target_dev, const std::string& claimant, uint64_t min_gseq) {
        answer_when_applied(self, min_gseq, [&model, account, instance_id, target_dev, claimant] {
          if (model.device_taken(account, instance_id, target_dev, claimant)) return false;
          model.device_claims[{instance_id, target_dev}] = claimant;
          return true;
        });
      },
      [&model](release_device_atom, const std::string& instance_id, const std::string& target_dev,
               const std::string& claimant) {
        auto it = model.device_claims.find({instance_id, target_dev});
        if (it != model.device_claims.end() && it->second == claimant) model.device_claims.erase(it);
      },
      [=](file_done_atom, const std::string& id, const std::string& op, const file_result& r) {
        if (!r.ok) spdlog::error("storage: {} of {} failed: {}", op, id, r.detail);
        const bool is_volume = id.find("/vol-") != std::string::npos;
        if (op == "remove" && !r.ok) {  // retried on the next resync
          self->state.model.in_flight.erase(id);
          return;
        }
        if (is_volume) {
          volume::command cmd = op == "remove" ? volume::command{volume::file_removed{}}
                                : op == "grow"   ? volume::command{volume::file_resized{r.ok, r.bytes, r.detail,
                                                                                        persistence::now_ms()}}
                                                 : volume::command{volume::file_ready{r.ok, r.bytes, r.detail}};
          tell<volume::command, volume_reply>(self, setup.volumes, id, std::move(cmd));
        } else {
          snapshot::command cmd = op == "remove" ? snapshot::command{snapshot::file_removed{}}
                                                 : snapshot::command{snapshot::copy_done{r.ok, r.bytes, r.detail}};
          tell<snapshot::command, snapshot_reply>(self, setup.snapshots, id, std::move(cmd));
        }
      },
      [=](progress_atom, const std::string& id, int pct) {
        self->request(setup.snapshots, request_timeout, id, snapshot::command{snapshot::copy_progress{pct}},
                      request_meta{"kumo:storage", "storage-" + id})
            .then([](snapshot_reply&) {}, [](caf::error&) {});
      },
      [=](resync_atom) {
        converge(self, setup);
        remove_orphans(self, setup);
        self->delayed_send(self, setup.cfg.resync, resync_atom::value);
      });
}

}  // namespace

storage_actors spawn_storage(caf::actor_system& sys, const caf::actor& journal, persistence::event_store& store,
                             storage_config cfg) {
  storage_actors s;
  s.volumes = spawn_aggregate_registry<volume::aggregate>(sys, journal, store);
  s.snapshots = spawn_aggregate_registry<snapshot::aggregate>(sys, journal, store);
  s.controller = sys.spawn(controller, &store, journal, controller_setup{s.volumes, s.snapshots, std::move(cfg)});
  return s;
}

}  // namespace kumo::actors
