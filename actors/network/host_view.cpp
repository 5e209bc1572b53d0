#include "actors/network/host_view.h"

#include "crypto/digest.h"
#include "net/desired_state.h"

#include <algorithm>

namespace kumo::actors::network {

void for_each_nic(const state& ledger, const segments_by_id& segments, const nic_visitor& f) {
  for (const auto& [_, seg] : segments) {
    auto l = ledger.leases.find(seg->current.vni);
    if (!seg->active() || l == ledger.leases.end() || l->second.number != seg->current.number) continue;
    for (const auto& [id, n] : seg->nics) f(*seg, n, public_ip_of(ledger, seg->account_id, id));
  }
}

net::network_view host_view(const state& ledger, const segments_by_id& segments, const groups_by_id& groups,
                            const host_settings& host) {
  net::network_view v;
  v.mode = host.mode;
  v.physical_interface = host.physical_interface;
  v.metadata_port = host.metadata_port;
  v.guest_mtu = host.guest_mtu;
  for (const auto& [vni, seg] : ledger.leases) {
    v.segments.push_back({vni, seg.account_id, seg.group_id, seg.subnet});
    auto g = groups.find(seg.group_id);
    if (g == groups.end() || !g->second || g->second->account_id != seg.account_id) continue;
    auto compile = [&](const std::vector<security_group::rule>& rules, std::vector<net::group_rule>& into) {
      for (const auto& r : rules) {
        net::group_rule out{vni, r.protocol, r.from_port, r.to_port, r.cidr, 0};
        if (!r.source_group_id.empty()) {
          const auto* peer = lease_of(ledger, seg.account_id, r.source_group_id);
          if (!peer) continue;  // a group without instances has no segment: nobody to admit or reach
          out.peer_vni = peer->vni;
        }
        into.push_back(std::move(out));
      }
    };
    compile(g->second->ingress, v.ingress);
    compile(g->second->egress, v.egress);
  }
  for_each_nic(ledger, segments, [&](const segment::state& seg, const segment::nic& n, const std::string& public_ip) {
    v.nics.push_back({n.instance_id, seg.current.vni, n.mac, n.private_ip, public_ip, n.tap});
  });
  std::sort(v.nics.begin(), v.nics.end(), [](const auto& a, const auto& b) { return a.instance_id < b.instance_id; });
  return v;
}

account_network account_view(const state& ledger, const segments_by_id& segments, const std::string& account_id) {
  account_network out;
  for_each_nic(ledger, segments, [&](const segment::state& seg, const segment::nic& n, const std::string& public_ip) {
    if (seg.account_id == account_id) out.instances[n.instance_id] = {seg.group_id, n, public_ip};
  });
  for (const auto& [_, a] : ledger.addresses)
    if (a.account_id == account_id) out.addresses.push_back(a);
  return out;
}

net::metadata_table metadata_of(const state& ledger, const segments_by_id& segments, const instance_lookup& instances,
                                const std::string& region) {
  net::metadata_table table;
  for_each_nic(ledger, segments, [&](const segment::state& seg, const segment::nic& n, const std::string& public_ip) {
    const auto* inst = instances(seg.account_id, n.instance_id);
    if (!inst || inst->status == instance::lifecycle::terminated) return;
    const auto& spec = inst->spec;
    net::instance_metadata m;
    m.instance_id = n.instance_id;
    m.account_id = spec.account_id;
    m.reservation_id = spec.reservation_id;
    m.image_id = spec.image_id;
    m.instance_type = spec.size.instance_type;
    m.availability_zone = spec.zone;
    m.region = region;
    m.private_ip = n.private_ip;
    m.public_ip = public_ip;
    m.mac = n.mac;
    m.hostname = net::host_name(n.private_ip) + "." + region + ".compute.internal";
    m.security_groups = spec.security_group_names;
    m.key_name = spec.key_name;
    m.public_key = spec.public_key;
    m.block_devices = {{"ami", "/dev/vda"}, {"root", "/dev/vda"}};
    if (!spec.user_data.empty()) m.user_data = crypto::base64_decode(spec.user_data).value_or("");
    m.launch_ms = spec.launch_ms;
    m.http_tokens_required = n.metadata.tokens_required;
    m.hop_limit = n.metadata.hop_limit;
    m.endpoint_enabled = n.metadata.endpoint_enabled;
    table[n.private_ip] = std::move(m);
  });
  return table;
}

}  // namespace kumo::actors::network
