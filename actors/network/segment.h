// The Segment aggregate: the isolated L2 network of one (account, security
// group), EC2-classic managed networking as Eucalyptus had it. It owns the
// private side of its instances' NICs: private IP (one per instance, never
// two instances with one IP), MAC, tap and metadata options. Its VXLAN/VLAN
// id and /24 are a lease from the region's ledger (network.h), which decides
// that no two live groups share one; the segment only ever uses the newest
// lease it was given and retires it when its last NIC goes.
// Aggregate id: "<account id>/<sg-...>".
//
// Lifecycle: (none) --allocate_nics(lease n)--> active(n)
//            active(n) --retire(n), no NICs--> retired(n)
//            retired(n) --allocate_nics(lease m > n)--> active(m)
// A retired segment refuses a lease it already retired (segment_retired_code):
// the caller asks the ledger to let that lease go and grant a new one.
#pragma once

#include "actors/runtime/decision.h"
#include "persistence/event_store.h"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace kumo::actors::segment {

// The refusal that asks the caller for a new lease (never sent to clients).
inline constexpr const char* segment_retired_code = "kumo.SegmentRetired";

// MACs and taps carry 20 bits of lease number and 20 of the lease's NIC
// count: the ledger numbers at most this many leases, a lease this many NICs.
inline constexpr uint64_t max_lease_number = (uint64_t{1} << 20) - 1;
inline constexpr uint64_t max_nics_per_lease = (uint64_t{1} << 20) - 1;

// What the ledger granted: the segment's id on the wire and its subnet.
struct lease {
  uint64_t number = 0;  // never reused by the ledger; 0 = none
  uint32_t vni = 0;
  std::string subnet;   // "10.16.3.0/24"
  bool operator==(const lease&) const = default;
};

// IMDS settings of one instance (ModifyInstanceMetadataOptions).
struct metadata_options {
  bool tokens_required = false;  // HttpTokens=required
  int hop_limit = 1;             // HttpPutResponseHopLimit, 1..64
  bool endpoint_enabled = true;  // HttpEndpoint
  bool operator==(const metadata_options&) const = default;
};

struct nic {
  std::string instance_id;
  std::string private_ip;
  std::string mac;  // "02:" + lease and serial: locally administered, never reused
  std::string tap;  // "kt" + the same 10 hex digits
  metadata_options metadata;
  int64_t allocated_ms = 0;
  bool operator==(const nic&) const = default;
};

// ---- Commands
// Gives every listed instance a NIC (instances that have one keep it, so a
// retry is harmless). All or nothing. `with` is the lease the ledger holds
// for the group: taken up when the segment has none; an older one than the
// segment's is refused as retired. Account and group must be the id's.
struct allocate_nics {
  std::string account_id;
  std::string group_id;
  lease with;
  std::vector<std::string> instance_ids;
  int64_t at_ms = 0;
};
// The instance is gone: its NIC goes too (a NIC that is not there: nothing).
// With `allocated_ms`, only the NIC of that age: the network controller
// judged an orphan by it, and a retried launch that claimed the NIC again
// since (a newer allocated_ms) keeps it.
struct release_nic {
  std::string instance_id;
  int64_t allocated_ms = 0;  // 0: whatever its age
};
// No NIC is left: give lease `number` back (the ledger frees it next).
struct retire {
  uint64_t number = 0;
};
// Only the fields given change, so two calls changing different fields both land.
struct set_metadata_options {
  std::string instance_id;
  std::optional<bool> tokens_required;
  std::optional<int> hop_limit;
  std::optional<bool> endpoint_enabled;
};
using command = std::variant<allocate_nics, release_nic, retire, set_metadata_options>;

// ---- Events
struct segment_leased {
  std::string account_id;
  std::string group_id;
  lease with;
};
struct nic_allocated {
  nic n;
  uint64_t serial = 0;  // the MAC/tap counter it used
};
struct nic_released {
  std::string instance_id;
};
// A retried launch (same ClientToken, same instance ids) wants a NIC it
// already has: it counts as allocated now, so it is not taken for an orphan.
struct nic_claimed {
  std::string instance_id;
  int64_t at_ms = 0;
};
struct segment_retired {
  uint64_t number = 0;
};
struct metadata_options_set {
  std::string instance_id;
  metadata_options options;
};
using event = std::variant<segment_leased, nic_allocated, nic_released, segment_retired, metadata_options_set,
                           nic_claimed>;

// ---- State
struct state {
  bool exists = false;
  std::string account_id;
  std::string group_id;
  lease current;          // the newest lease it was given
  bool retired = false;   // `current` was given back
  std::map<std::string, nic> nics;  // by instance id
  uint64_t nic_serial = 0;          // NICs numbered on the current lease (MACs and taps are never reused)
  bool active() const { return current.number != 0 && !retired; }
  bool operator==(const state&) const = default;
};

struct aggregate {
  using state = segment::state;
  using event = segment::event;
  using command = segment::command;
  static constexpr const char* kind = "segment";
  static constexpr uint32_t state_version = 1;

  static bool valid_id(const std::string& id);
  static decision<aggregate> decide(const std::string& id, const state& s, const command& c);
  static state apply(state s, const event& e);
  static persistence::new_event encode(const event& e);
  static persistence::status decode(const persistence::event_record& r, event& out);
  static std::string save(const state& s);
  static bool load(const std::string& json, state& s);
};

// "<account>/<sg-...>".
std::string aggregate_id(const std::string& account_id, const std::string& group_id);
// The segment of an instance launched into these security groups: the first
// one's, as in EC2-classic. Empty when there is none.
std::string id_of_instance(const std::string& account_id, const std::vector<std::string>& security_group_ids);

}  // namespace kumo::actors::segment
