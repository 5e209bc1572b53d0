#include "actors/network/segment.h"

#include "actors/runtime/json_codec.h"
#include "net/desired_state.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <set>

namespace kumo::actors::segment {

using json = nlohmann::json;
using decision_t = decision<aggregate>;

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(lease, number, vni, subnet)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(metadata_options, tokens_required, hop_limit, endpoint_enabled)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(nic, instance_id, private_ip, mac, tap, metadata, allocated_ms)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(state, exists, account_id, group_id, current, retired, nics, nic_serial)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(segment_leased, account_id, group_id, with)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(nic_allocated, n, serial)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(nic_released, instance_id)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(segment_retired, number)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(metadata_options_set, instance_id, options)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(nic_claimed, instance_id, at_ms)

KUMO_EVENT_NAME(segment_leased)
KUMO_EVENT_NAME(nic_allocated)
KUMO_EVENT_NAME(nic_released)
KUMO_EVENT_NAME(segment_retired)
KUMO_EVENT_NAME(metadata_options_set)
KUMO_EVENT_NAME(nic_claimed)

namespace {

// Guests get .10 and up; .1 is the gateway on the bridge.
constexpr int first_host = 10, last_host = 254;
// 40 bits, lease then serial: "02:" + 5 bytes for the MAC, "kt" + 10 hex for the tap.
uint64_t nic_bits(uint64_t lease_number, uint64_t serial) { return (lease_number << 20) | serial; }
std::string mac_of(uint64_t bits) {
  return fmt::format("02:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", (bits >> 32) & 255, (bits >> 24) & 255,
                     (bits >> 16) & 255, (bits >> 8) & 255, bits & 255);
}
std::string tap_of(uint64_t bits) { return fmt::format("kt{:010x}", bits); }

decision_t allocate(const std::string& id, const state& s, const allocate_nics& cmd) {
  if (id != aggregate_id(cmd.account_id, cmd.group_id))
    return decision_t::refuse("InternalError", "segment " + id + " was asked for NICs of " +
                                                   aggregate_id(cmd.account_id, cmd.group_id));
  working_decision<aggregate> d{s, {}};
  const state& work = d.work;
  if (s.active() && cmd.with.number < s.current.number)
    return decision_t::refuse(segment_retired_code, "segment " + id + " runs on lease " +
                                                        std::to_string(s.current.number) + ", newer than " +
                                                        std::to_string(cmd.with.number));
  if (s.active() && cmd.with.number > s.current.number)
    return decision_t::refuse("InternalError", "segment " + id + " runs on lease " +
                                                   std::to_string(s.current.number) + " but the ledger holds " +
                                                   std::to_string(cmd.with.number) + " for it");
  if (!s.active()) {
    if (cmd.with.number <= s.current.number)
      return decision_t::refuse(segment_retired_code, "segment " + id + " gave lease " +
                                                          std::to_string(cmd.with.number) + " back; get a new one");
    if (!net::host_in(cmd.with.subnet, first_host))
      return decision_t::refuse("InternalError", "segment " + id + ": lease " + std::to_string(cmd.with.number) +
                                                     " has no usable subnet '" + cmd.with.subnet + "'");
    d.emit(segment_leased{cmd.account_id, cmd.group_id, cmd.with});
  }
  for (const auto& instance_id : cmd.instance_ids) {
    if (auto it = work.nics.find(instance_id); it != work.nics.end()) {
      if (cmd.at_ms > it->second.allocated_ms) d.emit(nic_claimed{instance_id, cmd.at_ms});
      continue;
    }
    std::set<std::string> taken;
    for (const auto& [_, n] : work.nics) taken.insert(n.private_ip);
    std::string ip;
    for (int host = first_host; host <= last_host && ip.empty(); ++host)
      if (auto a = net::host_in(work.current.subnet, host); a && !taken.count(a.value)) ip = a.value;
    if (ip.empty())
      return decision_t::refuse("InsufficientAddressCapacity", "segment " + work.current.subnet + " of security group " +
                                                                   work.group_id + " has no free address");
    const uint64_t serial = work.nic_serial + 1;
    if (serial > max_nics_per_lease || work.current.number > max_lease_number)
      return decision_t::refuse("InsufficientAddressCapacity",
                                "segment " + id + " has numbered all the NICs its lease can; terminate all its "
                                "instances so it gets a new lease");
    const auto bits = nic_bits(work.current.number, serial);
    d.emit(nic_allocated{{instance_id, ip, mac_of(bits), tap_of(bits), {}, cmd.at_ms}, serial});
  }
  return d.out;
}

decision_t retire_lease(const std::string& id, const state& s, const retire& cmd) {
  if (cmd.number < s.current.number || (cmd.number == s.current.number && s.retired)) return {};  // already past it
  if (s.active() && cmd.number != s.current.number)
    return decision_t::refuse("InternalError", "segment " + id + " runs on lease " +
                                                   std::to_string(s.current.number) + ", not " +
                                                   std::to_string(cmd.number));
  if (s.active() && !s.nics.empty())
    return decision_t::refuse("DependencyViolation", "segment " + id + " still has " +
                                                         std::to_string(s.nics.size()) + " network interface(s)");
  // Its own lease, now unused; or a lease the ledger granted that never
  // reached this segment (a crash in between), which it must never take up.
  return {{segment_retired{cmd.number}}, {}};
}

decision_t set_options(const state& s, const set_metadata_options& cmd) {
  auto it = s.nics.find(cmd.instance_id);
  if (it == s.nics.end())
    return decision_t::refuse("InvalidInstanceID.NotFound", "The instance ID '" + cmd.instance_id +
                                                                "' does not exist or has no network interface");
  if (cmd.hop_limit && (*cmd.hop_limit < 1 || *cmd.hop_limit > 64))
    return decision_t::refuse("InvalidParameterValue", "HttpPutResponseHopLimit must be between 1 and 64, got " +
                                                           std::to_string(*cmd.hop_limit));
  auto options = it->second.metadata;  // what is not given stays as it is
  if (cmd.tokens_required) options.tokens_required = *cmd.tokens_required;
  if (cmd.hop_limit) options.hop_limit = *cmd.hop_limit;
  if (cmd.endpoint_enabled) options.endpoint_enabled = *cmd.endpoint_enabled;
  if (options == it->second.metadata) return {};
  return {{metadata_options_set{cmd.instance_id, options}}, {}};
}

}  // namespace

std::string aggregate_id(const std::string& account_id, const std::string& group_id) {
  return account_id + "/" + group_id;
}

std::string id_of_instance(const std::string& account_id, const std::vector<std::string>& security_group_ids) {
  return security_group_ids.empty() ? std::string{} : aggregate_id(account_id, security_group_ids.front());
}

bool aggregate::valid_id(const std::string& id) {
  return id.size() > 16 && id[12] == '/' && id.compare(13, 3, "sg-") == 0 &&
         std::all_of(id.begin(), id.begin() + 12, [](char c) { return c >= '0' && c <= '9'; }) &&
         std::all_of(id.begin() + 16, id.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

decision_t aggregate::decide(const std::string& id, const state& s, const command& c) {
  return std::visit(overloaded{
                        [&](const allocate_nics& cmd) { return allocate(id, s, cmd); },
                        [&](const release_nic& cmd) -> decision_t {
                          auto it = s.nics.find(cmd.instance_id);
                          if (it == s.nics.end()) return {};
                          if (cmd.allocated_ms != 0 && cmd.allocated_ms != it->second.allocated_ms) return {};
                          return {{nic_released{cmd.instance_id}}, {}};
                        },
                        [&](const retire& cmd) { return retire_lease(id, s, cmd); },
                        [&](const set_metadata_options& cmd) { return set_options(s, cmd); },
                    },
                    c);
}

state aggregate::apply(state s, const event& e) {
  s.exists = true;
  std::visit(overloaded{
                 [&](const segment_leased& ev) {
                   s.account_id = ev.account_id;
                   s.group_id = ev.group_id;
                   s.current = ev.with;
                   s.retired = false;
                   s.nic_serial = 0;  // the lease number keeps MACs and taps apart
                 },
                 [&](const nic_allocated& ev) {
                   s.nics[ev.n.instance_id] = ev.n;
                   s.nic_serial = std::max(s.nic_serial, ev.serial);
                 },
                 [&](const nic_released& ev) { s.nics.erase(ev.instance_id); },
                 [&](const segment_retired& ev) {
                   if (ev.number > s.current.number) s.current = lease{ev.number, 0, ""};
                   s.retired = true;
                 },
                 [&](const nic_claimed& ev) {
                   if (auto it = s.nics.find(ev.instance_id); it != s.nics.end()) it->second.allocated_ms = ev.at_ms;
                 },
                 [&](const metadata_options_set& ev) {
                   if (auto it = s.nics.find(ev.instance_id); it != s.nics.end()) it->second.metadata = ev.options;
                 },
             },
             e);
  return s;
}

persistence::new_event aggregate::encode(const event& e) { return encode_variant_event(e); }

persistence::status aggregate::decode(const persistence::event_record& r, event& out) {
  return decode_json_event(r, kind, [&](const json& j) { return decode_variant_event(r.type, j, out); });
}

std::string aggregate::save(const state& s) { return save_json_state(s); }

bool aggregate::load(const std::string& text, state& s) { return load_json_state(text, s); }

}  // namespace kumo::actors::segment
