#include "actors/network/releases.h"

namespace kumo::actors::network {

release_plan plan_releases(const state& ledger, const segments_by_id& segments, const instance_lookup& instances,
                           int64_t now_ms, int64_t grace_ms) {
  release_plan plan;
  auto unused = [&](const std::string& account_id, const std::string& instance_id, int64_t since_ms) {
    const auto* inst = instances(account_id, instance_id);
    return inst ? inst->status == instance::lifecycle::terminated : now_ms - since_ms > grace_ms;
  };
  for (const auto& [id, seg] : segments) {
    for (const auto& [iid, n] : seg->nics)
      if (unused(seg->account_id, iid, n.allocated_ms)) plan.nics.push_back({id, iid, n.private_ip, n.allocated_ms});
    if (seg->active() && seg->nics.empty())
      plan.retire.push_back({id, seg->current.number, seg->current.vni, false});
  }
  for (const auto& [iid, a] : ledger.instances)
    if (unused(a.account_id, iid, a.at_ms)) plan.instances.push_back({iid, a.at_ms});
  for (const auto& [vni, l] : ledger.leases) {
    const auto id = segment::aggregate_id(l.account_id, l.group_id);
    auto seg = segments.find(id);
    const uint64_t seen = seg == segments.end() ? 0 : seg->second->current.number;
    if (seen > l.number || (seen == l.number && !seg->second->active()))
      plan.free.push_back(l);
    else if (seen < l.number && now_ms - l.granted_ms > grace_ms)
      plan.retire.push_back({id, l.number, vni, true});
  }
  return plan;
}

}  // namespace kumo::actors::network
