#include "actors/iam/iam_actors.h"

#include "actors/runtime/aggregate.h"
#include "actors/runtime/projection.h"

namespace kumo::actors::iam {
namespace {

using view_actor = caf::stateful_actor<projection_state<directory_model>>;

caf::behavior directory_view(view_actor* self, persistence::event_store* store, caf::actor journal) {
  return projection_behavior(
      self, store, journal,
      [=](iam_key_atom, const std::string& key_id, uint64_t min_gseq) {
        answer_when_applied(self, min_gseq, [self, key_id] { return self->state.model.find_key(key_id); });
      },
      [=](iam_dir_atom, const std::string& account_id, uint64_t min_gseq) {
        answer_when_applied(self, min_gseq, [self, account_id] { return self->state.model.of_account(account_id); });
      },
      [=](iam_user_atom, const std::string& account_id, const std::string& user, uint64_t min_gseq) {
        answer_when_applied(self, min_gseq,
                            [self, account_id, user] { return self->state.model.of_user(account_id, user); });
      });
}

}  // namespace

iam_actors spawn_iam(caf::actor_system& sys, const caf::actor& journal, persistence::event_store& store) {
  return {spawn_aggregate_registry<user_aggregate>(sys, journal, store),
          spawn_aggregate_registry<group_aggregate>(sys, journal, store),
          sys.spawn(directory_view, &store, journal)};
}

}  // namespace kumo::actors::iam
