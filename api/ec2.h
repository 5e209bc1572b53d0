// The EC2 Query API: authenticates (SigV4), parses, dispatches to an
// operation, writes the XML answer. The gateway actor hands each request to
// an actor of its own (so one slow or CPU-heavy request holds up no other);
// keys are generated on a bounded pool (api/key_generators.h). The HTTP
// server only hands requests in and writes replies out.
#pragma once

#include "actors/cloud.h"
#include "actors/compute/instance_types.h"
#include "api/sigv4.h"

#include <caf/fwd.hpp>

#include <functional>
#include <string>
#include <vector>

namespace kumo::api {

struct ec2_config {
  std::string region = "kumo-1";
  std::vector<std::string> zones = {"kumo-1a"};
  std::string data_dir;  // kumod's data directory (image store, instance files)
  std::vector<actors::instance::sizing> instance_types = actors::default_instance_types();
};

struct http_reply {
  int status = 200;
  std::string content_type = "text/xml;charset=UTF-8";
  std::string body;
};

using reply_fn = std::function<void(http_reply)>;

caf::actor spawn_ec2_gateway(caf::actor_system& sys, const actors::cloud_actors& cloud,
                             const ec2_config& cfg);

// Thread-safe: hands one HTTP request to the gateway. `done` is called exactly
// once, from an actor thread.
void submit(const caf::actor& gateway, http_parts req, std::string request_id, reply_fn done);

}  // namespace kumo::api
