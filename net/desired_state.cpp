#include "net/desired_state.h"

#include <algorithm>
#include <bitset>
#include <map>
#include <optional>
#include <set>
#include <string_view>
#include <tuple>

namespace kumo::net {

namespace {

constexpr uint32_t max_vxlan_id = (1u << 24) - 1;
constexpr uint32_t max_vlan_id = 4094;
constexpr size_t max_ifname = 15;  // IFNAMSIZ - 1

// Strict dotted quad: four canonical decimal octets ("010" is refused).
// Called for every address of every NIC on every pass: no allocation.
std::optional<uint32_t> parse_ipv4(std::string_view s) {
  uint32_t value = 0;
  size_t pos = 0;
  for (int i = 0; i < 4; ++i) {
    if (i > 0 && (pos >= s.size() || s[pos++] != '.')) return std::nullopt;
    const size_t start = pos;
    uint32_t octet = 0;
    while (pos < s.size() && pos - start < 4 && s[pos] >= '0' && s[pos] <= '9') octet = octet * 10 + (s[pos++] - '0');
    const size_t digits = pos - start;
    if (digits == 0 || digits > 3 || octet > 255 || (digits > 1 && s[start] == '0')) return std::nullopt;
    value = (value << 8) | octet;
  }
  if (pos != s.size()) return std::nullopt;
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
  auto address = parse_ipv4(std::string_view(s).substr(0, slash));
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

struct checked_nic {
  const nic* n;
  uint32_t private_ip;
  uint32_t public_ip;  // meaningful when n->public_ip is not empty
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
  std::vector<checked_nic> nics;           // by instance id, unique
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

  // Views come sorted by instance id: then the NICs are taken as they are.
  // (Thousands of NICs on every pass: no copies, no per-NIC allocation.)
  auto by_instance = [](const nic& a, const nic& b) { return std::tie(a.instance_id, a.tap) < std::tie(b.instance_id, b.tap); };
  std::vector<const nic*> sorted;
  if (!std::is_sorted(v.nics.begin(), v.nics.end(), by_instance)) {
    for (const auto& n : v.nics) sorted.push_back(&n);
    std::sort(sorted.begin(), sorted.end(), [&](const nic* a, const nic* b) { return by_instance(*a, *b); });
  }
  // A public IP can only be taken twice if it appears twice in the view:
  // those few are the ones to track.
  std::vector<uint32_t> publics, contested;
  for (const auto& n : v.nics)
    if (auto pub = n.public_ip.empty() ? std::nullopt : parse_ipv4(n.public_ip)) publics.push_back(*pub);
  std::sort(publics.begin(), publics.end());
  for (size_t i = 1; i < publics.size(); ++i)
    if (publics[i] == publics[i - 1] && (contested.empty() || contested.back() != publics[i])) contested.push_back(publics[i]);
  auto is_contested = [&](uint32_t a) { return std::binary_search(contested.begin(), contested.end(), a); };
  std::set<uint32_t> publics_taken;                    // of the contested ones
  std::map<uint32_t, std::bitset<256>> private_taken;  // by /24 network: hosts taken
  cv.nics.reserve(v.nics.size());
  auto take = [&](const nic& n) {
    auto problem = [&](const std::string& what) { cv.problems.push_back("nic of " + n.instance_id + ": " + what); };
    const checked_segment* seg = cv.find(n.vni);
    auto priv = parse_ipv4(n.private_ip);
    std::optional<uint32_t> pub;
    if (!n.public_ip.empty()) pub = parse_ipv4(n.public_ip);
    if (!cv.nics.empty() && cv.nics.back().n->instance_id == n.instance_id)
      problem("instance already has a nic");
    else if (!seg)
      problem("unknown segment " + std::to_string(n.vni));
    else if (!priv || (*priv & 0xffffff00u) != seg->network || (*priv & 255) < 2 || (*priv & 255) == 255)
      problem("private ip '" + n.private_ip + "' not a host of " + seg->seg->subnet);
    else if (!n.public_ip.empty() && !pub)
      problem("malformed public ip '" + n.public_ip + "'");
    else if (!valid_mac(n.mac))
      problem("malformed mac '" + n.mac + "'");
    else if (!valid_ifname(n.tap))
      problem("bad tap name '" + n.tap + "'");
    else if (private_taken[seg->network][*priv & 255])
      problem("private ip " + n.private_ip + " already used");
    else if (pub && is_contested(*pub) && publics_taken.count(*pub))
      problem("public ip " + n.public_ip + " already used");
    else {
      private_taken[seg->network].set(*priv & 255);
      if (pub && is_contested(*pub)) publics_taken.insert(*pub);
      cv.nics.push_back({&n, *priv, pub.value_or(0)});
    }
  };
  if (sorted.empty())
    for (const auto& n : v.nics) take(n);
  else
    for (const nic* n : sorted) take(*n);

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

void map_block(std::string& out, const char* name, const std::vector<std::pair<std::string, std::string>>& elements) {
  out += "\tmap ";
  out += name;
  out += " {\n\t\ttype ipv4_addr : ipv4_addr\n";
  if (!elements.empty()) {
    // One element per line (trailing comma included) so that one mapping is
    // one line of the text.
    out += "\t\telements = {\n";
    for (const auto& [k, v] : elements) {
      out += "\t\t\t";
      out += k;
      out += " : ";
      out += v;
      out += ",\n";
    }
    out += "\t\t}\n";
  }
  out += "\t}\n";
}

std::string nft_text(const std::string& rules, const elastic_ip_maps& eips) {
  std::string out;
  out.reserve(rules.size() + 128 + 32 * (eips.dnat.size() + eips.snat.size()));
  out += "table ip kumo {\n";
  map_block(out, "eip_dnat", eips.dnat);
  map_block(out, "eip_snat", eips.snat);
  out += rules;
  return out;
}

// Sorted by address, so their order is stable whatever the nic order (keys
// are unique: check() leaves out a second user of an address).
void eips_of(const checked_view& cv, elastic_ip_maps& out) {
  std::vector<std::pair<uint32_t, const nic*>> by_public, by_private;
  for (const auto& c : cv.nics) {
    if (c.n->public_ip.empty()) continue;
    by_public.emplace_back(c.public_ip, c.n);
    by_private.emplace_back(c.private_ip, c.n);
  }
  std::sort(by_public.begin(), by_public.end());
  std::sort(by_private.begin(), by_private.end());
  // Assigned in place: the strings and vectors of `out` keep their buffers.
  out.dnat.resize(by_public.size());
  for (size_t i = 0; i < by_public.size(); ++i) {
    out.dnat[i].first = by_public[i].second->public_ip;
    out.dnat[i].second = by_public[i].second->private_ip;
  }
  out.snat.resize(by_private.size());
  for (size_t i = 0; i < by_private.size(); ++i) {
    out.snat[i].first = by_private[i].second->private_ip;
    out.snat[i].second = by_private[i].second->public_ip;
  }
}

// The table after its two maps (see desired_plane::nft_rules).
std::string rules_of(const network_view& view, const checked_view& cv) {
  std::string out = "\tchain prerouting {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n";
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

std::vector<link> links_of(const network_view& view, const checked_view& cv) {
  std::vector<link> links;
  for (const auto& s : cv.segments) {
    uint32_t vni = s.seg->vni;
    link br;
    br.kind = link_kind::bridge;
    br.name = bridge_name(vni);
    br.vni = vni;
    if (view.gateway) br.address = s.gateway() + "/24";  // one .1 per segment, on the gateway host
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

std::string dnsmasq_config_of(const network_view& view, const checked_view& cv, const std::string& state_dir) {
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
    if (view.guest_mtu > 0) out += "dhcp-option=tag:" + br + ",option:mtu," + std::to_string(view.guest_mtu) + "\n";
  }
  return out;
}

// By instance id (the order of check()), into `out`'s buffers.
void dnsmasq_hosts_of(const checked_view& cv, std::string& out, std::vector<dhcp_host>& pairs) {
  out.clear();
  pairs.resize(cv.nics.size());
  for (size_t i = 0; i < cv.nics.size(); ++i) {
    const nic& n = *cv.nics[i].n;
    out += n.mac;
    out += ',';
    out += n.private_ip;
    out += ',';
    out += host_name(n.private_ip);
    out += '\n';
    pairs[i].mac = n.mac;
    pairs[i].ip = n.private_ip;
  }
}

void taps_of(const checked_view& cv, std::vector<tap_port>& out) {
  out.resize(cv.nics.size());
  for (size_t i = 0; i < cv.nics.size(); ++i) {
    out[i].tap = cv.nics[i].n->tap;
    out[i].instance_id = cv.nics[i].n->instance_id;
    out[i].vni = cv.nics[i].n->vni;
  }
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
  elastic_ip_maps out;
  eips_of(check(view), out);
  return out;
}

std::string nft_ruleset(const network_view& view) {
  checked_view cv = check(view);
  elastic_ip_maps eips;
  eips_of(cv, eips);
  return nft_text(rules_of(view, cv), eips);
}

std::string nft_ruleset(const desired_plane& d) { return nft_text(d.nft_rules, d.eips); }

std::vector<link> desired_links(const network_view& view) { return links_of(view, check(view)); }

std::string dnsmasq_config(const network_view& view, const std::string& state_dir) {
  return dnsmasq_config_of(view, check(view), state_dir);
}

std::string dnsmasq_hosts(const network_view& view) {
  std::string out;
  std::vector<dhcp_host> pairs;
  dnsmasq_hosts_of(check(view), out, pairs);
  return out;
}

void desired(const network_view& view, const std::string& state_dir, desired_plane& out) {
  checked_view cv = check(view);
  out.segments = cv.segments.size();
  out.links = links_of(view, cv);
  taps_of(cv, out.taps);
  out.nft_rules = rules_of(view, cv);
  eips_of(cv, out.eips);
  out.dnsmasq_config = dnsmasq_config_of(view, cv, state_dir);
  out.gateway = view.gateway;
  dnsmasq_hosts_of(cv, out.dnsmasq_hosts, out.dhcp_hosts);
  out.problems = std::move(cv.problems);
}

desired_plane desired(const network_view& view, const std::string& state_dir) {
  desired_plane out;
  desired(view, state_dir, out);
  return out;
}

}  // namespace kumo::net
