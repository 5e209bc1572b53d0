// AllocateAddress, AssociateAddress, DisassociateAddress, ReleaseAddress,
// DescribeAddresses (elastic IPs) and ModifyInstanceMetadataOptions.
// Address commands go to the region's Network aggregate
// (actors/network/network.h), metadata options to the instance's Segment
// (segment.h); both refuse anything of another account as NotFound. Reads
// come from the network controller's per-account view.
#include "api/instance_access.h"
#include "api/lookups.h"
#include "api/op_requests.h"

#include "actors/network/network_actors.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace kumo::api {
namespace {

using namespace actors;

// Sends one command to the ledger; on success `respond` writes the body.
void tell_ledger(const op_ptr& c, network::command cmd, std::function<void(const network::state&, xml_writer&)> respond) {
  if (!c->cloud->network)
    return c->fail("UnsupportedOperation", "This cloud runs without networking (kumod --network=off); "
                                           "start kumod with --network=ledger or managed for addresses");
  c->self->request(c->cloud->network, actor_timeout, c->cloud->network_cfg.region, std::move(cmd), c->meta())
      .then(
          [=](network_reply& r) {
            if (r.error) return c->fail(r.error->code, r.error->message);
            c->wrote(r.global_seq);
            xml_writer w;
            respond(r.state, w);
            c->respond(w);
          },
          [=](caf::error& e) { service_unavailable(c, e); });
}

void write_true(const network::state&, xml_writer& w) { w.leaf("return", "true"); }

network::command disassociate(const op_ptr& c, const std::string& association_id) {
  const auto& cfg = c->cloud->network_cfg;
  return network::disassociate_address{c->account_id, association_id, cfg.pools, cfg.auto_public_ip};
}

// Runs `then` when the caller may manage the instance named by InstanceId (an
// IAM user: its own, or one a group policy lets it manage); an instance it
// cannot see is NotFound, as everywhere.
void with_managed_instance(const op_ptr& c, const std::string& instance_id,
                           std::function<void(const instance::state&)> then) {
  owner_only(c, [=] {
    with_instances(c, [=](std::vector<instance_view>& visible) {
      for (const auto& v : visible)
        if (v.state.spec.instance_id == instance_id) return then(v.state);
      c->fail("InvalidInstanceID.NotFound", "The instance ID '" + instance_id.substr(0, 64) + "' does not exist");
    });
  });
}

bool well_formed(const std::string& id, const std::string& prefix) {
  return id.size() == prefix.size() + 17 && id.compare(0, prefix.size(), prefix) == 0 &&
         id.find_first_not_of("0123456789abcdef", prefix.size()) == std::string::npos;
}

// The caller's allocation named by AllocationId or PublicIp (EC2 accepts either).
void with_allocation(const op_ptr& c, std::function<void(const network::address&)> then) {
  auto allocation_id = c->params.get("AllocationId");
  auto public_ip = c->params.get("PublicIp");
  if (!allocation_id && !public_ip)
    return c->fail("MissingParameter", "The request must contain the parameter AllocationId or PublicIp");
  if (allocation_id && !well_formed(*allocation_id, "eipalloc-"))
    return c->fail("InvalidAllocationID.Malformed", "Invalid id: \"" + allocation_id->substr(0, 64) + "\"");
  with_network(c, [=](const network::account_network& net) {
    for (const auto& a : net.addresses)
      if (allocation_id ? a.allocation_id == *allocation_id : a.public_ip == *public_ip) return then(a);
    if (allocation_id)
      return c->fail("InvalidAllocationID.NotFound", "The allocation ID '" + *allocation_id + "' does not exist");
    c->fail("InvalidAddress.NotFound", "The address '" + public_ip->substr(0, 64) + "' is not allocated to this account");
  });
}

void allocate_address_op(const op_ptr& c) {
  auto domain = c->params.get("Domain").value_or("vpc");
  if (domain != "vpc" && domain != "standard")
    return c->fail("InvalidParameterValue", "Value (" + domain.substr(0, 32) + ") for parameter Domain is invalid: use vpc or standard");
  if (c->params.get("Address"))
    return c->fail("InvalidParameterValue", "kumo does not allocate a chosen Address; omit it to get one from the pool");
  if (auto pool = c->params.get("PublicIpv4Pool"); pool && *pool != "amazon")
    return c->fail("InvalidParameterValue", "Unknown PublicIpv4Pool '" + pool->substr(0, 64) + "'; kumo has one pool");
  const auto allocation_id = derived_id(c, "eipalloc", "address");
  tell_ledger(c, network::allocate_address{c->account_id, allocation_id, c->cloud->network_cfg.pools},
              [=](const network::state& net, xml_writer& w) {
                const auto& a = net.addresses.at(allocation_id);
                spdlog::info("rid={} AllocateAddress: {} is {} for account {}", c->request_id, allocation_id,
                             a.public_ip, c->account_id);
                w.leaf("publicIp", a.public_ip).leaf("allocationId", allocation_id).leaf("domain", domain);
                w.leaf("publicIpv4Pool", "amazon").leaf("networkBorderGroup", c->cfg->region);
              });
}

void associate_address_op(const op_ptr& c) {
  auto instance_id = required(c, "InstanceId");
  if (!instance_id) return;
  if (c->params.get("NetworkInterfaceId") || c->params.get("PrivateIpAddress"))
    return c->fail("InvalidParameterCombination",
                   "kumo instances have one network interface: give InstanceId, not NetworkInterfaceId or PrivateIpAddress");
  query_error err;
  auto allow = c->params.boolean("AllowReassociation", err);
  if (!err.code.empty()) return c->fail(err);
  // EC2-classic calls (by PublicIp) always move the address; by AllocationId only when allowed.
  const bool by_ip = !c->params.get("AllocationId");
  with_managed_instance(c, *instance_id, [=](const instance::state&) { with_allocation(c, [=](const network::address& a) {
    const auto association_id = derived_id(c, "eipassoc", "association-" + a.allocation_id + "-" + *instance_id);
    tell_ledger(c,
                network::associate_address{c->account_id, a.allocation_id, *instance_id, association_id,
                                           allow.value_or(by_ip), c->cloud->network_cfg.pools,
                                           c->cloud->network_cfg.auto_public_ip},
                [=](const network::state& net, xml_writer& w) {
                  const auto& now = net.addresses.at(a.allocation_id);
                  spdlog::info("rid={} AssociateAddress: {} -> {} ({})", c->request_id, now.public_ip, *instance_id,
                               now.association_id);
                  w.leaf("return", "true").leaf("associationId", now.association_id);
                });
  }); });
}

void disassociate_address_op(const op_ptr& c) {
  auto association_id = c->params.get("AssociationId");
  auto public_ip = c->params.get("PublicIp");
  if (!association_id && !public_ip)
    return c->fail("MissingParameter", "The request must contain the parameter AssociationId or PublicIp");
  if (association_id) {
    if (!well_formed(*association_id, "eipassoc-"))
      return c->fail("InvalidAssociationID.Malformed", "Invalid id: \"" + association_id->substr(0, 64) + "\"");
    return tell_ledger(c, disassociate(c, *association_id), write_true);
  }
  with_allocation(c, [=](const network::address& a) {
    if (a.association_id.empty()) {  // EC2 answers true for an address that is not associated
      xml_writer w;
      write_true({}, w);
      return c->respond(w);
    }
    tell_ledger(c, disassociate(c, a.association_id), write_true);
  });
}

void release_address_op(const op_ptr& c) {
  with_allocation(c, [=](const network::address& a) {
    tell_ledger(c, network::release_address{c->account_id, a.allocation_id}, write_true);
  });
}

void describe_addresses(const op_ptr& c) {
  auto filters = checked_filters(c, {"allocation-id", "association-id", "instance-id", "public-ip",
                                     "private-ip-address", "domain", "network-interface-owner-id"});
  if (!filters) return;
  query_error err;
  auto ips = c->params.list("PublicIp", err);
  auto ids = ips ? c->params.list("AllocationId", err) : std::nullopt;
  if (!ips || !ids || !err.code.empty()) return c->fail(err);
  with_network(c, [=](const network::account_network& net) {
    std::vector<const network::address*> mine;
    for (const auto& a : net.addresses) mine.push_back(&a);
    for (const auto& id : *ids)
      if (std::none_of(mine.begin(), mine.end(), [&](auto* a) { return a->allocation_id == id; }))
        return c->fail("InvalidAllocationID.NotFound", "The allocation ID '" + id + "' does not exist");
    for (const auto& ip : *ips)
      if (std::none_of(mine.begin(), mine.end(), [&](auto* a) { return a->public_ip == ip; }))
        return c->fail("InvalidAddress.NotFound", "Address '" + ip + "' not found.");
    xml_writer w;
    w.open("addressesSet");
    for (const auto* a : mine) {
      auto nic = net.instances.find(a->instance_id);
      const std::string private_ip = nic == net.instances.end() ? "" : nic->second.nic.private_ip;
      if (!listed(*ids, a->allocation_id) || !listed(*ips, a->public_ip)) continue;
      if (!matches(*filters, [&](const std::string& f) -> std::vector<std::string> {
            if (f == "allocation-id") return {a->allocation_id};
            if (f == "association-id") return {a->association_id};
            if (f == "instance-id") return {a->instance_id};
            if (f == "public-ip") return {a->public_ip};
            if (f == "private-ip-address") return {private_ip};
            if (f == "domain") return {"vpc"};
            return {a->account_id};
          }))
        continue;
      w.open("item").leaf("publicIp", a->public_ip).leaf("allocationId", a->allocation_id).leaf("domain", "vpc");
      if (!a->instance_id.empty()) {
        w.leaf("instanceId", a->instance_id).leaf("associationId", a->association_id);
        w.leaf("privateIpAddress", private_ip).leaf("networkInterfaceOwnerId", a->account_id);
      }
      w.leaf("publicIpv4Pool", "amazon").leaf("networkBorderGroup", c->cfg->region).close("item");
    }
    w.close("addressesSet");
    c->respond(w);
  });
}

void modify_instance_metadata_options(const op_ptr& c) {
  auto instance_id = required(c, "InstanceId");
  if (!instance_id) return;
  auto tokens = c->params.get("HttpTokens");
  auto endpoint = c->params.get("HttpEndpoint");
  auto hops = c->params.get("HttpPutResponseHopLimit");
  if (tokens && *tokens != "optional" && *tokens != "required")
    return c->fail("InvalidParameterValue", "HttpTokens must be optional or required");
  if (endpoint && *endpoint != "enabled" && *endpoint != "disabled")
    return c->fail("InvalidParameterValue", "HttpEndpoint must be enabled or disabled");
  if (hops && (hops->empty() || hops->size() > 2 || hops->find_first_not_of("0123456789") != std::string::npos))
    return c->fail("InvalidParameterValue", "HttpPutResponseHopLimit must be a whole number from 1 to 64");
  with_managed_instance(c, *instance_id, [=](const instance::state& inst) {
    if (!c->cloud->segments)
      return c->fail("UnsupportedOperation", "This cloud runs without networking (kumod --network=off); "
                                             "instances have no metadata service to configure");
    segment::set_metadata_options cmd;
    cmd.instance_id = *instance_id;
    if (tokens) cmd.tokens_required = *tokens == "required";
    if (endpoint) cmd.endpoint_enabled = *endpoint == "enabled";
    if (hops) cmd.hop_limit = std::stoi(*hops);
    const auto segment_id = segment::id_of_instance(c->account_id, inst.spec.security_group_ids);
    c->self->request(c->cloud->segments, actor_timeout, segment_id, segment::command{std::move(cmd)}, c->meta())
        .then(
            [=](segment_reply& r) {
              if (r.error) return c->fail(r.error->code, r.error->message);
              c->wrote(r.global_seq);
              const auto& m = r.state.nics.at(*instance_id).metadata;
              xml_writer w;
              w.leaf("instanceId", *instance_id).open("instanceMetadataOptions").leaf("state", "applied");
              w.leaf("httpTokens", m.tokens_required ? "required" : "optional");
              w.leaf("httpPutResponseHopLimit", std::to_string(m.hop_limit));
              w.leaf("httpEndpoint", m.endpoint_enabled ? "enabled" : "disabled");
              w.close("instanceMetadataOptions");
              c->respond(w);
            },
            [=](caf::error& e) { service_unavailable(c, e); });
  });
}

}  // namespace

void register_address_ops(op_table& t) {
  t["AllocateAddress"] = {allocate_address_op};
  t["AssociateAddress"] = {associate_address_op};
  t["DisassociateAddress"] = {disassociate_address_op};
  t["ReleaseAddress"] = {release_address_op};
  t["DescribeAddresses"] = {describe_addresses};
  t["ModifyInstanceMetadataOptions"] = {modify_instance_metadata_options};
}

}  // namespace kumo::api
