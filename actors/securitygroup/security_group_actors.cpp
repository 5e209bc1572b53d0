#include "actors/securitygroup/security_group_actors.h"

#include "actors/runtime/aggregate.h"
#include "actors/runtime/aggregate_view.h"
#include "actors/runtime/projection.h"

namespace kumo::actors::security_group {
namespace {

// Every live security group, by "<account>/<name>".
struct groups_model : aggregate_view<aggregate> {
  static constexpr const char* name = "securitygroups";
};

}  // namespace

caf::actor spawn_registry(caf::actor_system& sys, const caf::actor& journal,
                          persistence::event_store& store) {
  return spawn_aggregate_registry<aggregate>(sys, journal, store);
}

caf::actor spawn_view(caf::actor_system& sys, const caf::actor& journal,
                      persistence::event_store& store) {
  return sys.spawn(account_list_view<groups_model, list_groups_atom>, &store, journal);
}

}  // namespace kumo::actors::security_group
