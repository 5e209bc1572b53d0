// CreateSecurityGroup, DeleteSecurityGroup, DescribeSecurityGroups,
// Authorize/RevokeSecurityGroupIngress/Egress. Every account has a group
// named "default", created on the account's first security group call.
#include "api/lookups.h"
#include "api/op_requests.h"

#include "actors/securitygroup/security_group_actors.h"
#include "persistence/time_format.h"


#include <arpa/inet.h>

namespace kumo::api {
namespace {

using namespace actors::security_group;
using groups = std::vector<state>;

// Sends a command to the group "<account>/<name>"; `then(reply)` on success.
template <class Then>
void command_group(const op_ptr& c, const std::string& name, command cmd, Then then) {
  c->self->request(c->cloud->security_groups, actor_timeout, aggregate_id(c->account_id, name),
                   std::move(cmd), c->meta())
      .then(
          [=](security_group_reply& r) {
            if (r.error) return c->fail(r.error->code, r.error->message);
            c->wrote(r.global_seq);
            then(r);
          },
          [=](caf::error& e) { service_unavailable(c, e); });
}

const state* find_group(const groups& all, const std::string& id_or_name, bool by_id) {
  for (const auto& g : all)
    if ((by_id ? g.group_id : g.group_name) == id_or_name) return &g;
  return nullptr;
}

// The group named by GroupId or GroupName (GroupId wins), or a NotFound reply.
const state* target_group(const op_ptr& c, const groups& all) {
  auto id = c->params.get("GroupId");
  auto name = c->params.get("GroupName");
  if (!id && !name) {
    c->fail("MissingParameter", "The request must contain the parameter GroupId or GroupName");
    return nullptr;
  }
  const state* g = id ? find_group(all, *id, true) : find_group(all, *name, false);
  if (!g)
    c->fail("InvalidGroup.NotFound", "The security group '" + (id ? *id : *name) + "' does not exist");
  return g;
}

std::optional<int> port_of(const op_ptr& c, const std::string& param) {
  auto v = c->params.get(param);
  if (!v) return std::nullopt;
  try {
    size_t used = 0;
    int n = std::stoi(*v, &used);
    if (used == v->size()) return n;
  } catch (const std::exception&) {
  }
  c->fail("InvalidParameterValue", "Value (" + v->substr(0, 32) + ") for parameter " + param + " is not an integer");
  return std::nullopt;
}

bool valid_cidr(const std::string& cidr, std::string& why) {
  auto slash = cidr.find('/');
  in_addr addr{};
  if (slash == std::string::npos || inet_pton(AF_INET, cidr.substr(0, slash).c_str(), &addr) != 1 ||
      cidr.size() - slash - 1 > 2 || cidr.find_first_not_of("0123456789", slash + 1) != std::string::npos ||
      slash + 1 == cidr.size()) {
    why = "CIDR block " + cidr + " is malformed";
    return false;
  }
  int bits = std::stoi(cidr.substr(slash + 1));
  if (bits > 32) {
    why = "CIDR block " + cidr + " is malformed";
    return false;
  }
  uint32_t ip = ntohl(addr.s_addr);
  uint32_t mask = bits == 0 ? 0 : ~uint32_t{0} << (32 - bits);
  if ((ip & ~mask) != 0) {
    why = "CIDR block " + cidr + " is not a network address (host bits set)";
    return false;
  }
  return true;
}

// Normalises protocol and ports (<where>FromPort / <where>ToPort) of one
// permission; false after failing the call.
bool protocol_and_ports(const op_ptr& c, const std::string& where, std::string proto, rule& r) {
  auto from = port_of(c, where + "FromPort");
  if (!from && c->params.has(where + "FromPort")) return false;
  auto to = port_of(c, where + "ToPort");
  if (!to && c->params.has(where + "ToPort")) return false;
  if (proto == "6") proto = "tcp";
  if (proto == "17") proto = "udp";
  if (proto == "1") proto = "icmp";
  if (proto == "all") proto = "-1";
  if (proto != "tcp" && proto != "udp" && proto != "icmp" && proto != "-1") {
    c->fail("InvalidParameterValue", "Invalid value '" + proto.substr(0, 16) + "' for " + where +
                                         "IpProtocol: use tcp, udp, icmp or -1");
    return false;
  }
  r.protocol = proto;
  if (proto == "-1") return true;  // all traffic: ports do not apply
  if (!from || !to) {
    c->fail("MissingParameter", where + "FromPort and " + where + "ToPort are required for " + proto);
    return false;
  }
  bool ok = proto == "icmp" ? (*from >= -1 && *from <= 255 && *to >= -1 && *to <= 255)
                            : (*from >= 0 && *to <= 65535 && *from <= *to);
  if (!ok) {
    c->fail("InvalidParameterValue", "invalid port range " + std::to_string(*from) + "-" +
                                         std::to_string(*to) + " for " + proto);
    return false;
  }
  r.from_port = *from;
  r.to_port = *to;
  return true;
}

// Reads IpPermissions.N.* (and the older flat CidrIp / SourceSecurityGroupName
// form the aws CLI's --protocol/--port/--cidr use) into rules.
std::optional<std::vector<rule>> rules_of(const op_ptr& c, const groups& all) {
  std::vector<rule> out;
  query_error err;
  auto peer_group = [&](const std::string& id, const std::string& name, rule base) -> bool {
    const state* g = !id.empty() ? find_group(all, id, true) : find_group(all, name, false);
    if (!g) {
      c->fail("InvalidGroup.NotFound", "The security group '" + (id.empty() ? name : id) + "' does not exist");
      return false;
    }
    base.source_group_id = g->group_id;
    out.push_back(base);
    return true;
  };
  if (auto proto = c->params.get("IpProtocol")) {
    rule base;
    if (!protocol_and_ports(c, "", *proto, base)) return std::nullopt;
    if (auto cidr = c->params.get("CidrIp")) {
      std::string why;
      if (!valid_cidr(*cidr, why)) return c->fail("InvalidParameterValue", why), std::nullopt;
      base.cidr = *cidr;
      out.push_back(base);
    } else if (auto src = c->params.get("SourceSecurityGroupName")) {
      if (!peer_group("", *src, base)) return std::nullopt;
    } else {
      return c->fail("MissingParameter", "CidrIp or SourceSecurityGroupName is required"), std::nullopt;
    }
  }
  auto perms = c->params.indexes("IpPermissions", err);
  if (!perms) return c->fail(err), std::nullopt;
  for (int n : *perms) {
    auto base_key = "IpPermissions." + std::to_string(n) + ".";
    auto proto = c->params.get(base_key + "IpProtocol");
    if (!proto) return c->fail("MissingParameter", base_key + "IpProtocol is required"), std::nullopt;
    rule base;
    if (!protocol_and_ports(c, base_key, *proto, base)) return std::nullopt;
    size_t before = out.size();
    auto ranges = c->params.indexes(base_key + "IpRanges", err);
    auto pairs = ranges ? c->params.indexes(base_key + "Groups", err) : std::nullopt;
    if (!pairs) return c->fail(err), std::nullopt;
    for (int m : *ranges) {
      auto key = base_key + "IpRanges." + std::to_string(m) + ".";
      auto cidr = c->params.get(key + "CidrIp");
      if (!cidr) return c->fail("MissingParameter", key + "CidrIp is required"), std::nullopt;
      std::string why;
      if (!valid_cidr(*cidr, why)) return c->fail("InvalidParameterValue", why), std::nullopt;
      rule r = base;
      r.cidr = *cidr;
      r.description = c->params.get(key + "Description").value_or("");
      out.push_back(r);
    }
    for (int m : *pairs) {
      auto key = base_key + "Groups." + std::to_string(m) + ".";
      auto id = c->params.get(key + "GroupId"), name = c->params.get(key + "GroupName");
      if (!id && !name) return c->fail("MissingParameter", key + "GroupId is required"), std::nullopt;
      auto owner = c->params.get(key + "UserId");
      if (owner && *owner != c->account_id)
        return c->fail("InvalidGroup.NotFound", "groups of other accounts cannot be referenced"), std::nullopt;
      rule r = base;
      r.description = c->params.get(key + "Description").value_or("");
      if (!peer_group(id.value_or(""), name.value_or(""), r)) return std::nullopt;
    }
    if (c->params.has(base_key + "Ipv6Ranges.1.CidrIpv6") || c->params.has(base_key + "PrefixListIds.1.PrefixListId"))
      return c->fail("InvalidParameterValue", "IPv6 ranges and prefix lists are not supported by kumo"), std::nullopt;
    if (out.size() == before)
      return c->fail("MissingParameter", base_key + "IpRanges or " + base_key + "Groups is required"), std::nullopt;
  }
  if (out.empty())
    return c->fail("MissingParameter", "The request must contain IpPermissions (or IpProtocol with CidrIp)"),
           std::nullopt;
  return out;
}

void write_rules(xml_writer& w, const char* element, const std::vector<rule>& rules, const std::string& owner) {
  w.open(element);
  for (const auto& r : rules) {
    w.open("item").leaf("ipProtocol", r.protocol);
    if (r.protocol != "-1") w.leaf("fromPort", std::to_string(r.from_port)).leaf("toPort", std::to_string(r.to_port));
    w.open("groups");
    if (!r.source_group_id.empty()) {
      w.open("item").leaf("userId", owner).leaf("groupId", r.source_group_id);
      if (!r.description.empty()) w.leaf("description", r.description);
      w.close("item");
    }
    w.close("groups").open("ipRanges");
    if (!r.cidr.empty()) {
      w.open("item").leaf("cidrIp", r.cidr);
      if (!r.description.empty()) w.leaf("description", r.description);
      w.close("item");
    }
    w.close("ipRanges").open("ipv6Ranges").close("ipv6Ranges").open("prefixListIds").close("prefixListIds");
    w.close("item");
  }
  w.close(element);
}

void create_security_group(const op_ptr& c) {
  auto name = required(c, "GroupName");
  auto description = name ? required(c, "GroupDescription") : std::nullopt;
  if (!description) return;
  if (!valid_group_name(*name))
    return c->fail("InvalidParameterValue",
                   "Value (" + name->substr(0, 64) + ") for parameter GroupName is invalid: 1-255 "
                   "printable ASCII characters, not starting with sg-");
  if (description->size() > 255)
    return c->fail("InvalidParameterValue", "GroupDescription is longer than 255 characters");
  if (c->params.has("VpcId"))
    return c->fail("InvalidParameterValue", "kumo has no VPCs; omit VpcId");
  auto tags = tags_for(c, "security-group");
  if (!tags) return;
  with_security_groups(c, [=](const groups&) {
    command_group(c, *name, create_group{new_group_id(), *description, persistence::now_ms(), *tags},
                  [c](const security_group_reply& r) {
                    xml_writer w;
                    w.leaf("return", "true").leaf("groupId", r.state.group_id);
                    write_tag_set(w, r.state.tags);
                    c->respond(w);
                  });
  });
}

void delete_security_group(const op_ptr& c) {
  with_security_groups(c, [=](const groups& all) {
    const state* g = target_group(c, all);
    if (!g) return;
    if (g->group_name == "default")
      return c->fail("CannotDelete", "the default security group cannot be deleted");
    for (const auto& other : all) {
      if (other.group_id == g->group_id) continue;
      for (const auto* rules : {&other.ingress, &other.egress})
        for (const auto& r : *rules)
          if (r.source_group_id == g->group_id)
            return c->fail("DependencyViolation", "resource " + g->group_id + " has a dependent object: " +
                                                      other.group_id + " refers to it in a rule");
    }
    command_group(c, g->group_name, delete_group{}, [c](const security_group_reply&) {
      xml_writer w;
      w.leaf("return", "true");
      c->respond(w);
    });
  });
}

void change_rules(const op_ptr& c, direction dir, bool grant) {
  with_security_groups(c, [=](const groups& all) {
    const state* g = target_group(c, all);
    if (!g) return;
    auto rules = rules_of(c, all);
    if (!rules) return;
    command g_cmd = grant ? command{authorize{dir, *rules}} : command{revoke{dir, *rules}};
    command_group(c, g->group_name, std::move(g_cmd), [c](const security_group_reply&) {
      xml_writer w;
      w.leaf("return", "true");
      c->respond(w);
    });
  });
}

std::vector<std::string> rule_values(const std::vector<rule>& rules, const std::string& field) {
  std::vector<std::string> out;
  for (const auto& r : rules) {
    if (field == "protocol") out.push_back(r.protocol);
    else if (field == "from-port") out.push_back(std::to_string(r.from_port));
    else if (field == "to-port") out.push_back(std::to_string(r.to_port));
    else if (field == "cidr" && !r.cidr.empty()) out.push_back(r.cidr);
    else if (field == "group-id" && !r.source_group_id.empty()) out.push_back(r.source_group_id);
  }
  return out;
}

void describe_security_groups(const op_ptr& c) {
  std::set<std::string> allowed{"group-id", "group-name", "description", "owner-id", "tag-key", "tag-value", "tag:*"};
  for (const char* f : {"protocol", "from-port", "to-port", "cidr", "group-id"}) {
    allowed.insert(std::string("ip-permission.") + f);
    allowed.insert(std::string("egress.ip-permission.") + f);
  }
  auto filters = checked_filters(c, allowed);
  if (!filters) return;
  query_error err;
  auto ids = c->params.list("GroupId", err);
  auto names = ids ? c->params.list("GroupName", err) : std::nullopt;
  if (!names) return c->fail(err);
  with_security_groups(c, [=](const groups& all) {
    for (const auto& id : *ids)
      if (!find_group(all, id, true)) return c->fail("InvalidGroup.NotFound", "The security group '" + id + "' does not exist");
    for (const auto& n : *names)
      if (!find_group(all, n, false)) return c->fail("InvalidGroup.NotFound", "The security group '" + n + "' does not exist");
    std::vector<const state*> selected;
    for (const auto& g : all) {
      if (!listed(*ids, g.group_id) || !listed(*names, g.group_name)) continue;
      if (!matches(*filters, [&](const std::string& f) -> std::vector<std::string> {
            if (f == "group-id") return {g.group_id};
            if (f == "group-name") return {g.group_name};
            if (f == "description") return {g.description};
            if (f == "owner-id") return {g.account_id};
            if (f.rfind("ip-permission.", 0) == 0) return rule_values(g.ingress, f.substr(14));
            if (f.rfind("egress.ip-permission.", 0) == 0) return rule_values(g.egress, f.substr(21));
            return tag_filter_values(f, g.tags);
          }))
        continue;
      selected.push_back(&g);
    }
    auto p = paginate(c, selected.size());
    if (!p) return;
    xml_writer w;
    w.open("securityGroupInfo");
    for (size_t i = p->begin; i < p->end; ++i) {
      const auto& g = *selected[i];
      w.open("item").leaf("ownerId", g.account_id).leaf("groupId", g.group_id);
      w.leaf("groupName", g.group_name).leaf("groupDescription", g.description);
      write_rules(w, "ipPermissions", g.ingress, g.account_id);
      write_rules(w, "ipPermissionsEgress", g.egress, g.account_id);
      write_tag_set(w, g.tags);
      w.close("item");
    }
    w.close("securityGroupInfo");
    if (!p->next_token.empty()) w.leaf("nextToken", p->next_token);
    c->respond(w);
  });
}

}  // namespace

void register_security_group_ops(op_table& t) {
  t["CreateSecurityGroup"] = {create_security_group};
  t["DeleteSecurityGroup"] = {delete_security_group};
  t["DescribeSecurityGroups"] = {describe_security_groups};
  t["AuthorizeSecurityGroupIngress"] = {[](const op_ptr& c) { change_rules(c, direction::ingress, true); }};
  t["AuthorizeSecurityGroupEgress"] = {[](const op_ptr& c) { change_rules(c, direction::egress, true); }};
  t["RevokeSecurityGroupIngress"] = {[](const op_ptr& c) { change_rules(c, direction::ingress, false); }};
  t["RevokeSecurityGroupEgress"] = {[](const op_ptr& c) { change_rules(c, direction::egress, false); }};
}

}  // namespace kumo::api
