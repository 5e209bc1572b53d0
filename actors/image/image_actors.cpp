#include "actors/image/image_actors.h"

#include "actors/runtime/aggregate.h"
#include "actors/runtime/aggregate_view.h"
#include "actors/runtime/projection.h"

#include <map>
#include <utility>

namespace kumo::actors::image {
namespace {

// Every live image, by "<owner>/<image id>", plus the names of registrations
// in progress. Those are not checkpointed: a restart ends every registration.
struct images_model : aggregate_view<aggregate> {
  static constexpr const char* name = "images";
  std::map<std::pair<std::string, std::string>, std::string> claimed;  // (owner, name) -> claimant

  bool claim(const std::string& owner, const std::string& image_name, const std::string& claimant) {
    if (claimed.count({owner, image_name})) return false;
    for (const auto& s : list(owner))
      if (s.name == image_name) return false;
    claimed[{owner, image_name}] = claimant;
    return true;
  }

  void release(const std::string& owner, const std::string& image_name, const std::string& claimant) {
    auto it = claimed.find({owner, image_name});
    if (it != claimed.end() && it->second == claimant) claimed.erase(it);
  }

  std::vector<std::string> users_of(const std::string& image_id) const {
    std::vector<std::string> ids;
    for (const auto& s : select([&](const state& s) { return s.kernel_id == image_id || s.ramdisk_id == image_id; }))
      ids.push_back(s.image_id);
    return ids;
  }
};

using view_actor = caf::stateful_actor<projection_state<images_model>>;

caf::behavior images_view(view_actor* self, persistence::event_store* store, caf::actor journal) {
  auto& model = self->state.model;
  return projection_behavior(
      self, store, journal,
      [=, &model](list_images_atom, const std::string& account, uint64_t min_gseq) {
        answer_when_applied(self, min_gseq, [&model, account] {
          return model.select([&](const state& s) { return launchable_by(s, account); });
        });
      },
      [=, &model](claim_name_atom, const std::string& owner, const std::string& image_name,
                  const std::string& claimant, uint64_t min_gseq) {
        answer_when_applied(self, min_gseq, [&model, owner, image_name, claimant] {
          return model.claim(owner, image_name, claimant);
        });
      },
      [&model](release_name_atom, const std::string& owner, const std::string& image_name,
               const std::string& claimant) { model.release(owner, image_name, claimant); },
      [=, &model](image_refs_atom, const std::string& image_id, uint64_t min_gseq) {
        answer_when_applied(self, min_gseq, [&model, image_id] { return model.users_of(image_id); });
      });
}

// Answers exactly once, even if the store operation throws, then stops.
template <class F>
void answer_once(caf::event_based_actor* self, F f) {
  auto rp = self->make_response_promise();
  try {
    rp.deliver(f());
  } catch (const std::exception& e) {
    rp.deliver(caf::make_error(caf::sec::runtime_error, std::string("image store: ") + e.what()));
  }
  self->quit();
}

caf::behavior store_worker(caf::event_based_actor* self) {
  return {
      [=](import_atom, const std::string& location, const std::string& root) {
        answer_once(self, [&] { return import_image(location, root); });
      },
      [=](remove_files_atom, const std::string& root, const std::string& image_id) {
        answer_once(self, [&] { return remove_image_files(root, image_id); });
      },
  };
}

}  // namespace

caf::actor spawn_registry(caf::actor_system& sys, const caf::actor& journal,
                          persistence::event_store& store) {
  return spawn_aggregate_registry<aggregate>(sys, journal, store);
}

caf::actor spawn_view(caf::actor_system& sys, const caf::actor& journal,
                      persistence::event_store& store) {
  return sys.spawn(images_view, &store, journal);
}

caf::actor spawn_store_worker(caf::actor_system& sys) { return sys.spawn<caf::detached>(store_worker); }

}  // namespace kumo::actors::image
