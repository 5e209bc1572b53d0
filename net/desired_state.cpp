#include "net/desired_state.h"

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <tuple>

namespace kumo::net {

namespace {

constexpr uint32_t max_vxlan_id = (1u << 24) - 1;
constexpr uint32_t max_vlan_id = 4094;
constexpr size_t max_ifname = 15;  // IFNAMSIZ - 1

// Strict dotted quad: four canonical decimal octets ("010" is refused).
std::optional<uint32_t> parse_ipv4(const std::string& s) {
  uint32_t value = 0;
  size_t pos = 0;
  for (int i = 0; i < 4; ++i) {
    size_t end = s.find('.', pos);
    if (i == 3) end = s.size();
    if (end == std::string::npos || end == pos || end - pos > 3) return std::nullopt;
    std::string part = s.substr(pos, end - pos);
    if (!std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; }))
      return std::nullopt;
    int octet = std::stoi(part);
    if (octet > 255 || std::to_string(octet) != part) return std::nullopt;
    value = (value << 8) | static_cast<uint32_t>(octet);
    pos = end + 1;
  }
  return value;
}

std::string format_ipv4(uint32_t a) {
  return std::to_string(a >> 24) + "." + std::to_string((a >> 16) & 255) + "." +
         std::to_string((a >> 8) & 255) + "." + std::to_string(a & 255);
}

struct cidr {
  uint32_t network = 0;
  int prefix = 0;
};

// "a.b.c.d/n" with no host bits set.
std::optional<cidr> parse_cidr(const std::string& s) {
  size_t slash = s.find('/');
  if (slash == std::string::npos) return std::nullopt;
  auto address = parse_ipv4(s.substr(0, slash));
  std::string len = s.substr(slash + 1);
  if (!address || len.empty() || len.size() > 2 ||
      !std::all_of(len.begin(), len.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return std::nullopt;
  int prefix = std::stoi(len);
  if (prefix > 32 || std::to_string(prefix) != len) return std::nullopt;
  uint32_t mask = prefix == 0 ? 0 : ~uint32_t{0} << (32 - prefix);
  if ((*address & ~mask) != 0) return std::nullopt;
  return cidr{*address, prefix};
}

// Segment subnets: a /24 network address.
std::optional<uint32_t> parse_subnet24(const std::string& s, std::string& error) {
  auto c = parse_cidr(s);
  if (!c) {
    error = "malformed subnet '" + s + "' (want a.b.c.0/24)";
    return std::nullopt;
  }
  if (c->prefix != 24) {
    error = "subnet '" + s + "' is not a /24";
    return std::nullopt;
  }
  return c->network;
}

bool valid_mac(const std::string& s) {
  if (s.size() != 17) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    if (i % 3 == 2 ? c != ':' : !hex) return false;
  }
  return true;
}

// Interface names go inside nft double quotes and onto dnsmasq lines.
bool valid_ifname(const std::string& s) {
  return !s.empty() && s.size() <= max_ifname &&
         std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-' || c == '.';
         });
}

// The protocol as nft names it; "" when unknown. "-1" (all) stays "-1".
std::string nft_protocol(const std::string& p) {
  if (p == "tcp" || p == "6") return "tcp";
  if (p == "udp" || p == "17") return "udp";
  if (p == "icmp" || p == "1") return "icmp";
  if (p == "-1" || p == "all") return "-1";
  return "";
}

struct checked_segment {
  const segment* seg;
  uint32_t network;  // a.b.c.0
  std::string gateway() const { return format_ipv4(network + 1); }
};

struct checked_rule {
  uint32_t vni;
  std::string protocol;  // nft name or "-1"
  int from_port, to_port;
  std::string cidr;
  uint32_t peer_vni;
  auto key() const { return std::tie(vni, protocol, from_port, to_port, cidr, peer_vni); }
  bool operator<(const checked_rule& o) const { return key() < o.key(); }
  bool operator==(const checked_rule& o) const { return key() == o.key(); }
};

// The well-formed part of a view, in canonical order, and what was left out.
struct checked_view {
  std::vector<checked_segment> segments;   // by vni, unique
  std::vector<const nic*> nics;            // by instance id, unique
  std::vector<checked_rule> rules;         // ingress: sorted, unique
  std::vector<checked_rule> egress;        // egress: sorted, unique
  bool metadata_ok = false;
  bool underlay_ok = false;
  std::vector<std::string> problems;

  const checked_segment* find(uint32_t vni) const {
    auto it = std::lower_bound(segments.begin(), segments.end(), vni,
                               [](const checked_segment& s, uint32_t v) { return s.seg->vni < v; });
    return it != segments.end() && it->seg->vni == vni ? &*it : nullptr;
  }
};

std::optional<std::string> rule_problem(const checked_rule& r, const checked_view& cv) {
  if (!cv.find(r.vni)) return "is on unknown segment " + std::to_string(r.vni);
  if (r.protocol == "tcp" || r.protocol == "udp") {
    if (r.from_port < 0 || r.to_port > 65535 || r.from_port > r.to_port)
      return "has bad port range " + std::to_string(r.from_port) + "-" + std::to_string(r.to_port);
  } else if (r.protocol == "icmp") {
    if (r.from_port < -1 || r.from_port > 255 || r.to_port < -1 || r.to_port > 255 ||
        (r.from_port == -1 && r.to_port != -1))
      return "has bad icmp type/code " + std::to_string(r.from_port) + "/" +
             std::to_string(r.to_port);
  }
  if (r.cidr.empty() == (r.peer_vni == 0)) return "needs exactly one of cidr and peer segment";
  if (!r.cidr.empty() && !parse_cidr(r.cidr)) return "has malformed cidr '" + r.cidr + "'";
  if (r.peer_vni != 0 && !cv.find(r.peer_vni))
    return "names unknown peer segment " + std::to_string(r.peer_vni);
  return std::nullopt;
}

// The well-formed rules of one direction, sorted and unique; the others go to problems.
std::vector<checked_rule> check_rules(const std::vector<group_rule>& given, const std::string& direction,
                                      checked_view& cv) {
  std::vector<checked_rule> rules;
  for (const auto& r : given) {
    std::string proto = nft_protocol(r.protocol);
    checked_rule c{r.vni, proto, r.from_port, r.to_port, r.cidr, r.peer_vni};
    if (proto == "-1") c.from_port = c.to_port = -1;  // ports mean nothing for "all"
    std::string where = direction + " rule on segment " + std::to_string(r.vni) + " (" + r.protocol + " " +
                        std::to_string(r.from_port) + "-" + std::to_string(r.to_port) +
                        (direction == "ingress" ? " from " : " to ") +
                        (r.cidr.empty() ? std::to_string(r.peer_vni) : r.cidr) + "): ";
    if (proto.empty())
      cv.problems.push_back(where + "unknown protocol '" + r.protocol + "'");
    else if (auto p = rule_problem(c, cv))
      cv.problems.push_back(where + *p);
    else
      rules.push_back(std::move(c));
  }
  std::sort(rules.begin(), rules.end());
  rules.erase(std::unique(rules.begin(), rules.end()), rules.end());
  return rules;
}

checked_view check(const network_view& v) {
  checked_view cv;

  std::vector<const segment*> segs;
  for (const auto& s : v.segments) segs.push_back(&s);
  std::sort(segs.begin(), segs.end(), [](const segment* a, const segment* b) {
    return std::tie(a->vni, a->group_id) < std::tie(b->vni, b->group_id);
  });
  uint32_t max_id = v.mode == segment_mode::vlan ? max_vlan_id : max_vxlan_id;
  for (const segment* s : segs) {
    std::string where = "segment " + std::to_string(s->vni) + " (" + s->group_id + "): ";
    std::string error;
    auto network = parse_subnet24(s->subnet, error);
    if (s->vni < 1 || s->vni > max_id)
      cv.problems.push_back(where + "id out of range 1.." + std::to_string(max_id));
    else if (!network)
      cv.problems.push_back(where + error);
    else if (!cv.segments.empty() && cv.segments.back().seg->vni == s->vni)
      cv.problems.push_back(where + "id already used by " + cv.segments.back().seg->group_id);
    else
      cv.segments.push_back({s, *network});
  }

  std::vector<const nic*> nics;
  for (const auto& n : v.nics) nics.push_back(&n);
  std::sort(nics.begin(), nics.end(), [](const nic* a, const nic* b) {
    return std::tie(a->instance_id, a->tap) < std::tie(b->instance_id, b->tap);
  });
  std::set<uint32_t> private_ips, public_ips;
  for (const nic* n : nics) {
    std::string where = "nic of " + n->instance_id + ": ";
    const checked_segment* seg = cv.find(n->vni);
    auto priv = parse_ipv4(n->private_ip);
    std::optional<uint32_t> pub;
    if (!n->public_ip.empty()) pub = parse_ipv4(n->public_ip);
    if (!cv.nics.empty() && cv.nics.back()->instance_id == n->instance_id)
      cv.problems.push_back(where + "instance already has a nic");
    else if (!seg)
      cv.problems.push_back(where + "unknown segment " + std::to_string(n->vni));
    else if (!priv || (*priv & 0xffffff00u) != seg->network || (*priv & 255) < 2 ||
             (*priv & 255) == 255)
      cv.problems.push_back(where + "private ip '" + n->private_ip + "' not a host of " +
                            seg->seg->subnet);
    else if (!n->public_ip.empty() && !pub)
      cv.problems.push_back(where + "malformed public ip '" + n->public_ip + "'");
    else if (!valid_mac(n->mac))
      cv.problems.push_back(where + "malformed mac '" + n->mac + "'");
    else if (!valid_ifname(n->tap))
      cv.problems.push_back(where + "bad tap name '" + n->tap + "'");
    else if (private_ips.count(*priv))
      cv.problems.push_back(where + "private ip " + n->private_ip + " already used");
    else if (pub && public_ips.count(*pub))
      cv.problems.push_back(where + "public ip " + n->public_ip + " already used");
    else {
      private_ips.insert(*priv);
      if (pub) public_ips.insert(*pub);
      cv.nics.push_back(n);
    }
  }

  cv.rules = check_rules(v.ingress, "ingress", cv);
  cv.egress = check_rules(v.egress, "egress", cv);

  cv.metadata_ok = parse_ipv4(v.metadata_ip).has_value() && v.metadata_port != 0;
  if (!cv.metadata_ok)
    cv.problems.push_back("metadata endpoint '" + v.metadata_ip + ":" +
                          std::to_string(v.metadata_port) + "' is malformed");
  cv.underlay_ok = v.physical_interface.empty() || valid_ifname(v.physical_interface);
  if (!cv.underlay_ok)
    cv.problems.push_back("bad physical interface name '" + v.physical_interface + "'");
  return cv;
}

enum class direction { ingress, egress };

// The match part of one rule, e.g. `ip saddr 0.0.0.0/0 tcp dport 22` (ingress:
// the peer is the source) or `oifname "kbr7" udp dport 53` (egress: the destination).
std::string rule_match(const checked_rule& r, direction d) {
  const bool in = d == direction::ingress;
  std::string m = r.cidr.empty() ? std::string(in ? "iifname" : "oifname") + " \"" + bridge_name(r.peer_vni) + "\""
                                 : std::string(in ? "ip saddr " : "ip daddr ") + r.cidr;
  if (r.protocol == "tcp" || r.protocol == "udp") {
    if (r.from_port == 0 && r.to_port == 65535)
      m += " ip protocol " + r.protocol;
    else if (r.from_port == r.to_port)
      m += " " + r.protocol + " dport " + std::to_string(r.from_port);
    else
      m += " " + r.protocol + " dport " + std::to_string(r.from_port) + "-" +
           std::to_string(r.to_port);
  } else if (r.protocol == "icmp") {
    if (r.from_port == -1)
      m += " ip protocol icmp";
    else {
      m += " icmp type " + std::to_string(r.from_port);
      if (r.to_port != -1) m += " icmp code " + std::to_string(r.to_port);
    }
  }
  return m;
}

void map_block(std::string& out, const std::string& name,
               const std::vector<std::pair<std::string, std::string>>& elements) {
  out += "\tmap " + name + " {\n\t\ttype ipv4_addr : ipv4_addr\n";
  if (!elements.empty()) {
    // One element per line (trailing comma included) so that one mapping is
    // one line of the text.
    out += "\t\telements = {\n";
    for (const auto& [k, v] : elements) out += "\t\t\t" + k + " : " + v + ",\n";
    out += "\t\t}\n";
  }
  out += "\t}\n";
}

}  // namespace

std::string bridge_name(uint32_t vni) { return "kbr" + std::to_string(vni); }

std::string host_name(const std::string& ip) {
  std::string dashed = ip;
  std::replace(dashed.begin(), dashed.end(), '.', '-');
  return "ip-" + dashed;
}

text_or_error gateway_of(const std::string& subnet) { return host_in(subnet, 1); }

text_or_error host_in(const std::string& subnet, int host) {
  std::string error;
  auto network = parse_subnet24(subnet, error);
  if (!network) return {"", error};
  if (host < 1 || host > 254)
    return {"", "host " + std::to_string(host) + " is outside 1..254 of " + subnet};
  return {format_ipv4(*network + static_cast<uint32_t>(host)), ""};
}

std::vector<std::string> problems(const network_view& view) { return check(view).problems; }

elastic_ip_maps eip_maps(const network_view& view) {
  checked_view cv = check(view);
  // Keyed by address so their order is stable whatever the nic order.
  std::map<uint32_t, std::string> dnat, snat;
  for (const nic* n : cv.nics) {
    if (n->public_ip.empty()) continue;
    dnat[*parse_ipv4(n->public_ip)] = n->private_ip;
    snat[*parse_ipv4(n->private_ip)] = n->public_ip;
  }
  elastic_ip_maps out;
  for (const auto& [k, v] : dnat) out.dnat.emplace_back(format_ipv4(k), v);
  for (const auto& [k, v] : snat) out.snat.emplace_back(format_ipv4(k), v);
  return out;
}

std::string nft_ruleset(const network_view& view) {
  checked_view cv = check(view);
  std::string out = "table ip kumo {\n";
  auto maps = eip_maps(view);
  map_block(out, "eip_dnat", maps.dnat);
  map_block(out, "eip_snat", maps.snat);

  out += "\tchain prerouting {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n";
  if (cv.metadata_ok)
    for (const auto& s : cv.segments)
      out += "\t\tiifname \"" + bridge_name(s.seg->vni) + "\" ip daddr " + view.metadata_ip +
             " tcp dport 80 dnat to " + s.gateway() + ":" + std::to_string(view.metadata_port) +
             "\n";
  out += "\t\tdnat to ip daddr map @eip_dnat\n\t}\n";

  // Only traffic leaving towards the outside takes the public address;
  // between segments guests see each other's private addresses.
  out += "\tchain postrouting {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n"
         "\t\toifname != \"kbr*\" snat to ip saddr map @eip_snat\n\t}\n";

  // To the host itself a guest may only ask for DHCP and (through the DNAT
  // above) metadata; nothing else on the host is reachable from a segment,
  // and the metadata port is reachable from segments only.
  if (!cv.segments.empty()) {
    const auto port = std::to_string(view.metadata_port);
    out += "\tchain input {\n\t\ttype filter hook input priority filter; policy accept;\n"
           "\t\tiifname \"kbr*\" udp dport 67 accept\n";
    for (const auto& s : cv.segments)
      out += "\t\tiifname \"" + bridge_name(s.seg->vni) + "\" ip saddr != " + s.seg->subnet + " drop\n";
    out += "\t\tiifname \"kbr*\" ct state established,related accept\n"
           "\t\tiifname \"kbr*\" tcp dport " + port + " accept\n"
           "\t\tiifname \"kbr*\" drop\n"
           "\t\ttcp dport " + port + " drop\n\t}\n";
  }

  // The ip-family forward hook sees routed traffic only: between segments and
  // to/from the outside. Guests of one segment talk over the bridge at L2
  // (no br_netfilter), open as within one EC2-classic group. In this hook the
  // input interface is the bridge, not the guest's tap, so anti-spoofing is
  // per segment: a guest cannot send routed traffic from outside its subnet.
  out += "\tchain forward {\n\t\ttype filter hook forward priority filter; policy accept;\n"
         "\t\tct state established,related accept\n";
  for (const auto& s : cv.segments)
    out += "\t\tiifname \"" + bridge_name(s.seg->vni) + "\" ip saddr != " + s.seg->subnet +
           " drop\n";
  if (!cv.segments.empty()) {
    // Out of a segment first (its group's egress), then into one (ingress).
    out += "\t\tiifname vmap {";
    for (size_t i = 0; i < cv.segments.size(); ++i) {
      uint32_t vni = cv.segments[i].seg->vni;
      out += std::string(i ? ", " : " ") + "\"" + bridge_name(vni) + "\" : jump out_" + std::to_string(vni);
    }
    out += " }\n";
    out += "\t\toifname vmap {";
    for (size_t i = 0; i < cv.segments.size(); ++i) {
      uint32_t vni = cv.segments[i].seg->vni;
      out += std::string(i ? ", " : " ") + "\"" + bridge_name(vni) + "\" : jump seg_" +
             std::to_string(vni);
    }
    out += " }\n";
  }
  out += "\t}\n";

  // Into a segment: what its group authorises, nothing else.
  // Out of a segment: what its group's egress rules allow goes on to the
  // ingress check ("return"), the rest is dropped. Within the segment is open.
  for (const auto& s : cv.segments) {
    out += "\tchain out_" + std::to_string(s.seg->vni) + " {\n";
    out += "\t\toifname \"" + bridge_name(s.seg->vni) + "\" return\n";
    for (const auto& r : cv.egress)
      if (r.vni == s.seg->vni && r.peer_vni != r.vni) out += "\t\t" + rule_match(r, direction::egress) + " return\n";
    out += "\t\tdrop\n\t}\n";
  }

  // Within a segment traffic is open, as within one EC2-classic group (it
  // reaches this hook too when br_netfilter is loaded on the host).
  for (const auto& s : cv.segments) {
    out += "\tchain seg_" + std::to_string(s.seg->vni) + " {\n";
    out += "\t\tiifname \"" + bridge_name(s.seg->vni) + "\" accept\n";
    for (const auto& r : cv.rules)  // (a group admitting itself is the line above)
      if (r.vni == s.seg->vni && r.peer_vni != r.vni) out += "\t\t" + rule_match(r, direction::ingress) + " accept\n";
    out += "\t\tdrop\n\t}\n";
  }
  out += "}\n";
  return out;
}

std::vector<link> desired_links(const network_view& view) {
  checked_view cv = check(view);
  std::vector<link> links;
  for (const auto& s : cv.segments) {
    uint32_t vni = s.seg->vni;
    link br;
    br.kind = link_kind::bridge;
    br.name = bridge_name(vni);
    br.vni = vni;
    br.address = s.gateway() + "/24";
    links.push_back(br);
    if (view.physical_interface.empty() || !cv.underlay_ok) continue;
    link up;
    up.master = br.name;
    up.vni = vni;
    up.underlay = view.physical_interface;
    if (view.mode == segment_mode::vxlan) {
      up.kind = link_kind::vxlan;
      up.name = "kvx" + std::to_string(vni);
      up.group = format_ipv4((239u << 24) | vni);  // 239.<vni high>.<mid>.<low>
      up.dstport = 4789;
    } else {
      up.kind = link_kind::vlan;
      up.name = "kvl" + std::to_string(vni);
    }
    links.push_back(up);
  }
  return links;
}

std::string dnsmasq_config(const network_view& view, const std::string& state_dir) {
  checked_view cv = check(view);
  std::string out =
      "# generated by kumo from the event log; rewritten on every reconcile\n"
      "port=0\n"
      "bind-dynamic\n"
      "dhcp-authoritative\n"
      "dhcp-hostsfile=" + state_dir + "/hosts\n"
      "dhcp-leasefile=" + state_dir + "/leases\n";
  for (const auto& s : cv.segments) {
    std::string br = bridge_name(s.seg->vni);
    out += "interface=" + br + "\n";
    out += "dhcp-range=set:" + br + "," + format_ipv4(s.network + 10) +
           ",static,255.255.255.0,12h\n";
    out += "dhcp-option=tag:" + br + ",option:router," + s.gateway() + "\n";
  }
  return out;
}

std::string dnsmasq_hosts(const network_view& view) {
  checked_view cv = check(view);
  std::vector<std::string> lines;
  for (const nic* n : cv.nics) lines.push_back(n->mac + "," + n->private_ip + "," + host_name(n->private_ip));
  std::sort(lines.begin(), lines.end());
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

}  // namespace kumo::net
