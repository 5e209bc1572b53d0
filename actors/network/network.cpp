#include "actors/network/network.h"

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

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(segment, account_id, group_id, vni, index, subnet)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(metadata_options, tokens_required, hop_limit, endpoint_enabled)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(nic, instance_id, account_id, group_id, vni, private_ip, mac, tap,
                                   auto_public_ip, metadata, allocated_ms)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(address, allocation_id, account_id, public_ip, instance_id, association_id)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(state, exists, segments, nics, addresses, nic_serial)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(segment_allocated, seg)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(segment_released, vni)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(nic_allocated, n, serial)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(nic_released, instance_id)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(address_allocated, allocation_id, account_id, public_ip)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(address_associated, allocation_id, association_id, instance_id)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(address_disassociated, allocation_id)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(address_released, allocation_id)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(metadata_options_set, instance_id, options)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(repaired, host, what, at_ms)

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

// Guests get .10 and up; .1 is the gateway on the bridge.
constexpr int first_host = 10, last_host = 254;

std::string mac_of(uint64_t serial) {
  return fmt::format("d0:0d:{:02x}:{:02x}:{:02x}:{:02x}", (serial >> 24) & 255, (serial >> 16) & 255,
                     (serial >> 8) & 255, serial & 255);
}
std::string tap_of(uint64_t serial) { return fmt::format("kt{:013x}", serial); }

std::set<std::string> public_ips_in_use(const state& s) {
  std::set<std::string> used;
  for (const auto& [_, a] : s.addresses) used.insert(a.public_ip);
  for (const auto& [_, n] : s.nics)
    if (!n.auto_public_ip.empty()) used.insert(n.auto_public_ip);
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

decision_t allocate(const state& s, const allocate_nics& cmd) {
  auto blocks = private_blocks(cmd.from.private_cidr);
  if (!blocks)
    return decision_t::refuse("InternalError", "the private range '" + cmd.from.private_cidr +
                                                   "' is not a CIDR between /8 and /24; fix --net-private");
  // A working copy, so several instances of one request see each other.
  state work = s;
  decision_t out;
  auto emit = [&](event e) {
    work = aggregate::apply(std::move(work), e);
    out.events.push_back(std::move(e));
  };
  for (const auto& req : cmd.requests) {
    if (work.nics.count(req.instance_id)) continue;
    const segment* seg = segment_of(work, req.account_id, req.group_id);
    if (!seg) {
      std::set<uint32_t> indexes;
      for (const auto& [_, g] : work.segments) indexes.insert(g.index);
      uint32_t vni = cmd.from.vni_first;
      while (vni <= cmd.from.vni_last && work.segments.count(vni)) ++vni;
      uint32_t index = 0;
      while (index < blocks->second && indexes.count(index)) ++index;
      if (vni > cmd.from.vni_last || index >= blocks->second)
        return decision_t::refuse("InsufficientAddressCapacity",
                                  "no network segment is free for security group " + req.group_id +
                                      " (segment ids " + std::to_string(cmd.from.vni_first) + "-" +
                                      std::to_string(cmd.from.vni_last) + ", private range " +
                                      cmd.from.private_cidr + "); terminate instances of unused groups");
      emit(segment_allocated{{req.account_id, req.group_id, vni, index,
                              ipv4_text(blocks->first + index * 256) + "/24"}});
      seg = segment_of(work, req.account_id, req.group_id);
    }
    std::set<std::string> taken;
    for (const auto& [_, n] : work.nics)
      if (n.vni == seg->vni) taken.insert(n.private_ip);
    auto base = *ipv4(seg->subnet.substr(0, seg->subnet.find('/')));
    std::string ip;
    for (int host = first_host; host <= last_host && ip.empty(); ++host)
      if (!taken.count(ipv4_text(base + host))) ip = ipv4_text(base + host);
    if (ip.empty())
      return decision_t::refuse("InsufficientAddressCapacity", "segment " + seg->subnet + " of security group " +
                                                                   req.group_id + " has no free address");
    nic n{req.instance_id, req.account_id, req.group_id, seg->vni, ip, mac_of(work.nic_serial + 1),
          tap_of(work.nic_serial + 1), {}, {}, cmd.at_ms};
    if (cmd.auto_public_ip) {
      if (auto pub = free_public_ip(cmd.from, public_ips_in_use(work))) n.auto_public_ip = *pub;
      // No free public address: the instance still gets its private one, as on EC2-classic.
    }
    emit(nic_allocated{n, work.nic_serial + 1});
  }
  return out;
}

decision_t release(const state& s, const release_nic& cmd) {
  auto it = s.nics.find(cmd.instance_id);
  if (it == s.nics.end()) return {};
  decision_t out;
  if (const auto* a = association_of(s, cmd.instance_id)) out.events.push_back(address_disassociated{a->allocation_id});
  out.events.push_back(nic_released{cmd.instance_id});
  bool last_on_segment = std::none_of(s.nics.begin(), s.nics.end(), [&](const auto& kv) {
    return kv.first != cmd.instance_id && kv.second.vni == it->second.vni;
  });
  if (last_on_segment) out.events.push_back(segment_released{it->second.vni});
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
  const address& a = *std::get<const address*>(found);
  auto n = s.nics.find(cmd.instance_id);
  if (n == s.nics.end() || n->second.account_id != cmd.account_id)
    return decision_t::refuse("InvalidInstanceID.NotFound",
                              "The instance ID '" + cmd.instance_id + "' does not exist or has no network interface");
  if (a.instance_id == cmd.instance_id) return {};  // already so: a retry
  if (!a.instance_id.empty() && !cmd.allow_reassociation)
    return decision_t::refuse("Resource.AlreadyAssociated", "The address " + a.public_ip +
                                                                " is already associated with " + a.instance_id +
                                                                "; pass AllowReassociation to move it");
  decision_t out;
  // One elastic IP per instance: an older one is let go, in the same write,
  // so the move is atomic for the data plane.
  if (const auto* old = association_of(s, cmd.instance_id)) out.events.push_back(address_disassociated{old->allocation_id});
  if (!a.instance_id.empty()) out.events.push_back(address_disassociated{a.allocation_id});
  out.events.push_back(address_associated{a.allocation_id, cmd.association_id, cmd.instance_id});
  return out;
}

decision_t disassociate(const state& s, const disassociate_address& cmd) {
  for (const auto& [id, a] : s.addresses)
    if (a.account_id == cmd.account_id && a.association_id == cmd.association_id && !a.association_id.empty())
      return {{address_disassociated{id}}, {}};
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

std::string public_ip_of(const state& s, const std::string& instance_id) {
  if (const auto* a = association_of(s, instance_id)) return a->public_ip;
  auto it = s.nics.find(instance_id);
  return it == s.nics.end() ? std::string{} : it->second.auto_public_ip;
}

const segment* segment_of(const state& s, const std::string& account_id, const std::string& group_id) {
  for (const auto& [_, g] : s.segments)
    if (g.account_id == account_id && g.group_id == group_id) return &g;
  return nullptr;
}

bool aggregate::valid_id(const std::string& id) { return valid_plain_name(id); }

decision_t aggregate::decide(const std::string&, const state& s, const command& c) {
  return std::visit(
      overloaded{
          [&](const allocate_nics& cmd) { return allocate(s, cmd); },
          [&](const release_nic& cmd) { return release(s, cmd); },
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
          [&](const set_metadata_options& cmd) -> decision_t {
            auto it = s.nics.find(cmd.instance_id);
            if (it == s.nics.end() || it->second.account_id != cmd.account_id)
              return decision_t::refuse("InvalidInstanceID.NotFound",
                                        "The instance ID '" + cmd.instance_id + "' does not exist");
            if (cmd.options.hop_limit < 1 || cmd.options.hop_limit > 64)
              return decision_t::refuse("InvalidParameterValue",
                                        "HttpPutResponseHopLimit must be between 1 and 64, got " +
                                            std::to_string(cmd.options.hop_limit));
            if (it->second.metadata == cmd.options) return {};
            return {{metadata_options_set{cmd.instance_id, cmd.options}}, {}};
          },
          [&](const record_repair& cmd) -> decision_t { return {{repaired{cmd.host, cmd.what, cmd.at_ms}}, {}}; },
      },
      c);
}

state aggregate::apply(state s, const event& e) {
  s.exists = true;
  std::visit(overloaded{
                 [&](const segment_allocated& ev) { s.segments[ev.seg.vni] = ev.seg; },
                 [&](const segment_released& ev) { s.segments.erase(ev.vni); },
                 [&](const nic_allocated& ev) {
                   s.nics[ev.n.instance_id] = ev.n;
                   s.nic_serial = std::max(s.nic_serial, ev.serial);
                 },
                 [&](const nic_released& ev) { s.nics.erase(ev.instance_id); },
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
                 [&](const metadata_options_set& ev) {
                   if (auto it = s.nics.find(ev.instance_id); it != s.nics.end()) it->second.metadata = ev.options;
                 },
                 [&](const repaired&) {},  // audit only
             },
             e);
  return s;
}

namespace {
template <class E>
constexpr const char* type_name();
#define KUMO_NETWORK_EVENT(T) \
  template <>                 \
  constexpr const char* type_name<T>() { return #T; }
KUMO_NETWORK_EVENT(segment_allocated)
KUMO_NETWORK_EVENT(segment_released)
KUMO_NETWORK_EVENT(nic_allocated)
KUMO_NETWORK_EVENT(nic_released)
KUMO_NETWORK_EVENT(address_allocated)
KUMO_NETWORK_EVENT(address_associated)
KUMO_NETWORK_EVENT(address_disassociated)
KUMO_NETWORK_EVENT(address_released)
KUMO_NETWORK_EVENT(metadata_options_set)
KUMO_NETWORK_EVENT(repaired)
#undef KUMO_NETWORK_EVENT

// Decodes `j` as the alternative of `event` whose type name is `type`.
template <size_t I = 0>
bool decode_as(const std::string& type, const json& j, event& out) {
  if constexpr (I == std::variant_size_v<event>) {
    return false;
  } else {
    using E = std::variant_alternative_t<I, event>;
    if (type == type_name<E>()) {
      out = j.get<E>();
      return true;
    }
    return decode_as<I + 1>(type, j, out);
  }
}
}  // namespace

persistence::new_event aggregate::encode(const event& e) {
  return std::visit(
      [](const auto& ev) {
        using E = std::decay_t<decltype(ev)>;
        return persistence::new_event{type_name<E>(), 1, json(ev).dump()};
      },
      e);
}

persistence::status aggregate::decode(const persistence::event_record& r, event& out) {
  return decode_json_event(r, kind, [&](const json& j) { return decode_as(r.type, j, out); });
}

std::string aggregate::save(const state& s) { return save_json_state(s); }

bool aggregate::load(const std::string& text, state& s) { return load_json_state(text, s); }

}  // namespace kumo::actors::network
