#include "actors/keypair/keypair_actors.h"

#include "actors/runtime/aggregate.h"
#include "actors/runtime/aggregate_view.h"
#include "actors/runtime/projection.h"

namespace kumo::actors::keypair {
namespace {

// Every live key pair, by "<account>/<name>".
struct keypairs_model : aggregate_view<aggregate> {
  static constexpr const char* name = "keypairs";
};

using view_actor = caf::stateful_actor<projection_state<keypairs_model>>;

caf::behavior keypairs_view(view_actor* self, persistence::event_store* store, caf::actor journal) {
  return projection_behavior(self, store, journal,
                             [=](list_key_pairs_atom, const std::string& account, uint64_t min_gseq) {
                               answer_when_applied(self, min_gseq, [self, account] {
                                 return self->state.model.list(account);
                               });
                             });
}

}  // namespace

caf::actor spawn_registry(caf::actor_system& sys, const caf::actor& journal,
                          persistence::event_store& store) {
  return sys.spawn(aggregate_registry<aggregate>, journal, &store);
}

caf::actor spawn_view(caf::actor_system& sys, const caf::actor& journal,
                      persistence::event_store& store) {
  return sys.spawn(keypairs_view, &store, journal);
}

}  // namespace kumo::actors::keypair
