// RunInstances' BlockDeviceMappings: EBS volumes made for each launched
// instance and attached to it from the start (the node plugs each in once
// its file exists, so it may appear in the guest shortly after boot).
#pragma once

#include "actors/instance/instance.h"
#include "api/operation.h"

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace kumo::api {

struct launch_volume {
  std::string device;            // /dev/sdf .. /dev/sdp
  uint64_t size_gib = 0;
  std::string snapshot_id;       // restored from this snapshot ("" = empty)
  std::string snapshot_path;
  bool delete_on_termination = true;  // EC2's default for mappings
  std::string volume_type = "gp2";
};

// Parses BlockDeviceMapping.N (resolving snapshots the caller may restore),
// then `then(volumes)`; or fails the call.
void with_launch_volumes(const op_ptr& c, std::function<void(std::vector<launch_volume>)> then);

// Creates every launched instance's volumes, attached to it, then `done()`;
// or fails the call.
void create_launch_volumes(const op_ptr& c, const std::vector<launch_volume>& volumes,
                           const std::vector<actors::instance::state>& launched, std::function<void()> done);

}  // namespace kumo::api
