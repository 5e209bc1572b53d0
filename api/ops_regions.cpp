// DescribeRegions, DescribeAvailabilityZones, DescribeAccountAttributes:
// answered from configuration (one region; its zones are the clusters).
#include "api/filters.h"
#include "api/operation.h"

namespace kumo::api {
namespace {

// Fails the call and returns nullopt when the names are not all known.
std::optional<std::vector<std::string>> select_names(const op_ptr& c, const std::string& param,
                                                     const std::vector<std::string>& known,
                                                     const std::string& what) {
  query_error err;
  auto wanted = c->params.list(param, err);
  if (!wanted) {
    c->fail(err);
    return std::nullopt;
  }
  if (wanted->empty()) return known;
  for (const auto& w : *wanted)
    if (std::find(known.begin(), known.end(), w) == known.end()) {
      c->fail("InvalidParameterValue", "Invalid " + what + ": " + w);
      return std::nullopt;
    }
  return wanted;
}

void describe_regions(const op_ptr& c) {
  auto filters = checked_filters(c, {"endpoint", "region-name", "opt-in-status"});
  auto names = filters ? select_names(c, "RegionName", {c->cfg->region}, "region") : std::nullopt;
  if (!names) return;
  xml_writer w;
  w.open("regionInfo");
  for (const auto& name : *names) {
    const std::string endpoint = "ec2." + name + ".kumo";
    if (!matches(*filters, [&](const std::string& f) -> std::vector<std::string> {
          if (f == "endpoint") return {endpoint};
          if (f == "region-name") return {name};
          return {"opt-in-not-required"};
        }))
      continue;
    w.open("item").leaf("regionName", name).leaf("regionEndpoint", endpoint);
    w.leaf("optInStatus", "opt-in-not-required").close("item");
  }
  w.close("regionInfo");
  c->respond(w);
}

// Zone ids are stable, derived from the zone's position: "<region>-az1", ...
std::string zone_id(const ec2_config& cfg, const std::string& zone) {
  auto it = std::find(cfg.zones.begin(), cfg.zones.end(), zone);
  return cfg.region + "-az" + std::to_string(it - cfg.zones.begin() + 1);
}

void describe_availability_zones(const op_ptr& c) {
  const auto& cfg = *c->cfg;
  auto filters = checked_filters(c, {"zone-name", "zone-id", "state", "region-name", "zone-type",
                                     "group-name", "opt-in-status", "message"});
  if (!filters) return;
  auto names = select_names(c, "ZoneName", cfg.zones, "availability zone");
  if (!names) return;
  std::vector<std::string> ids;
  for (const auto& z : cfg.zones) ids.push_back(zone_id(cfg, z));
  auto wanted_ids = select_names(c, "ZoneId", ids, "availability zone id");
  if (!wanted_ids) return;
  xml_writer w;
  w.open("availabilityZoneInfo");
  for (const auto& zone : *names) {
    auto id = zone_id(cfg, zone);
    if (std::find(wanted_ids->begin(), wanted_ids->end(), id) == wanted_ids->end()) continue;
    if (!matches(*filters, [&](const std::string& f) -> std::vector<std::string> {
          if (f == "zone-name") return {zone};
          if (f == "zone-id") return {id};
          if (f == "state") return {"available"};
          if (f == "region-name" || f == "group-name") return {cfg.region};
          if (f == "zone-type") return {"availability-zone"};
          if (f == "opt-in-status") return {"opt-in-not-required"};
          return {};
        }))
      continue;
    w.open("item").leaf("zoneName", zone).leaf("zoneId", id).leaf("zoneState", "available");
    w.leaf("regionName", cfg.region).leaf("groupName", cfg.region);
    w.leaf("networkBorderGroup", cfg.region).leaf("optInStatus", "opt-in-not-required");
    w.leaf("zoneType", "availability-zone").open("messageSet").close("messageSet").close("item");
  }
  w.close("availabilityZoneInfo");
  c->respond(w);
}

void describe_account_attributes(const op_ptr& c) {
  // kumo has EC2-classic-style networking (security groups, no VPCs yet).
  static const std::vector<std::pair<std::string, std::string>> attributes = {
      {"supported-platforms", "EC2"},
      {"default-vpc", "none"},
      {"max-instances", "20"},
      {"max-elastic-ips", "5"},
      {"vpc-max-security-groups-per-interface", "5"},
      {"vpc-max-elastic-ips", "5"},
  };
  std::vector<std::string> known;
  for (const auto& [name, value] : attributes) known.push_back(name);
  auto names = select_names(c, "AttributeName", known, "account attribute");
  if (!names) return;
  xml_writer w;
  w.open("accountAttributeSet");
  for (const auto& [name, value] : attributes) {
    if (std::find(names->begin(), names->end(), name) == names->end()) continue;
    w.open("item").leaf("attributeName", name).open("attributeValueSet");
    w.open("item").leaf("attributeValue", value).close("item");
    w.close("attributeValueSet").close("item");
  }
  w.close("accountAttributeSet");
  c->respond(w);
}

}  // namespace

void register_region_ops(op_table& t) {
  t["DescribeRegions"] = {describe_regions};
  t["DescribeAvailabilityZones"] = {describe_availability_zones};
  t["DescribeAccountAttributes"] = {describe_account_attributes};
}

}  // namespace kumo::api
