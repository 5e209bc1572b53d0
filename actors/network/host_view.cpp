#include "actors/network/host_view.h"

#include "crypto/digest.h"
#include "net/desired_state.h"

namespace kumo::actors::network {

net::network_view host_view(const state& ledger, const groups_by_id& groups, const host_settings& host) {
  net::network_view v;
  v.mode = host.mode;
  v.physical_interface = host.physical_interface;
  v.metadata_port = host.metadata_port;
  for (const auto& [vni, seg] : ledger.segments) {
    v.segments.push_back({vni, seg.account_id, seg.group_id, seg.subnet});
    auto g = groups.find(seg.group_id);
    if (g == groups.end() || !g->second || g->second->account_id != seg.account_id) continue;
    auto compile = [&](const std::vector<security_group::rule>& rules, std::vector<net::group_rule>& into) {
      for (const auto& r : rules) {
        net::group_rule out{vni, r.protocol, r.from_port, r.to_port, r.cidr, 0};
        if (!r.source_group_id.empty()) {
          const auto* peer = segment_of(ledger, seg.account_id, r.source_group_id);
          if (!peer) continue;  // a group without instances has no segment: nobody to admit or reach
          out.peer_vni = peer->vni;
        }
        into.push_back(std::move(out));
      }
    };
    compile(g->second->ingress, v.ingress);
    compile(g->second->egress, v.egress);
  }
  for (const auto& [id, n] : ledger.nics)
    v.nics.push_back({id, n.vni, n.mac, n.private_ip, public_ip_of(ledger, id), n.tap});
  return v;
}

net::metadata_table metadata_of(const state& ledger, const instance_lookup& instances, const std::string& region) {
  net::metadata_table table;
  for (const auto& [id, n] : ledger.nics) {
    const auto* inst = instances(n);
    if (!inst || inst->status == instance::lifecycle::terminated) continue;
    const auto& spec = inst->spec;
    net::instance_metadata m;
    m.instance_id = id;
    m.account_id = spec.account_id;
    m.reservation_id = spec.reservation_id;
    m.image_id = spec.image_id;
    m.instance_type = spec.size.instance_type;
    m.availability_zone = spec.zone;
    m.region = region;
    m.private_ip = n.private_ip;
    m.public_ip = public_ip_of(ledger, id);
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
  }
  return table;
}

}  // namespace kumo::actors::network
