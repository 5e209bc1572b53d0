// RunInstances, DescribeInstances, DescribeInstanceStatus, Start/Stop/
// Reboot/TerminateInstances, GetConsoleOutput, Describe/ModifyInstanceAttribute
// and DescribeInstanceTypes.
//
// Commands go to the Instance aggregate "<account>/<instance id>"; placement
// goes through the compute controller (the Zone aggregate's ledger); reads
// come from the controller's instances view, scoped to the caller's account.
#include "crypto/digest.h"
#include "api/block_devices.h"
#include "api/instance_access.h"
#include "api/lookups.h"
#include "api/op_requests.h"
#include "api/sigv4.h"
#include "api/ssh_keys.h"

#include "actors/compute/compute.h"
#include "actors/network/network_actors.h"
#include "net/desired_state.h"
#include "persistence/time_format.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace kumo::api {
namespace {

using namespace actors;
using instance::lifecycle;
using instances = std::vector<instance_view>;

constexpr int max_instances_per_call = 100;

// ---- Reading

const instance_view* find_instance(const instances& all, const std::string& id) {
  for (const auto& v : all)
    if (v.state.spec.instance_id == id) return &v;
  return nullptr;
}

// InstanceId.N, each well-formed and an instance of the caller. EC2 refuses
// the whole call when any id is unknown.
std::optional<std::vector<const instance_view*>> named_instances(const op_ptr& c, const instances& all,
                                                                 const std::vector<std::string>& ids) {
  std::vector<const instance_view*> out;
  for (const auto& id : ids) {
    if (!instance::valid_instance_id(id)) {
      c->fail("InvalidInstanceID.Malformed", "Invalid id: \"" + id.substr(0, 64) + "\" (expecting \"i-...\")");
      return std::nullopt;
    }
    const auto* v = find_instance(all, id);
    if (!v) {
      c->fail("InvalidInstanceID.NotFound", "The instance ID '" + id + "' does not exist");
      return std::nullopt;
    }
    out.push_back(v);
  }
  return out;
}

std::optional<std::vector<std::string>> instance_ids(const op_ptr& c, bool required_list) {
  query_error err;
  auto ids = c->params.list("InstanceId", err);
  if (!ids) {
    c->fail(err);
    return std::nullopt;
  }
  if (required_list && ids->empty()) {
    c->fail("MissingParameter", "The request must contain the parameter InstanceId");
    return std::nullopt;
  }
  if (ids->size() > 1000) {
    c->fail("InvalidParameterValue", "At most 1000 instance ids per call");
    return std::nullopt;
  }
  return ids;
}

// ---- Writing XML

void write_state(xml_writer& w, const char* element, lifecycle s) {
  w.open(element).leaf("code", std::to_string(instance::code_of(s))).leaf("name", instance::name_of(s)).close(element);
}

void write_groups(xml_writer& w, const instance::launch_spec& spec) {
  w.open("groupSet");
  for (size_t i = 0; i < spec.security_group_ids.size(); ++i)
    w.open("item").leaf("groupId", spec.security_group_ids[i]).leaf("groupName", spec.security_group_names[i]).close("item");
  w.close("groupSet");
}

void write_block_devices(xml_writer& w, const std::vector<instance_volume>& volumes) {
  w.open("blockDeviceMapping");
  for (const auto& v : volumes) {
    w.open("item").leaf("deviceName", v.device).open("ebs").leaf("volumeId", v.volume_id).leaf("status", v.status);
    w.leaf("attachTime", iso_time(v.attach_ms)).leaf("deleteOnTermination", v.delete_on_termination ? "true" : "false");
    w.close("ebs").close("item");
  }
  w.close("blockDeviceMapping");
}

using volumes_by_instance = std::map<std::string, std::vector<instance_volume>>;

// EC2's host names for an address: ip-10-16-0-10.<region>.compute.internal.
std::string dns_name(const std::string& ip, const std::string& domain) {
  return ip.empty() ? "" : net::host_name(ip) + "." + domain;
}

// Addresses, the NIC and the metadata options of an instance with a NIC.
void write_network(xml_writer& w, const instance::launch_spec& spec, const network::instance_network& net,
                   const std::string& region) {
  const auto& n = net.nic;
  w.leaf("privateIpAddress", n.private_ip);
  if (!net.public_ip.empty()) w.leaf("ipAddress", net.public_ip);
  w.open("networkInterfaceSet").open("item");
  w.leaf("networkInterfaceId", "eni-" + n.tap.substr(2)).leaf("macAddress", n.mac).leaf("status", "in-use");
  w.leaf("privateIpAddress", n.private_ip).leaf("privateDnsName", dns_name(n.private_ip, region + ".compute.internal"));
  w.leaf("ownerId", spec.account_id).leaf("interfaceType", "interface");
  if (!net.public_ip.empty())
    w.open("association").leaf("publicIp", net.public_ip).leaf("ipOwnerId", spec.account_id).close("association");
  w.open("groupSet").open("item").leaf("groupId", net.group_id).close("item").close("groupSet");
  w.close("item").close("networkInterfaceSet");
  w.open("metadataOptions").leaf("state", "applied").leaf("httpTokens", n.metadata.tokens_required ? "required" : "optional");
  w.leaf("httpPutResponseHopLimit", std::to_string(n.metadata.hop_limit));
  w.leaf("httpEndpoint", n.metadata.endpoint_enabled ? "enabled" : "disabled").close("metadataOptions");
}

// The instance's NIC, unless it has none (networking off) or is terminated.
const network::instance_network* live_nic(const instance::state& s, const network::account_network& net) {
  auto it = net.instances.find(s.spec.instance_id);
  return it == net.instances.end() || s.status == lifecycle::terminated ? nullptr : &it->second;
}

void write_instance(xml_writer& w, const instance::state& s, const volumes_by_instance& volumes,
                    const network::account_network& net, const std::string& region) {
  const auto& spec = s.spec;
  w.open("item").leaf("instanceId", spec.instance_id).leaf("imageId", spec.image_id);
  write_state(w, "instanceState", s.status);
  const auto* nic = live_nic(s, net);
  const auto public_ip = nic ? nic->public_ip : std::string{};
  w.leaf("privateDnsName", nic ? dns_name(nic->nic.private_ip, region + ".compute.internal") : "");
  w.leaf("dnsName", dns_name(public_ip, region + ".compute.kumo")).leaf("reason", s.transition_reason);
  if (nic) write_network(w, spec, *nic, region);
  if (!spec.key_name.empty()) w.leaf("keyName", spec.key_name);
  w.leaf("amiLaunchIndex", std::to_string(spec.launch_index)).leaf("instanceType", spec.size.instance_type);
  w.leaf("launchTime", iso_time(spec.launch_ms));
  w.open("placement").leaf("availabilityZone", spec.zone).leaf("tenancy", "default").close("placement");
  w.open("monitoring").leaf("state", "disabled").close("monitoring");
  if (!s.reason_code.empty())
    w.open("stateReason").leaf("code", s.reason_code).leaf("message", s.reason_message).close("stateReason");
  w.leaf("architecture", "x86_64").leaf("rootDeviceType", "instance-store").leaf("rootDeviceName", "/dev/vda");
  w.leaf("virtualizationType", "hvm").leaf("hypervisor", "xen");
  if (!spec.client_token.empty()) w.leaf("clientToken", spec.client_token);
  write_tag_set(w, spec.tags);
  write_groups(w, spec);
  if (auto v = volumes.find(spec.instance_id); v != volumes.end()) write_block_devices(w, v->second);
  w.close("item");
}

// One <item> of reservationSet (or the body of RunInstances).
void write_reservation(xml_writer& w, const std::vector<instance::state>& members, const volumes_by_instance& volumes,
                       const network::account_network& net, const std::string& region) {
  const auto& first = members.front().spec;
  w.leaf("reservationId", first.reservation_id).leaf("ownerId", first.account_id);
  write_groups(w, first);
  w.open("instancesSet");
  for (const auto& s : members) write_instance(w, s, volumes, net, region);
  w.close("instancesSet");
}

// ---- RunInstances

std::optional<int> count_param(const op_ptr& c, const std::string& name) {
  auto v = required(c, name);
  if (!v) return std::nullopt;
  if (v->size() > 4 || v->find_first_not_of("0123456789") != std::string::npos || std::stoi(*v) < 1) {
    c->fail("InvalidParameterValue", "Value (" + v->substr(0, 16) + ") for parameter " + name +
                                         " is invalid: use a whole number of at least 1");
    return std::nullopt;
  }
  return std::stoi(*v);
}

const instance::sizing* find_type(const op_ptr& c, const std::string& name) {
  for (const auto& t : c->cfg->instance_types)
    if (t.instance_type == name) return &t;
  return nullptr;
}

// Everything RunInstances checked, ready to launch.
struct launch_plan {
  instance::launch_spec base;
  int min_count = 1;
  int max_count = 1;
  std::vector<std::string> instance_ids;
  std::vector<launch_volume> volumes;  // BlockDeviceMappings, made for each instance
};

void launch_all(const op_ptr& c, std::shared_ptr<launch_plan> plan, const place_reply& placed,
                std::shared_ptr<const network::account_network> net) {
  struct gather {
    std::vector<instance::state> launched;
    size_t waiting = 0;
    std::optional<api_error> error;
  };
  auto g = std::make_shared<gather>();
  std::vector<instance::launch_spec> specs;
  for (size_t i = 0; i < plan->instance_ids.size(); ++i) {
    auto node = placed.node_of.find(plan->instance_ids[i]);
    if (node == placed.node_of.end()) continue;  // fewer than MaxCount fitted
    auto spec = plan->base;
    spec.instance_id = plan->instance_ids[i];
    spec.node_id = node->second;
    spec.zone = placed.zone;
    spec.launch_index = static_cast<int>(specs.size());
    specs.push_back(std::move(spec));
  }
  g->waiting = specs.size();
  g->launched.resize(specs.size());
  for (size_t i = 0; i < specs.size(); ++i) {
    auto id = instance::aggregate_id(c->account_id, specs[i].instance_id);
    c->self->request(c->cloud->instances, actor_timeout, id, instance::command{instance::launch{specs[i]}}, c->meta())
        .then(
            [=](instance_reply& r) {
              if (r.error) g->error = r.error;
              else {
                c->wrote(r.global_seq);
                g->launched[i] = r.state;
              }
              if (--g->waiting) return;
              if (g->error) return c->fail(g->error->code, g->error->message);
              spdlog::info("rid={} RunInstances: {} instance(s) in reservation {} placed in {}", c->request_id,
                           g->launched.size(), plan->base.reservation_id, placed.zone);
              create_launch_volumes(c, plan->volumes, g->launched, [=] {
                xml_writer w;
                write_reservation(w, g->launched, {}, *net, c->cfg->region);
                c->respond(w);
              });
            },
            [=](caf::error& e) {
              if (!g->error) g->error = api_error{"ServiceUnavailable", c->self->system().render(e)};
              if (--g->waiting == 0) c->fail("ServiceUnavailable", "RunInstances did not complete: " +
                                                                       g->error->message + "; retry with the same ClientToken", 503);
            });
  }
}

// The ledger's side of a launch that then failed: given back at once, so a
// refused RunInstances holds no public IP (the controller would otherwise
// free them only after its grace period).
void release_public_side(const op_ptr& c, const network_reply& prepared) {
  std::vector<std::string> ids;  // only what this call attached: a retry's running instances keep theirs
  int64_t at_ms = 0;
  for (const auto& e : prepared.events)
    if (const auto* a = std::get_if<network::instance_attached>(&e)) {
      ids.push_back(a->instance_id);
      at_ms = a->a.at_ms;
    }
  if (ids.empty()) return;
  const auto& net_cfg = c->cloud->network_cfg;
  c->self->request(c->cloud->network, actor_timeout, net_cfg.region,
                   network::command{network::release_instances{ids, at_ms}}, c->meta())
      .then([](network_reply&) {},
            [=](caf::error& e) {
              spdlog::warn("rid={} RunInstances: giving back the public side failed ({}); the network controller "
                           "will after its grace period", c->request_id, c->self->system().render(e));
            });
}

// With networking, every placed instance gets its public side in the ledger
// (and its segment a lease) and its NIC on the segment before it is
// launched, so a node never boots it without one. A crash in between leaves
// NICs and public IPs without instances: the network controller releases them.
// When the segment refuses the lease as given back (the controller retired
// the empty segment meanwhile), the ledger lets it go and grants a new one.
void allocate_nics_and_launch(const op_ptr& c, std::shared_ptr<launch_plan> plan, const place_reply& placed,
                              uint64_t stale_lease = 0, int attempt = 1) {
  constexpr int max_attempts = 3;
  const auto& net_cfg = c->cloud->network_cfg;
  if (net_cfg.mode == network_mode::off)
    return launch_all(c, plan, placed, std::make_shared<const network::account_network>());
  const auto& group = plan->base.security_group_ids.front();
  std::vector<std::string> ids;
  for (const auto& [instance_id, node] : placed.node_of) ids.push_back(instance_id);
  network::prepare_launch prepare{c->account_id, group,   ids, net_cfg.pools, net_cfg.auto_public_ip,
                                  persistence::now_ms(), stale_lease};
  c->self->request(c->cloud->network, actor_timeout, net_cfg.region, network::command{std::move(prepare)}, c->meta())
      .then(
          [=](network_reply& ledger) {
            if (ledger.error) return c->fail(ledger.error->code, ledger.error->message, 500);
            c->wrote(ledger.global_seq);
            const auto* l = network::lease_of(ledger.state, c->account_id, group);
            if (!l) return c->fail("InternalError", "the network ledger granted no segment for " + group + "; retry", 500);
            const auto segment_id = segment::aggregate_id(c->account_id, group);
            segment::allocate_nics alloc{c->account_id, group, {l->number, l->vni, l->subnet}, ids,
                                         persistence::now_ms()};
            c->self->request(c->cloud->segments, actor_timeout, segment_id, segment::command{std::move(alloc)}, c->meta())
                .then(
                    [=, number = l->number](segment_reply& seg) {
                      if (seg.error && seg.error->code == segment::segment_retired_code && attempt < max_attempts) {
                        spdlog::info("rid={} RunInstances: segment {} refused lease {} ({}); getting a new one",
                                     c->request_id, segment_id, number, seg.error->message);
                        return allocate_nics_and_launch(c, plan, placed, number, attempt + 1);
                      }
                      if (seg.error) {
                        release_public_side(c, ledger);
                        if (seg.error->code == segment::segment_retired_code)
                          return c->fail("ServiceUnavailable", "the network segment of " + group +
                                                                   " kept changing; retry with the same ClientToken", 503);
                        return c->fail(seg.error->code, seg.error->message, 500);
                      }
                      c->wrote(seg.global_seq);
                      network::segments_by_id segments{{segment_id, &seg.state}};
                      launch_all(c, plan, placed,
                                 std::make_shared<const network::account_network>(
                                     network::account_view(ledger.state, segments, c->account_id)));
                    },
                    [=](caf::error& e) { service_unavailable(c, e); });
          },
          [=](caf::error& e) { service_unavailable(c, e); });
}

void place_and_launch(const op_ptr& c, std::shared_ptr<launch_plan> plan) {
  place_request req{plan->instance_ids, plan->base.size, plan->base.zone, static_cast<size_t>(plan->min_count)};
  c->self->request(c->cloud->compute, actor_timeout, place_atom::value, req, c->meta())
      .then(
          [=](place_reply& r) {
            if (r.error) return c->fail(r.error->code, r.error->message, r.error->code == "InsufficientInstanceCapacity" ? 500 : 400);
            allocate_nics_and_launch(c, plan, r);
          },
          [=](caf::error& e) { service_unavailable(c, e); });
}

// Image -> files to boot, checked now so a bad image fails the call, not the boot.
bool resolve_image(const op_ptr& c, const std::vector<image::state>& images, const std::string& image_id,
                   instance::launch_spec& spec) {
  auto find = [&](const std::string& id) -> const image::state* {
    for (const auto& i : images)
      if (i.image_id == id) return &i;
    return nullptr;
  };
  const auto* img = find(image_id);
  if (!img) {
    c->fail("InvalidAMIID.NotFound", "The image id '[" + image_id.substr(0, 64) + "]' does not exist");
    return false;
  }
  if (img->kind != "machine") {
    c->fail("InvalidParameterValue", "Image " + image_id + " is a " + img->kind +
                                         " image; launch a machine image (emi-) that uses it");
    return false;
  }
  spec.image_id = image_id;
  if (!img->file_path.empty()) {
    spec.disk_image_path = img->file_path;
    return true;
  }
  const auto* kernel = find(img->kernel_id);
  const auto* ramdisk = img->ramdisk_id.empty() ? nullptr : find(img->ramdisk_id);
  if (!kernel || (!img->ramdisk_id.empty() && !ramdisk)) {
    c->fail("InvalidParameterValue", "Image " + image_id + " refers to kernel " + img->kernel_id +
                                         " / ramdisk " + img->ramdisk_id + ", which are no longer available");
    return false;
  }
  spec.kernel_path = kernel->file_path;
  if (ramdisk) spec.ramdisk_path = ramdisk->file_path;
  return true;
}

void run_instances(const op_ptr& c) {
  auto image_id = required(c, "ImageId");
  if (!image_id) return;
  auto min = count_param(c, "MinCount");
  if (!min) return;
  auto max = count_param(c, "MaxCount");
  if (!max) return;
  if (*min > *max) return c->fail("InvalidParameterValue", "MinCount must not exceed MaxCount");
  if (*max > max_instances_per_call)
    return c->fail("InstanceLimitExceeded", "At most " + std::to_string(max_instances_per_call) +
                                                " instances per RunInstances call");
  auto type_name = c->params.get("InstanceType").value_or("m1.small");
  const auto* type = find_type(c, type_name);
  if (!type)
    return c->fail("InvalidParameterValue", "Invalid value '" + type_name.substr(0, 64) +
                                                "' for InstanceType; DescribeInstanceTypes lists the types");
  auto zone = c->params.get("Placement.AvailabilityZone").value_or("");
  if (!zone.empty() && std::find(c->cfg->zones.begin(), c->cfg->zones.end(), zone) == c->cfg->zones.end())
    return c->fail("InvalidParameterValue", "Invalid availability zone: [" + zone.substr(0, 64) + "]");
  auto user_data = c->params.get("UserData").value_or("");
  if (user_data.size() > 16384 * 4 / 3 + 4 || (!user_data.empty() && !crypto::base64_decode(user_data)))
    return c->fail("InvalidParameterValue", "UserData must be base64 of at most 16 KiB");
  query_error err;
  auto group_names = c->params.list("SecurityGroup", err);
  auto group_ids = group_names ? c->params.list("SecurityGroupId", err) : std::nullopt;
  if (!group_ids) return c->fail(err);
  auto tags = tags_for(c, "instance");
  if (!tags) return;

  auto plan = std::make_shared<launch_plan>();
  plan->min_count = *min;
  plan->max_count = *max;
  auto& spec = plan->base;
  spec.reservation_id = derived_id(c, "r", "reservation");
  for (int i = 0; i < *max; ++i) plan->instance_ids.push_back(derived_id(c, "i", "instance/" + std::to_string(i)));
  spec.account_id = c->account_id;
  spec.size = *type;
  spec.zone = zone;
  spec.user_data = user_data;
  spec.client_token = c->params.get("ClientToken").value_or("");
  spec.launch_ms = persistence::now_ms();
  spec.tags = *tags;
  auto key_name = c->params.get("KeyName").value_or("");

  with_images(c, [=](std::vector<image::state>& images) {
    if (!resolve_image(c, images, *image_id, plan->base)) return;
    with_key_pairs(c, [=](std::vector<keypair::state>& keys) {
      if (!key_name.empty()) {
        auto k = std::find_if(keys.begin(), keys.end(), [&](const keypair::state& s) { return s.key_name == key_name; });
        if (k == keys.end()) return c->fail("InvalidKeyPair.NotFound", "The key pair '" + key_name + "' does not exist");
        plan->base.key_name = key_name;
        plan->base.public_key = k->key.public_key;
      }
      with_security_groups(c, [=](std::vector<security_group::state>& groups) {
        auto add = [&](const security_group::state& g) {
          if (std::find(plan->base.security_group_ids.begin(), plan->base.security_group_ids.end(), g.group_id) !=
              plan->base.security_group_ids.end())
            return;
          plan->base.security_group_ids.push_back(g.group_id);
          plan->base.security_group_names.push_back(g.group_name);
        };
        auto find = [&](const std::string& v, bool by_id) -> const security_group::state* {
          for (const auto& g : groups)
            if ((by_id ? g.group_id : g.group_name) == v) return &g;
          return nullptr;
        };
        for (const auto& n : *group_names) {
          const auto* g = find(n, false);
          if (!g) return c->fail("InvalidGroup.NotFound", "The security group '" + n + "' does not exist");
          add(*g);
        }
        for (const auto& id : *group_ids) {
          const auto* g = find(id, true);
          if (!g) return c->fail("InvalidGroup.NotFound", "The security group ID '" + id + "' does not exist");
          add(*g);
        }
        if (plan->base.security_group_ids.empty()) add(*find("default", false));
        with_launch_volumes(c, [=](std::vector<launch_volume> volumes) {
          plan->volumes = std::move(volumes);
          place_and_launch(c, plan);
        });
      });
    });
  });
}

// ---- DescribeInstances

std::vector<std::string> filter_values(const instance::state& s, const std::string& f) {
  const auto& spec = s.spec;
  if (f == "instance-id") return {spec.instance_id};
  if (f == "instance-state-name") return {instance::name_of(s.status)};
  if (f == "instance-state-code") return {std::to_string(instance::code_of(s.status))};
  if (f == "image-id") return {spec.image_id};
  if (f == "instance-type") return {spec.size.instance_type};
  if (f == "key-name") return {spec.key_name};
  if (f == "availability-zone") return {spec.zone};
  if (f == "reservation-id") return {spec.reservation_id};
  if (f == "client-token") return {spec.client_token};
  if (f == "launch-index") return {std::to_string(spec.launch_index)};
  if (f == "owner-id") return {spec.account_id};
  if (f == "instance.group-id" || f == "group-id") return spec.security_group_ids;
  if (f == "instance.group-name" || f == "group-name") return spec.security_group_names;
  return tag_filter_values(f, spec.tags);
}

// DescribeInstances also filters on addresses, which live in the network ledger.
std::vector<std::string> filter_values(const instance::state& s, const network::account_network& net,
                                       const std::string& f) {
  const auto* nic = live_nic(s, net);
  if (f == "private-ip-address" || f == "network-interface.addresses.private-ip-address")
    return nic ? std::vector<std::string>{nic->nic.private_ip} : std::vector<std::string>{};
  if (f == "ip-address") return nic ? std::vector<std::string>{nic->public_ip} : std::vector<std::string>{};
  return filter_values(s, f);
}

const std::set<std::string> instance_filters = {
    "instance-id", "instance-state-name", "instance-state-code", "image-id", "instance-type", "key-name",
    "availability-zone", "reservation-id", "client-token", "launch-index", "owner-id", "instance.group-id",
    "group-id", "instance.group-name", "group-name", "private-ip-address", "ip-address",
    "network-interface.addresses.private-ip-address",
    "tag-key", "tag-value", "tag:*"};

void describe_instances(const op_ptr& c) {
  auto filters = checked_filters(c, instance_filters);
  if (!filters) return;
  auto ids = instance_ids(c, false);
  if (!ids) return;
  with_instances(c, [=](instances& all_instances) {
   with_network(c, [=, all = std::move(all_instances)](const network::account_network& net) {
    if (!named_instances(c, all, *ids)) return;
    std::vector<const instance::state*> selected;
    volumes_by_instance volumes;
    for (const auto& v : all)
      if (listed(*ids, v.state.spec.instance_id) &&
          matches(*filters, [&](const std::string& f) { return filter_values(v.state, net, f); })) {
        selected.push_back(&v.state);
        volumes[v.state.spec.instance_id] = v.volumes;
      }
    // Launch order, then grouped by reservation as EC2 answers.
    std::stable_sort(selected.begin(), selected.end(), [](auto* a, auto* b) {
      return std::tie(a->spec.launch_ms, a->spec.reservation_id, a->spec.launch_index) <
             std::tie(b->spec.launch_ms, b->spec.reservation_id, b->spec.launch_index);
    });
    auto page = paginate(c, selected.size());
    if (!page) return;
    xml_writer w;
    w.open("reservationSet");
    for (size_t i = page->begin; i < page->end;) {
      std::vector<instance::state> members;
      const auto& rid = selected[i]->spec.reservation_id;
      for (; i < page->end && selected[i]->spec.reservation_id == rid; ++i) members.push_back(*selected[i]);
      w.open("item");
      write_reservation(w, members, volumes, net, c->cfg->region);
      w.close("item");
    }
    w.close("reservationSet");
    if (!page->next_token.empty()) w.leaf("nextToken", page->next_token);
    c->respond(w);
   });
  });
}

// ---- DescribeInstanceStatus

// EC2's status checks: a running instance whose node stopped reporting is impaired.
std::string status_of(const instance_view& v) {
  if (v.state.status != lifecycle::running) return "not-applicable";
  return v.node_available ? "ok" : "impaired";
}

void describe_instance_status(const op_ptr& c) {
  auto filters = checked_filters(c, {"availability-zone", "instance-state-name", "instance-state-code",
                                     "system-status.status", "instance-status.status"});
  if (!filters) return;
  auto ids = instance_ids(c, false);
  if (!ids) return;
  query_error err;
  auto include_all = c->params.boolean("IncludeAllInstances", err);
  if (!err.code.empty()) return c->fail(err);
  with_instances(c, [=](instances& all) {
    if (!named_instances(c, all, *ids)) return;
    std::vector<const instance_view*> selected;
    for (const auto& v : all) {
      const auto status = status_of(v);
      if (!listed(*ids, v.state.spec.instance_id)) continue;
      if (!include_all.value_or(false) && v.state.status != lifecycle::running) continue;
      if (!matches(*filters, [&](const std::string& f) -> std::vector<std::string> {
            if (f == "system-status.status" || f == "instance-status.status") return {status};
            return filter_values(v.state, f);
          }))
        continue;
      selected.push_back(&v);
    }
    auto page = paginate(c, selected.size());
    if (!page) return;
    xml_writer w;
    w.open("instanceStatusSet");
    for (size_t i = page->begin; i < page->end; ++i) {
      const auto& v = *selected[i];
      const bool running = v.state.status == lifecycle::running;
      const std::string status = status_of(v);
      const std::string check = !running ? "initializing" : v.node_available ? "passed" : "failed";
      w.open("item").leaf("instanceId", v.state.spec.instance_id).leaf("availabilityZone", v.state.spec.zone);
      write_state(w, "instanceState", v.state.status);
      for (const char* which : {"systemStatus", "instanceStatus"}) {
        w.open(which).leaf("status", status).open("details").open("item").leaf("name", "reachability");
        w.leaf("status", check).close("item").close("details").close(which);
      }
      w.close("item");
    }
    w.close("instanceStatusSet");
    if (!page->next_token.empty()) w.leaf("nextToken", page->next_token);
    c->respond(w);
  });
}

// ---- Start / Stop / Terminate / Reboot

// Sends `make(now)` to every named instance after checking with the
// aggregate's own decide() that each would accept it (EC2 refuses the whole
// call rather than doing part of it), then answers with previous/current states.
void change_instances(const op_ptr& c, std::function<instance::command()> make, bool state_changes) {
  auto ids = instance_ids(c, true);
  if (!ids) return;
  with_instances(c, [=](instances& all) {
    auto targets = named_instances(c, all, *ids);
    if (!targets) return;
    for (const auto* v : *targets) {
      auto id = instance::aggregate_id(c->account_id, v->state.spec.instance_id);
      auto d = instance::aggregate::decide(id, v->state, make());
      if (d.error) return c->fail(d.error->code, d.error->message);
    }
    struct gather {
      std::vector<std::pair<lifecycle, lifecycle>> states;  // previous, current
      size_t waiting = 0;
      std::optional<api_error> error;
    };
    auto g = std::make_shared<gather>();
    g->waiting = targets->size();
    g->states.resize(targets->size());
    for (size_t i = 0; i < targets->size(); ++i) {
      const auto& s = (*targets)[i]->state;
      auto before = s.status;
      c->self->request(c->cloud->instances, actor_timeout, instance::aggregate_id(c->account_id, s.spec.instance_id),
                       make(), c->meta())
          .then(
              [=](instance_reply& r) {
                if (r.error) g->error = r.error;
                else {
                  if (r.global_seq) c->wrote(r.global_seq);
                  g->states[i] = {before, r.state.status};
                }
                if (--g->waiting) return;
                if (g->error) return c->fail(g->error->code, g->error->message);
                xml_writer w;
                if (!state_changes) {
                  w.leaf("return", "true");
                  return c->respond(w);
                }
                w.open("instancesSet");
                for (size_t k = 0; k < ids->size(); ++k) {
                  w.open("item").leaf("instanceId", (*ids)[k]);
                  write_state(w, "currentState", g->states[k].second);
                  write_state(w, "previousState", g->states[k].first);
                  w.close("item");
                }
                w.close("instancesSet");
                c->respond(w);
              },
              [=](caf::error& e) {
                if (!g->error) g->error = api_error{"ServiceUnavailable", c->self->system().render(e)};
                if (--g->waiting == 0) service_unavailable(c, e);
              });
    }
  });
}

void stop_instances(const op_ptr& c) {
  query_error err;
  auto force = c->params.boolean("Force", err);
  if (!err.code.empty()) return c->fail(err);
  bool f = force.value_or(false);
  change_instances(c, [f] { return instance::command{instance::stop{f, persistence::now_ms()}}; }, true);
}

void start_instances(const op_ptr& c) {
  change_instances(c, [] { return instance::command{instance::start{persistence::now_ms()}}; }, true);
}

void terminate_instances(const op_ptr& c) {
  owner_only(c, [=] {
    change_instances(c, [] { return instance::command{instance::terminate{persistence::now_ms()}}; }, true);
  });
}

void reboot_instances(const op_ptr& c) {
  change_instances(c, [] { return instance::command{instance::reboot{}}; }, false);
}

// ---- GetConsoleOutput

void get_console_output(const op_ptr& c) {
  auto id = required(c, "InstanceId");
  if (!id) return;
  with_instances(c, [=](instances& all) {
    auto target = named_instances(c, all, {*id});
    if (!target) return;
    c->self->request(c->cloud->compute, actor_timeout, console_atom::value, c->account_id, *id)
        .then(
            [=](std::string& text) {
              xml_writer w;
              w.leaf("instanceId", *id).leaf("timestamp", iso_time(persistence::now_ms()));
              w.leaf("output", crypto::base64_encode(text));
              c->respond(w);
            },
            [=](caf::error& e) {
              c->fail("InternalError", "the console of " + *id + " cannot be read now (" +
                                           c->self->system().render(e) + "); retry later", 500);
            });
  });
}

// ---- Instance attributes

void describe_instance_attribute(const op_ptr& c) {
  auto id = required(c, "InstanceId");
  if (!id) return;
  auto attribute = required(c, "Attribute");
  if (!attribute) return;
  static const std::set<std::string> known = {"instanceType", "userData", "kernel", "ramdisk",
                                              "instanceInitiatedShutdownBehavior", "rootDeviceName"};
  if (!known.count(*attribute))
    return c->fail("InvalidParameterValue", "Value (" + attribute->substr(0, 64) +
                                                ") for parameter attribute is invalid: kumo answers instanceType, "
                                                "userData, kernel, ramdisk, instanceInitiatedShutdownBehavior, rootDeviceName");
  with_instances(c, [=](instances& all) {
    auto target = named_instances(c, all, {*id});
    if (!target) return;
    const auto& spec = target->front()->state.spec;
    std::string value = *attribute == "instanceType"  ? spec.size.instance_type
                        : *attribute == "userData"    ? spec.user_data
                        : *attribute == "kernel"      ? spec.kernel_path.empty() ? "" : spec.image_id
                        : *attribute == "ramdisk"     ? ""
                        : *attribute == "rootDeviceName" ? "/dev/vda"
                                                         : "stop";
    xml_writer w;
    w.leaf("instanceId", *id).open(*attribute);
    if (!value.empty()) w.leaf("value", value);
    w.close(*attribute);
    c->respond(w);
  });
}

void modify_instance_attribute(const op_ptr& c) {
  auto id = required(c, "InstanceId");
  if (!id) return;
  // The aws CLI sends InstanceType.Value / UserData.Value; older tools Attribute + Value.
  auto attribute = c->params.get("Attribute").value_or("");
  auto type = c->params.get("InstanceType.Value");
  auto user_data = c->params.get("UserData.Value");
  if (attribute == "instanceType") type = c->params.get("Value");
  if (attribute == "userData") user_data = c->params.get("Value");
  if (!attribute.empty() && attribute != "instanceType" && attribute != "userData")
    return c->fail("InvalidParameterValue", "kumo can modify instanceType and userData, not " + attribute.substr(0, 64));
  if (!type == !user_data)
    return c->fail("InvalidParameterCombination", "Specify exactly one attribute: InstanceType or UserData");
  instance::command cmd;
  if (type) {
    const auto* t = find_type(c, *type);
    if (!t) return c->fail("InvalidParameterValue", "Invalid value '" + type->substr(0, 64) + "' for InstanceType");
    cmd = instance::modify_sizing{*t};
  } else {
    if (user_data->size() > 16384 * 4 / 3 + 4 || (!user_data->empty() && !crypto::base64_decode(*user_data)))
      return c->fail("InvalidParameterValue", "UserData must be base64 of at most 16 KiB");
    cmd = instance::modify_user_data{*user_data};
  }
  owner_only(c, [=] { with_instances(c, [=](instances& all) {
    if (!named_instances(c, all, {*id})) return;
    c->self->request(c->cloud->instances, actor_timeout, instance::aggregate_id(c->account_id, *id), cmd, c->meta())
        .then(
            [=](instance_reply& r) {
              if (r.error) return c->fail(r.error->code, r.error->message);
              if (r.global_seq) c->wrote(r.global_seq);
              xml_writer w;
              w.leaf("return", "true");
              c->respond(w);
            },
            [=](caf::error& e) { service_unavailable(c, e); });
  }); });
}

// ---- DescribeInstanceTypes

void describe_instance_types(const op_ptr& c) {
  auto filters = checked_filters(c, {"instance-type", "vcpu-info.default-vcpus", "memory-info.size-in-mib",
                                     "instance-storage-info.total-size-in-gb"});
  if (!filters) return;
  query_error err;
  auto names = c->params.list("InstanceType", err);
  if (!names) return c->fail(err);
  for (const auto& n : *names)
    if (!find_type(c, n))
      return c->fail("InvalidInstanceType", "The following supplied instance types do not exist: [" + n.substr(0, 64) + "]");
  std::vector<const instance::sizing*> selected;
  for (const auto& t : c->cfg->instance_types)
    if (listed(*names, t.instance_type) && matches(*filters, [&](const std::string& f) -> std::vector<std::string> {
          if (f == "instance-type") return {t.instance_type};
          if (f == "vcpu-info.default-vcpus") return {std::to_string(t.vcpus)};
          if (f == "memory-info.size-in-mib") return {std::to_string(t.memory_mib)};
          return {std::to_string(t.disk_gib)};
        }))
      selected.push_back(&t);
  auto page = paginate(c, selected.size());
  if (!page) return;
  xml_writer w;
  w.open("instanceTypeSet");
  for (size_t i = page->begin; i < page->end; ++i) {
    const auto& t = *selected[i];
    w.open("item").leaf("instanceType", t.instance_type).leaf("currentGeneration", "true");
    w.open("supportedUsageClasses").leaf("item", "on-demand").close("supportedUsageClasses");
    w.open("supportedRootDeviceTypes").leaf("item", "instance-store").close("supportedRootDeviceTypes");
    w.open("supportedVirtualizationTypes").leaf("item", "hvm").close("supportedVirtualizationTypes");
    w.open("processorInfo").open("supportedArchitectures").leaf("item", "x86_64").close("supportedArchitectures");
    w.close("processorInfo");
    w.open("vCpuInfo").leaf("defaultVCpus", std::to_string(t.vcpus)).close("vCpuInfo");
    w.open("memoryInfo").leaf("sizeInMiB", std::to_string(t.memory_mib)).close("memoryInfo");
    w.leaf("instanceStorageSupported", "true");
    w.open("instanceStorageInfo").leaf("totalSizeInGB", std::to_string(t.disk_gib));
    w.open("disks").open("item").leaf("sizeInGB", std::to_string(t.disk_gib)).leaf("count", "1");
    w.leaf("type", "hdd").close("item").close("disks").close("instanceStorageInfo");
    w.close("item");
  }
  w.close("instanceTypeSet");
  if (!page->next_token.empty()) w.leaf("nextToken", page->next_token);
  c->respond(w);
}

}  // namespace

void register_instance_ops(op_table& t) {
  t["RunInstances"] = {run_instances, true, true};
  t["DescribeInstances"] = {describe_instances};
  t["DescribeInstanceStatus"] = {describe_instance_status};
  t["StartInstances"] = {start_instances};
  t["StopInstances"] = {stop_instances};
  t["RebootInstances"] = {reboot_instances};
  t["TerminateInstances"] = {terminate_instances};
  t["GetConsoleOutput"] = {get_console_output};
  t["DescribeInstanceAttribute"] = {describe_instance_attribute};
  t["ModifyInstanceAttribute"] = {modify_instance_attribute};
  t["DescribeInstanceTypes"] = {describe_instance_types};
}

}  // namespace kumo::api
