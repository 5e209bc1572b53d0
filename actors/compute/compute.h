// The cluster role's compute side: the Instance and Zone aggregates and the
// controller that connects them to nodes.
//
// The controller is a Kubernetes-style controller over the instances read
// model: desired state = what the Instance aggregates say, observed state =
// what nodes report; it sends each node its full desired set whenever it
// changes (and periodically), and turns reports that differ from the log
// into `observe` commands on the instances. It also serves DescribeInstances
// and places new instances through the Zone aggregate.
//
//   (place_atom, place_request)                          -> place_reply
//   (list_instances_atom, account, min_global_seq)       -> std::vector<instance_view>
//   (console_atom, account, instance_id)                 -> std::string
//   node protocol: see actors/protocol/node.h
#pragma once

#include "actors/compute/zone.h"
#include "actors/instance/instance.h"
#include "actors/protocol/messages.h"
#include "actors/protocol/node.h"

#include <caf/actor.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/fwd.hpp>

#include <chrono>
#include <map>
#include <optional>

namespace kumo::actors {

using place_atom = caf::atom_constant<caf::atom("place")>;
using list_instances_atom = caf::atom_constant<caf::atom("listinst")>;

struct compute_config {
  std::vector<std::string> zones = {"kumo-1a"};
  zone::policy placement = zone::policy::pack;
  std::chrono::milliseconds resync_interval{2000};  // resend desired sets, check node heartbeats
  std::chrono::milliseconds node_timeout{10000};    // a silent node is unavailable after this
  std::chrono::minutes terminated_visible{60};      // terminated instances then vanish from Describe
  bool attach_nics = false;  // managed networking: nodes plug each instance's NIC into its segment's bridge
  uint8_t segment_mode = 0;  // net::segment_mode the nodes make their segments with
};

struct place_request {
  std::vector<std::string> instance_ids;
  instance::sizing size;
  std::string zone;  // empty: the first zone with room
  size_t min_count = 1;
};
struct place_reply {
  std::optional<api_error> error;
  std::string zone;
  std::map<std::string, std::string> node_of;  // instance id -> node id
};

// An EBS volume attached to an instance (DescribeInstances' blockDeviceMapping).
struct instance_volume {
  std::string device;     // /dev/sdf
  std::string volume_id;
  std::string status;     // attaching | attached | detaching
  int64_t attach_ms = 0;
  bool delete_on_termination = false;
};

// One instance as Describe* sees it.
struct instance_view {
  instance::state state;
  bool node_available = true;  // false: its node stopped reporting (system status impaired)
  std::vector<instance_volume> volumes;
};

struct compute_actors {
  caf::actor instances;   // Instance aggregate registry
  caf::actor zones;       // Zone aggregate registry
  caf::actor controller;  // the cluster's compute controller (also the instances view)
};

// `volumes`: the Volume aggregate registry (storage role), told when nodes
// plug volumes in or out; null when this cloud has no storage.
compute_actors spawn_compute(caf::actor_system& sys, const caf::actor& journal,
                             persistence::event_store& store, compute_config cfg,
                             caf::actor volumes = {});

using instance_reply = command_reply<instance::aggregate>;
using zone_reply = command_reply<zone::aggregate>;

}  // namespace kumo::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kumo::actors::place_request)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kumo::actors::place_reply)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<kumo::actors::instance_view>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kumo::actors::instance::command)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kumo::actors::instance_reply)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kumo::actors::zone::command)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kumo::actors::zone_reply)
