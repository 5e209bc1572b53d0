// kumod's networking: the network role's settings and, in managed mode, this
// host's kernel data plane and metadata server.
#pragma once

#include "config.h"

#include "actors/network/network_actors.h"

#include <optional>
#include <string>

namespace kumo::daemon {

struct network_setup {
  actors::network_config cfg;
  actors::host_plane plane;  // empty unless --network=managed
};

// Nullopt with `error` when managed networking cannot start here (no
// CAP_NET_ADMIN, no nftables, the metadata port taken).
std::optional<network_setup> prepare_network(const config& cfg, std::string& error);

}  // namespace kumo::daemon
