#include "actors/cloud.h"

#include "actors/account/account_actors.h"
#include "actors/clienttoken/client_token_actors.h"
#include "actors/runtime/aggregate.h"
#include "actors/journal/journal.h"
#include "actors/image/image_actors.h"
#include "actors/keypair/keypair_actors.h"
#include "actors/iam/iam_actors.h"
#include "actors/securitygroup/security_group_actors.h"

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

namespace kumo::actors {

cloud_actors cloud_actors::spawn(caf::actor_system& sys, persistence::event_store& store,
                                 compute_config compute, storage_config storage, network_config network,
                                 host_plane plane) {
  cloud_actors c;
  c.journal = spawn_journal(sys, store);
  c.accounts = account::spawn_registry(sys, c.journal, store);
  c.accounts_view = account::spawn_view(sys, c.journal, store);
  c.keypairs = keypair::spawn_registry(sys, c.journal, store);
  c.keypairs_view = keypair::spawn_view(sys, c.journal, store);
  c.security_groups = security_group::spawn_registry(sys, c.journal, store);
  c.security_groups_view = security_group::spawn_view(sys, c.journal, store);
  c.images = image::spawn_registry(sys, c.journal, store);
  c.images_view = image::spawn_view(sys, c.journal, store);
  if (!storage.data_dir.empty()) {
    auto sa = spawn_storage(sys, c.journal, store, std::move(storage));
    c.volumes = sa.volumes;
    c.snapshots = sa.snapshots;
    c.storage = sa.controller;
  }
  auto cc = spawn_compute(sys, c.journal, store, std::move(compute), c.volumes);
  c.instances = cc.instances;
  c.zones = cc.zones;
  c.compute = cc.controller;
  c.client_tokens = spawn_aggregate_registry<client_token::aggregate>(sys, c.journal, store);
  auto iam_actors = iam::spawn_iam(sys, c.journal, store);
  c.users = iam_actors.users;
  c.groups = iam_actors.groups;
  c.iam_view = iam_actors.view;
  c.network_cfg = network;
  auto na = spawn_network(sys, c.journal, store, std::move(network), std::move(plane));
  c.network = na.ledger;
  c.segments = na.segments;
  c.network_controller = na.controller;
  return c;
}

void cloud_actors::shutdown(caf::actor_system& sys) {
  caf::scoped_actor self{sys};
  for (const auto& view :
       {accounts_view, keypairs_view, security_groups_view, images_view, compute, storage, iam_view, network_controller}) {
    if (!view) continue;
    self->request(view, std::chrono::seconds(10), checkpoint_atom::value)
        .receive([](uint64_t at) { spdlog::info("view checkpointed at #{}", at); },
                 [&](caf::error& e) { spdlog::warn("final checkpoint skipped: {}", sys.render(e)); });
  }
  for (auto* a : {&client_tokens, &compute, &instances, &zones, &accounts_view, &accounts, &keypairs_view,
                  &keypairs, &security_groups_view, &security_groups, &images_view, &images, &storage, &snapshots,
                  &volumes, &ldap, &users, &groups, &iam_view, &network_controller, &segments, &network, &journal}) {
    if (*a) self->send_exit(*a, caf::exit_reason::user_shutdown);
    *a = nullptr;
  }
}

}  // namespace kumo::actors
