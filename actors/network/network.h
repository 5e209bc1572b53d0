// The Network aggregate: the address ledger of one region, EC2-classic
// managed networking as Eucalyptus had it. It owns every allocation that must
// never be given out twice: a segment (VXLAN/VLAN id and a /24) per (account,
// security group), a NIC (private IP, MAC, tap) per instance, public IPs
// (elastic and auto-assigned) and their associations. The data plane of every
// host is computed from this state (see actors/network/network_controller.h
// and net/), never kept anywhere else. Aggregate id: the region name.
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

struct segment {
  std::string account_id;
  std::string group_id;
  uint32_t vni = 0;
  uint32_t index = 0;  // which /24 of the private range
  std::string subnet;  // "10.16.3.0/24": fixed at allocation, whatever the flags say later
  bool operator==(const segment&) const = default;
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
  std::string account_id;
  std::string group_id;
  uint32_t vni = 0;
  std::string private_ip;
  std::string mac;
  std::string tap;
  std::string auto_public_ip;  // assigned at launch; replaced while an elastic IP is associated
  metadata_options metadata;
  int64_t allocated_ms = 0;
  bool operator==(const nic&) const = default;
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
struct nic_request {
  std::string instance_id;
  std::string account_id;
  std::string group_id;  // the instance's first security group names its segment
};
// Gives every listed instance a NIC (instances that have one keep it, so a
// retry is harmless). All or nothing.
struct allocate_nics {
  std::vector<nic_request> requests;
  pools from;
  bool auto_public_ip = false;
  int64_t at_ms = 0;
};
// The instance is gone: its NIC, auto public IP and association go too.
struct release_nic {
  std::string instance_id;
};
struct allocate_address {
  std::string account_id;
  std::string allocation_id;  // chosen by the caller (never reused)
  pools from;
};
struct associate_address {
  std::string account_id;
  std::string allocation_id;
  std::string instance_id;
  std::string association_id;  // used when a new association is made
  bool allow_reassociation = true;
};
struct disassociate_address {
  std::string account_id;
  std::string association_id;
};
struct release_address {
  std::string account_id;
  std::string allocation_id;
};
struct set_metadata_options {
  std::string account_id;
  std::string instance_id;
  metadata_options options;
};
// A data plane repaired drift between the kernel and this ledger (audit).
struct record_repair {
  std::string host;
  std::string what;
  int64_t at_ms = 0;
};
using command = std::variant<allocate_nics, release_nic, allocate_address, associate_address,
                             disassociate_address, release_address, set_metadata_options, record_repair>;

// ---- Events
struct segment_allocated {
  segment seg;
};
struct segment_released {
  uint32_t vni = 0;
};
struct nic_allocated {
  nic n;
  uint64_t serial = 0;  // the tap/MAC counter it used
};
struct nic_released {
  std::string instance_id;
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
struct metadata_options_set {
  std::string instance_id;
  metadata_options options;
};
struct repaired {
  std::string host;
  std::string what;
  int64_t at_ms = 0;
};
using event = std::variant<segment_allocated, segment_released, nic_allocated, nic_released, address_allocated,
                           address_associated, address_disassociated, address_released, metadata_options_set,
                           repaired>;

// ---- State
struct state {
  bool exists = false;
  std::map<uint32_t, segment> segments;    // by vni
  std::map<std::string, nic> nics;         // by instance id
  std::map<std::string, address> addresses;  // by allocation id
  uint64_t nic_serial = 0;                 // taps and MACs are never reused
  bool operator==(const state&) const = default;
};

// The public IP an instance answers on: its elastic IP, else its auto one.
std::string public_ip_of(const state& s, const std::string& instance_id);
// The segment of (account, group), or nullptr.
const segment* segment_of(const state& s, const std::string& account_id, const std::string& group_id);

struct aggregate {
  using state = network::state;
  using event = network::event;
  using command = network::command;
  static constexpr const char* kind = "network";
  static constexpr uint32_t state_version = 1;

  static bool valid_id(const std::string& id);
  static decision<aggregate> decide(const std::string& id, const state& s, const command& c);
  static state apply(state s, const event& e);
  static persistence::new_event encode(const event& e);
  static persistence::status decode(const persistence::event_record& r, event& out);
  static std::string save(const state& s);
  static bool load(const std::string& json, state& s);
};

}  // namespace kumo::actors::network
