#include "actors/protocol/node.h"

#include <caf/actor_system_config.hpp>

namespace kumo::actors {

void add_node_protocol_types(caf::actor_system_config& cfg) {
  cfg.add_message_type<node_capacity>("kumo::node_capacity");
  cfg.add_message_type<desired_instance>("kumo::desired_instance");
  cfg.add_message_type<node_assignment>("kumo::node_assignment");
  cfg.add_message_type<observed_instance>("kumo::observed_instance");
  cfg.add_message_type<node_report>("kumo::node_report");
}

}  // namespace kumo::actors
