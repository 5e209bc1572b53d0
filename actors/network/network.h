// The Network aggregate: the ledger of one region, EC2-classic managed
// networking as Eucalyptus had it. It owns every allocation that must never
// be given out twice across the region: the lease of a segment id
// (VXLAN/VLAN id) and a /24 for each (account, security group), and public
// IPs (elastic and auto-assigned) with their associations. Each segment's
// private addresses belong to its own Segment aggregate (segment.h). The
// data plane of every host is computed from these states (see
// network_actors.h and net/), never kept anywhere else. Aggregate id: the
// region name.
#pragma once

#include "actors/runtime/decision.h"
#include "persistence/event_store.h"

#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

namespace kumo::actors::network {

// Where allocations come from (kumod's --net-* flags). Carried by the
// commands that allocate, so decide() stays a pure function.
struct pools {
  uint32_t vni_first = 1000;
  uint32_t vni_last = 1999;
  std::string private_cidr = "10.16.0.0/16";  // cut into /24 segments
  std::string public_first;                     // "198.51.100.10"; empty: no public addresses
  std::string public_last;
  bool operator==(const pools&) const = default;
};

// EC2's default quota of elastic IPs per account (also keeps one account
// from taking the whole pool).
constexpr size_t max_addresses_per_account = 5;

// A segment's hold on a segment id and a /24 (see segment.h for the segment).
struct lease {
  std::string account_id;
  std::string group_id;
  uint64_t number = 0;  // never reused: the segment only takes a lease newer than the one it gave back
  uint32_t vni = 0;
  std::string subnet;   // "10.16.3.0/24": fixed at grant, whatever the flags say later
  int64_t granted_ms = 0;
  bool operator==(const lease&) const = default;
};

// An instance with networking: its account and the public IP it got at launch.
struct attachment {
  std::string account_id;
  std::string auto_public_ip;  // empty: none; an associated elastic IP takes precedence
  int64_t at_ms = 0;
  bool operator==(const attachment&) const = default;
};

struct address {
  std::string allocation_id;  // eipalloc-...
  std::string account_id;
  std::string public_ip;
  std::string instance_id;     // empty when not associated
  std::string association_id;  // eipassoc-..., empty when not associated
  bool operator==(const address&) const = default;
};

// ---- Commands
// Before RunInstances launches: the lease of the instances' segment (granted
// when the group has none) and each instance's attachment (instances that
// have one keep it, so a retry is harmless). All or nothing. `stale_lease`:
// the segment refused that lease as given back; it is let go first.
struct prepare_launch {
  std::string account_id;
  std::string group_id;  // the instances' first security group names their segment
  std::vector<std::string> instance_ids;
  pools from;
  bool auto_public_ip = false;
  int64_t at_ms = 0;
  uint64_t stale_lease = 0;
};
// The instances are gone (or never launched): their auto public IPs and
// associations go too. Instances it does not know: nothing. With
// `attached_ms`, only attachments of that age: the ones the caller judged,
// so a launch that claimed one again since keeps it.
struct release_instances {
  std::vector<std::string> instance_ids;
  int64_t attached_ms = 0;  // 0: whatever their age
};
// The segment gave lease `number` back (segment::retire): free its id and /24.
struct release_lease {
  std::string account_id;
  std::string group_id;
  uint64_t number = 0;
};
struct allocate_address {
  std::string account_id;
  std::string allocation_id;  // chosen by the caller (never reused)
  pools from;
};
// As on EC2, an instance with an elastic IP has no auto-assigned one: it is
// given back on association, and an instance that loses its elastic IP gets
// a new one from `from` when the cloud auto-assigns (`auto_public_ip`).
struct associate_address {
  std::string account_id;
  std::string allocation_id;
  std::string instance_id;
  std::string association_id;  // used when a new association is made
  bool allow_reassociation = true;
  pools from;
  bool auto_public_ip = false;
};
struct disassociate_address {
  std::string account_id;
  std::string association_id;
  pools from;
  bool auto_public_ip = false;
};
struct release_address {
  std::string account_id;
  std::string allocation_id;
};
// A data plane repaired drift between the kernel and this ledger (audit).
struct record_repair {
  std::string host;
  std::string what;
  int64_t at_ms = 0;
};
using command = std::variant<prepare_launch, release_instances, release_lease, allocate_address,
                             associate_address, disassociate_address, release_address, record_repair>;

// ---- Events
struct lease_granted {
  lease l;
};
struct lease_released {
  lease l;  // all of it, so an audit of the group or the segment id finds it
};
struct instance_attached {
  std::string instance_id;
  attachment a;
};
struct instance_detached {
  std::string instance_id;
};
// A retried launch (same ClientToken, same ids) wants an attachment it
// already has: it counts as made now, so it is not taken for an orphan.
struct instance_claimed {
  std::string instance_id;
  int64_t at_ms = 0;
};
struct address_allocated {
  std::string allocation_id;
  std::string account_id;
  std::string public_ip;
};
struct address_associated {
  std::string allocation_id;
  std::string association_id;
  std::string instance_id;
};
struct address_disassociated {
  std::string allocation_id;
};
struct address_released {
  std::string allocation_id;
};
struct auto_public_ip_set {
  std::string instance_id;
  std::string public_ip;  // empty: given back
};
struct repaired {
  std::string host;
  std::string what;
  int64_t at_ms = 0;
};
using event = std::variant<lease_granted, lease_released, instance_attached, instance_detached, address_allocated,
                           address_associated, address_disassociated, address_released, auto_public_ip_set,
                           instance_claimed, repaired>;

// ---- State
struct state {
  bool exists = false;
  std::map<uint32_t, lease> leases;              // by vni
  std::map<std::string, attachment> instances;  // by instance id
  std::map<std::string, address> addresses;     // by allocation id
  uint64_t lease_serial = 0;                    // lease numbers are never reused
  bool operator==(const state&) const = default;
};

// The public IP an instance of the account answers on: its elastic IP, else
// its auto one.
std::string public_ip_of(const state& s, const std::string& account_id, const std::string& instance_id);
// The live lease of (account, group), or nullptr.
const lease* lease_of(const state& s, const std::string& account_id, const std::string& group_id);

struct aggregate {
  using state = network::state;
  using event = network::event;
  using command = network::command;
  static constexpr const char* kind = "network";
  static constexpr uint32_t state_version = 2;

  static bool valid_id(const std::string& id);
  static decision<aggregate> decide(const std::string& id, const state& s, const command& c);
  static state apply(state s, const event& e);
  static persistence::new_event encode(const event& e);
  static persistence::status decode(const persistence::event_record& r, event& out);
  static std::string save(const state& s);
  static bool load(const std::string& json, state& s);
};

}  // namespace kumo::actors::network
