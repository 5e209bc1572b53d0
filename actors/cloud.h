// The cloud role's actors, started together on one event store. kumod, the
// crash-test writer and the tests all start the core through this one place.
#pragma once

#include "actors/compute/compute.h"
#include "actors/network/network_actors.h"
#include "actors/storage/storage_actors.h"
#include "persistence/event_store.h"

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

namespace kumo::actors {

struct cloud_actors {
  caf::actor journal;
  caf::actor accounts;       // Account aggregate registry
  caf::actor accounts_view;  // accounts projection
  caf::actor keypairs;       // KeyPair aggregate registry
  caf::actor keypairs_view;  // key pairs projection
  caf::actor security_groups;       // SecurityGroup aggregate registry
  caf::actor security_groups_view;  // security groups projection
  caf::actor images;       // Image aggregate registry
  caf::actor images_view;  // images projection (visibility across accounts)
  caf::actor instances;  // Instance aggregate registry
  caf::actor zones;      // Zone aggregate registry (the scheduler's ledger)
  caf::actor compute;    // the cluster's compute controller (and instances view)
  caf::actor client_tokens;  // ClientToken aggregate registry (idempotent calls)
  caf::actor volumes;    // Volume aggregate registry (storage role; null without it)
  caf::actor snapshots;  // Snapshot aggregate registry (storage role)
  caf::actor storage;    // the storage controller and volumes/snapshots view (storage role)
  caf::actor users;     // IAM User aggregate registry
  caf::actor groups;    // IAM Group aggregate registry (user groups as actors)
  caf::actor iam_view;  // IAM directory projection (keys -> users, policies, sharing)
  caf::actor ldap;      // LDAP sync + login (set by kumod when a directory is configured)
  caf::actor network;             // Network aggregate registry (the region's address ledger); null with networking off
  caf::actor segments;            // Segment aggregate registry (one per account and security group); null with networking off
  caf::actor network_controller;  // its reconciler and read model; null with networking off
  network_config network_cfg;     // what the API allocates from

  static cloud_actors spawn(caf::actor_system& sys, persistence::event_store& store,
                            compute_config compute = {}, storage_config storage = {},
                            network_config network = {}, host_plane plane = {});
  // Checkpoints the views and stops every actor, so the actor system can be
  // destroyed. Everything acknowledged is durable already; this only shortens
  // the next start's replay.
  void shutdown(caf::actor_system& sys);
};

}  // namespace kumo::actors
