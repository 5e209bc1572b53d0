// What the network controller gives back, decided from the log's projection
// alone (pure, so every case is unit-tested): the NIC and the public side of
// an instance that is terminated, or that never appeared in the log (a crash
// in the middle of RunInstances, after `grace_ms`); the lease of a segment
// whose last NIC went; a lease the ledger granted that never reached its
// segment (after `grace_ms`). The controller sends one command per entry
// until the log shows it done.
#pragma once

#include "actors/network/host_view.h"

#include <cstdint>
#include <string>
#include <vector>

namespace kumo::actors::network {

struct release_plan {
  struct nic_release {
    std::string segment_id;
    std::string instance_id;
    std::string private_ip;
    int64_t allocated_ms = 0;  // the NIC judged: a launch that claims it again keeps it
  };
  struct retirement {
    std::string segment_id;
    uint64_t lease_number = 0;
    uint32_t vni = 0;
    bool never_taken_up = false;  // the segment never ran on it
  };
  std::vector<nic_release> nics;       // segment::release_nic
  struct public_release {
    std::string instance_id;
    int64_t attached_ms = 0;  // the attachment judged: a launch that claims it again keeps it
  };
  std::vector<public_release> instances;  // ledger release_instances (public IPs, associations)
  std::vector<retirement> retire;      // segment::retire
  std::vector<lease> free;             // ledger release_lease: the segment gave it back
};

release_plan plan_releases(const state& ledger, const segments_by_id& segments, const instance_lookup& instances,
                           int64_t now_ms, int64_t grace_ms);

}  // namespace kumo::actors::network
