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

}  // namespace

caf::actor spawn_registry(caf::actor_system& sys, const caf::actor& journal,
                          persistence::event_store& store) {
  return spawn_aggregate_registry<aggregate>(sys, journal, store);
}

caf::actor spawn_view(caf::actor_system& sys, const caf::actor& journal,
                      persistence::event_store& store) {
  return sys.spawn(account_list_view<keypairs_model, list_key_pairs_atom>, &store, journal);
}

}  // namespace kumo::actors::keypair
