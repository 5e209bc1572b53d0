#include "actors/network/network.h"
#include "actors/network/segment.h"

#include "actors/ids.h"
#include "actors/runtime/json_codec.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <optional>
#include <set>

namespace kumo::actors::network {

using json = nlohmann::json;
using decision_t = decision<aggregate>;

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(lease, account_id, group_id, number, vni, subnet, granted_ms)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(attachment, account_id, auto_public_ip, at_ms)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(address, allocation_id, account_id, public_ip, instance_id, association_id)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(state, exists, leases, instances, addresses, lease_serial)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(lease_granted, l)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(lease_released, l)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(instance_attached, instance_id, a)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(instance_detached, instance_id)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(address_allocated, allocation_id, account_id, public_ip)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(address_associated, allocation_id, association_id, instance_id)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(address_disassociated, allocation_id)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(address_released, allocation_id)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(auto_public_ip_set, instance_id, public_ip)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(instance_claimed, instance_id, at_ms)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(repaired, host, what, at_ms)

KUMO_EVENT_NAME(lease_granted)
KUMO_EVENT_NAME(lease_released)
KUMO_EVENT_NAME(instance_attached)
KUMO_EVENT_NAME(instance_detached)
KUMO_EVENT_NAME(address_allocated)
KUMO_EVENT_NAME(address_associated)
KUMO_EVENT_NAME(address_disassociated)
KUMO_EVENT_NAME(address_released)
KUMO_EVENT_NAME(auto_public_ip_set)
KUMO_EVENT_NAME(instance_claimed)
KUMO_EVENT_NAME(repaired)

namespace {

std::optional<uint32_t> ipv4(const std::string& text) {
  in_addr a{};
  if (inet_pton(AF_INET, text.c_str(), &a) != 1) return std::nullopt;
  return ntohl(a.s_addr);
}

std::string ipv4_text(uint32_t v) {
  return fmt::format("{}.{}.{}.{}", v >> 24, (v >> 16) & 255, (v >> 8) & 255, v & 255);
}

// The private range as (first address, number of /24s), when it is usable.
std::optional<std::pair<uint32_t, uint32_t>> private_blocks(const std::string& cidr) {
  auto slash = cidr.find('/');
  if (slash == std::string::npos) return std::nullopt;
  auto base = ipv4(cidr.substr(0, slash));
  int bits = 0;
  try {
    bits = std::stoi(cidr.substr(slash + 1));
  } catch (...) {
    return std::nullopt;
  }
  if (!base || bits < 8 || bits > 24) return std::nullopt;
  uint32_t mask = bits == 0 ? 0 : ~uint32_t{0} << (32 - bits);
  return std::make_pair(*base & mask, uint32_t{1} << (24 - bits));
}

std::set<std::string> public_ips_in_use(const state& s) {
  std::set<std::string> used;
  for (const auto& [_, a] : s.addresses) used.insert(a.public_ip);
  for (const auto& [_, a] : s.instances)
    if (!a.auto_public_ip.empty()) used.insert(a.auto_public_ip);
  return used;
}

// The lowest free public address of the pool, or nullopt.
std::optional<std::string> free_public_ip(const pools& p, const std::set<std::string>& used) {
  auto first = ipv4(p.public_first), last = ipv4(p.public_last);
  if (!first || !last) return std::nullopt;
  for (uint64_t v = *first; v <= *last; ++v)
    if (!used.count(ipv4_text(static_cast<uint32_t>(v)))) return ipv4_text(static_cast<uint32_t>(v));
  return std::nullopt;
}

const address* association_of(const state& s, const std::string& instance_id) {
  for (const auto& [_, a] : s.addresses)
    if (a.instance_id == instance_id) return &a;
  return nullptr;
}

using decider = working_decision<aggregate>;

// `instance_id` lost its elastic IP: a new auto-assigned one, when the cloud gives them.
void reassign_auto_ip(decider& d, const std::string& instance_id, const pools& from, bool auto_public_ip) {
  auto it = d.work.instances.find(instance_id);
  if (!auto_public_ip || it == d.work.instances.end() || !it->second.auto_public_ip.empty()) return;
  if (auto pub = free_public_ip(from, public_ips_in_use(d.work))) d.emit(auto_public_ip_set{instance_id, *pub});
}

decision_t prepare(const state& s, const prepare_launch& cmd) {
  auto blocks = private_blocks(cmd.from.private_cidr);
  if (!blocks)
    return decision_t::refuse("InternalError", "the private range '" + cmd.from.private_cidr +
                                                   "' is not a CIDR between /8 and /24; fix --net-private");
  decider d{s, {}};
  const state& work = d.work;
  if (const auto* l = lease_of(work, cmd.account_id, cmd.group_id); l && l->number == cmd.stale_lease)
    d.emit(lease_released{*l});
  if (!lease_of(work, cmd.account_id, cmd.group_id)) {
    // Subnets are compared as text, not by index, so a changed --net-private
    // never hands out a /24 a live segment still has.
    std::set<std::string> subnets;
    for (const auto& [_, l] : work.leases) subnets.insert(l.subnet);
    uint32_t vni = cmd.from.vni_first;
    while (vni <= cmd.from.vni_last && work.leases.count(vni)) ++vni;
    uint32_t index = 0;
    auto subnet_of = [&](uint32_t i) { return ipv4_text(blocks->first + i * 256) + "/24"; };
    while (index < blocks->second && subnets.count(subnet_of(index))) ++index;
    if (work.lease_serial >= segment::max_lease_number)
      return decision_t::refuse("InsufficientAddressCapacity",
                                "this region has handed out all " + std::to_string(segment::max_lease_number) +
                                    " segment leases it can number; an operator must start a new region");
    if (vni > cmd.from.vni_last || index >= blocks->second)
      return decision_t::refuse("InsufficientAddressCapacity",
                                "no network segment is free for security group " + cmd.group_id + " (segment ids " +
                                    std::to_string(cmd.from.vni_first) + "-" + std::to_string(cmd.from.vni_last) +
                                    ", private range " + cmd.from.private_cidr +
                                    "); terminate instances of unused groups");
    d.emit(lease_granted{{cmd.account_id, cmd.group_id, work.lease_serial + 1, vni, subnet_of(index), cmd.at_ms}});
  }
  for (const auto& id : cmd.instance_ids) {
    if (auto it = work.instances.find(id); it != work.instances.end()) {
      if (cmd.at_ms > it->second.at_ms) d.emit(instance_claimed{id, cmd.at_ms});
      continue;
    }
    attachment a{cmd.account_id, {}, cmd.at_ms};
    if (cmd.auto_public_ip) {
      if (auto pub = free_public_ip(cmd.from, public_ips_in_use(work))) a.auto_public_ip = *pub;
      // No free public address: the instance still gets its private one, as on EC2-classic.
    }
    d.emit(instance_attached{id, a});
  }
  return d.out;
}

decision_t release(const state& s, const release_instances& cmd) {
  decision_t out;
  for (const auto& id : cmd.instance_ids) {
    auto it = s.instances.find(id);
    if (it == s.instances.end() || (cmd.attached_ms != 0 && cmd.attached_ms != it->second.at_ms)) continue;
    if (const auto* a = association_of(s, id)) out.events.push_back(address_disassociated{a->allocation_id});
    out.events.push_back(instance_detached{id});
  }
  return out;
}

// An allocation of this account, or the EC2 error.
std::variant<const address*, api_error> owned_address(const state& s, const std::string& account_id,
                                                      const std::string& allocation_id) {
  auto it = s.addresses.find(allocation_id);
  if (it == s.addresses.end() || it->second.account_id != account_id)
    return api_error{"InvalidAllocationID.NotFound", "The allocation ID '" + allocation_id + "' does not exist"};
  return &it->second;
}

decision_t associate(const state& s, const associate_address& cmd) {
  auto found = owned_address(s, cmd.account_id, cmd.allocation_id);
  if (auto* e = std::get_if<api_error>(&found)) return decision_t::refuse(e->code, e->message);
  const address a = *std::get<const address*>(found);
  auto n = s.instances.find(cmd.instance_id);
  if (n == s.instances.end() || n->second.account_id != cmd.account_id)
    return decision_t::refuse("InvalidInstanceID.NotFound",
                              "The instance ID '" + cmd.instance_id + "' does not exist or has no network interface");
  if (a.instance_id == cmd.instance_id) return {};  // already so: a retry
  if (!a.instance_id.empty() && !cmd.allow_reassociation)
    return decision_t::refuse("Resource.AlreadyAssociated", "The address " + a.public_ip +
                                                                " is already associated with " + a.instance_id +
                                                                "; pass AllowReassociation to move it");
  decider d{s, {}};
  // One elastic IP per instance: an older one is let go, in the same write,
  // so the move is atomic for the data plane.
  if (const auto* old = association_of(s, cmd.instance_id)) d.emit(address_disassociated{old->allocation_id});
  if (!a.instance_id.empty()) d.emit(address_disassociated{a.allocation_id});
  if (!n->second.auto_public_ip.empty()) d.emit(auto_public_ip_set{cmd.instance_id, ""});
  d.emit(address_associated{a.allocation_id, cmd.association_id, cmd.instance_id});
  if (!a.instance_id.empty()) reassign_auto_ip(d, a.instance_id, cmd.from, cmd.auto_public_ip);
  return d.out;
}

decision_t disassociate(const state& s, const disassociate_address& cmd) {
  for (const auto& [id, a] : s.addresses)
    if (a.account_id == cmd.account_id && a.association_id == cmd.association_id && !a.association_id.empty()) {
      decider d{s, {}};
      d.emit(address_disassociated{id});
      reassign_auto_ip(d, a.instance_id, cmd.from, cmd.auto_public_ip);
      return d.out;
    }
  return decision_t::refuse("InvalidAssociationID.NotFound",
                            "The association ID '" + cmd.association_id + "' does not exist");
}

decision_t release_addr(const state& s, const release_address& cmd) {
  auto found = owned_address(s, cmd.account_id, cmd.allocation_id);
  if (auto* e = std::get_if<api_error>(&found)) return decision_t::refuse(e->code, e->message);
  const address& a = *std::get<const address*>(found);
  if (!a.instance_id.empty())
    return decision_t::refuse("InvalidIPAddress.InUse", "The address " + a.public_ip + " is associated with " +
                                                            a.instance_id + "; disassociate it first");
  return {{address_released{a.allocation_id}}, {}};
}

}  // namespace

std::string public_ip_of(const state& s, const std::string& account_id, const std::string& instance_id) {
  auto it = s.instances.find(instance_id);
  if (it == s.instances.end() || it->second.account_id != account_id) return {};
  if (const auto* a = association_of(s, instance_id)) return a->public_ip;
  return it->second.auto_public_ip;
}

const lease* lease_of(const state& s, const std::string& account_id, const std::string& group_id) {
  for (const auto& [_, l] : s.leases)
    if (l.account_id == account_id && l.group_id == group_id) return &l;
  return nullptr;
}

bool aggregate::valid_id(const std::string& id) { return valid_plain_name(id); }

decision_t aggregate::decide(const std::string&, const state& s, const command& c) {
  return std::visit(
      overloaded{
          [&](const prepare_launch& cmd) { return prepare(s, cmd); },
          [&](const release_instances& cmd) { return release(s, cmd); },
          [&](const release_lease& cmd) -> decision_t {
            const auto* l = lease_of(s, cmd.account_id, cmd.group_id);
            if (!l || l->number != cmd.number) return {};  // already let go
            return {{lease_released{*l}}, {}};
          },
          [&](const allocate_address& cmd) -> decision_t {
            if (auto it = s.addresses.find(cmd.allocation_id); it != s.addresses.end())
              return it->second.account_id == cmd.account_id
                         ? decision_t{}
                         : decision_t::refuse("InternalError", "allocation id collision; retry");
            const auto held = std::count_if(s.addresses.begin(), s.addresses.end(),
                                            [&](const auto& kv) { return kv.second.account_id == cmd.account_id; });
            if (static_cast<size_t>(held) >= max_addresses_per_account)
              return decision_t::refuse("AddressLimitExceeded",
                                        "The maximum number of addresses has been reached (" +
                                            std::to_string(max_addresses_per_account) +
                                            " per account); release one you do not use");
            auto ip = free_public_ip(cmd.from, public_ips_in_use(s));
            if (!ip)
              return decision_t::refuse("AddressLimitExceeded",
                                        cmd.from.public_first.empty()
                                            ? "This cloud has no public address pool (kumod --net-public-pool)"
                                            : "The public address pool " + cmd.from.public_first + "-" +
                                                  cmd.from.public_last + " is exhausted; release unused addresses");
            return {{address_allocated{cmd.allocation_id, cmd.account_id, *ip}}, {}};
          },
          [&](const associate_address& cmd) { return associate(s, cmd); },
          [&](const disassociate_address& cmd) { return disassociate(s, cmd); },
          [&](const release_address& cmd) { return release_addr(s, cmd); },
          [&](const record_repair& cmd) -> decision_t { return {{repaired{cmd.host, cmd.what, cmd.at_ms}}, {}}; },
      },
      c);
}

state aggregate::apply(state s, const event& e) {
  s.exists = true;
  std::visit(overloaded{
                 [&](const lease_granted& ev) {
                   s.leases[ev.l.vni] = ev.l;
                   s.lease_serial = std::max(s.lease_serial, ev.l.number);
                 },
                 [&](const lease_released& ev) { s.leases.erase(ev.l.vni); },
                 [&](const instance_attached& ev) { s.instances[ev.instance_id] = ev.a; },
                 [&](const instance_detached& ev) { s.instances.erase(ev.instance_id); },
                 [&](const address_allocated& ev) {
                   s.addresses[ev.allocation_id] = {ev.allocation_id, ev.account_id, ev.public_ip, {}, {}};
                 },
                 [&](const address_associated& ev) {
                   auto& a = s.addresses[ev.allocation_id];
                   a.instance_id = ev.instance_id;
                   a.association_id = ev.association_id;
                 },
                 [&](const address_disassociated& ev) {
                   auto& a = s.addresses[ev.allocation_id];
                   a.instance_id.clear();
                   a.association_id.clear();
                 },
                 [&](const address_released& ev) { s.addresses.erase(ev.allocation_id); },
                 [&](const instance_claimed& ev) {
                   if (auto it = s.instances.find(ev.instance_id); it != s.instances.end()) it->second.at_ms = ev.at_ms;
                 },
                 [&](const auto_public_ip_set& ev) {
                   if (auto it = s.instances.find(ev.instance_id); it != s.instances.end())
                     it->second.auto_public_ip = ev.public_ip;
                 },
                 [&](const repaired&) {},  // audit only
             },
             e);
  return s;
}

persistence::new_event aggregate::encode(const event& e) { return encode_variant_event(e); }

persistence::status aggregate::decode(const persistence::event_record& r, event& out) {
  // The first networking format kept NICs in this ledger; it was replaced
  // (by segment aggregates) before any release, so it is refused by name.
  static const std::set<std::string> first_format = {"segment_allocated", "segment_released", "nic_allocated",
                                                     "nic_released", "metadata_options_set"};
  if (first_format.count(r.type))
    return persistence::status::error(
        persistence::status_code::corrupt,
        "event type '" + r.type + "' in " + r.stream +
            " is from kumo's first networking format (NICs in the region ledger, before segment aggregates); "
            "this kumod cannot replay it: start on a fresh --data-dir, or run the kumod that wrote it");
  return decode_json_event(r, kind, [&](const json& j) { return decode_variant_event(r.type, j, out); });
}

std::string aggregate::save(const state& s) { return save_json_state(s); }

bool aggregate::load(const std::string& text, state& s) { return load_json_state(text, s); }

}  // namespace kumo::actors::network
