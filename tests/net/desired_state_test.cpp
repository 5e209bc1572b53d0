// The desired-state functions of net/: hand-made network_views in, nft
// ruleset / links / dnsmasq text out, compared line by line.
#include "net/desired_state.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

namespace kumo::net {
namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

bool has_line(const std::string& text, const std::string& line) {
  auto ls = lines_of(text);
  return std::find(ls.begin(), ls.end(), line) != ls.end();
}

// The lines of one block `<header> {` ... matching `}` (same indentation).
std::vector<std::string> block(const std::string& text, const std::string& header) {
  auto ls = lines_of(text);
  auto it = std::find(ls.begin(), ls.end(), header + " {");
  if (it == ls.end()) return {};
  std::string indent = header.substr(0, header.find_first_not_of('\t'));
  std::vector<std::string> out;
  for (++it; it != ls.end() && *it != indent + "}"; ++it) out.push_back(*it);
  return out;
}

// Two accounts' groups, a third group of account A, three NICs (two with a
// public IP), rules of every kind.
network_view sample() {
  network_view v;
  v.physical_interface = "eth0";
  v.segments = {
      {100, "111111111111", "sg-a", "10.16.1.0/24"},
      {200, "222222222222", "sg-b", "10.16.2.0/24"},
      {300, "111111111111", "sg-c", "10.16.3.0/24"},
  };
  v.nics = {
      {"i-aaaa", 100, "d0:0d:00:00:00:01", "10.16.1.10", "198.51.100.7", "kt0000000000001"},
      {"i-bbbb", 200, "d0:0d:00:00:00:02", "10.16.2.10", "198.51.100.8", "kt0000000000002"},
      {"i-cccc", 300, "d0:0d:00:00:00:03", "10.16.3.10", "", "kt0000000000003"},
  };
  v.ingress = {
      {100, "tcp", 22, 22, "0.0.0.0/0", 0},
      {100, "tcp", 8000, 8080, "192.0.2.0/24", 0},
      {100, "icmp", 8, -1, "0.0.0.0/0", 0},
      {200, "-1", -1, -1, "10.0.0.0/8", 0},
      {300, "udp", 53, 53, "", 100},  // group-to-group: sg-a may query sg-c
  };
  v.egress = {
      {100, "-1", -1, -1, "0.0.0.0/0", 0},  // EC2's default: anywhere
      {200, "tcp", 443, 443, "0.0.0.0/0", 0},
      {300, "udp", 53, 53, "", 100},        // sg-c may answer... only towards sg-a
  };
  return v;
}

TEST(DesiredState, SubnetHelpers) {
  EXPECT_EQ(gateway_of("10.16.3.0/24").value, "10.16.3.1");
  EXPECT_EQ(host_in("10.16.3.0/24", 10).value, "10.16.3.10");
  for (const char* bad : {"10.16.3.0", "10.16.3.0/16", "10.16.3.5/24", "10.16.300.0/24",
                          "10.16.3.0/", "10.016.3.0/24", "a.b.c.0/24", ""}) {
    auto r = gateway_of(bad);
    EXPECT_FALSE(r) << bad;
    EXPECT_TRUE(r.value.empty()) << bad;
    EXPECT_NE(r.error.find(std::string("'") + bad + "'"), std::string::npos) << r.error;
  }
  EXPECT_FALSE(host_in("10.16.3.0/24", 255));
  EXPECT_FALSE(host_in("10.16.3.0/24", 0));
}

TEST(DesiredState, MapsHoldExactlyTheElasticIps) {
  std::string rs = nft_ruleset(sample());
  EXPECT_EQ(block(rs, "\tmap eip_dnat"),
            (std::vector<std::string>{"\t\ttype ipv4_addr : ipv4_addr", "\t\telements = {",
                                      "\t\t\t198.51.100.7 : 10.16.1.10,",
                                      "\t\t\t198.51.100.8 : 10.16.2.10,", "\t\t}"}));
  EXPECT_EQ(block(rs, "\tmap eip_snat"),
            (std::vector<std::string>{"\t\ttype ipv4_addr : ipv4_addr", "\t\telements = {",
                                      "\t\t\t10.16.1.10 : 198.51.100.7,",
                                      "\t\t\t10.16.2.10 : 198.51.100.8,", "\t\t}"}));
  EXPECT_EQ(rs.find("10.16.3.10 :"), std::string::npos);  // i-cccc has no public IP
  EXPECT_TRUE(has_line(rs, "\t\tdnat to ip daddr map @eip_dnat"));
  EXPECT_TRUE(has_line(rs, "\t\toifname != \"kbr*\" snat to ip saddr map @eip_snat"));

  // No public IP at all: the maps exist, empty, so `add element` works later.
  network_view none = sample();
  for (auto& n : none.nics) n.public_ip.clear();
  std::string empty = nft_ruleset(none);
  EXPECT_EQ(block(empty, "\tmap eip_dnat"),
            (std::vector<std::string>{"\t\ttype ipv4_addr : ipv4_addr"}));
  EXPECT_EQ(block(empty, "\tmap eip_snat"),
            (std::vector<std::string>{"\t\ttype ipv4_addr : ipv4_addr"}));
}

TEST(DesiredState, RemovingOneElasticIpRemovesOneLinePerMap) {
  network_view v = sample();
  std::string before = nft_ruleset(v);
  v.nics[0].public_ip.clear();  // disassociate 198.51.100.7
  std::string after = nft_ruleset(v);

  auto b = lines_of(before), a = lines_of(after);
  std::vector<std::string> removed, added;
  std::sort(b.begin(), b.end());
  std::sort(a.begin(), a.end());
  std::set_difference(b.begin(), b.end(), a.begin(), a.end(), std::back_inserter(removed));
  std::set_difference(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(added));
  EXPECT_EQ(removed, (std::vector<std::string>{"\t\t\t10.16.1.10 : 198.51.100.7,",
                                               "\t\t\t198.51.100.7 : 10.16.1.10,"}));
  EXPECT_TRUE(added.empty());
  EXPECT_EQ(lines_of(before).size(), lines_of(after).size() + 2);
}

TEST(DesiredState, MetadataDnatPerSegment) {
  network_view v = sample();
  std::string rs = nft_ruleset(v);
  auto pre = block(rs, "\tchain prerouting");
  EXPECT_EQ(pre, (std::vector<std::string>{
                     "\t\ttype nat hook prerouting priority dstnat; policy accept;",
                     "\t\tiifname \"kbr100\" ip daddr 169.254.169.254 tcp dport 80 dnat to "
                     "10.16.1.1:8775",
                     "\t\tiifname \"kbr200\" ip daddr 169.254.169.254 tcp dport 80 dnat to "
                     "10.16.2.1:8775",
                     "\t\tiifname \"kbr300\" ip daddr 169.254.169.254 tcp dport 80 dnat to "
                     "10.16.3.1:8775",
                     "\t\tdnat to ip daddr map @eip_dnat"}));

  v.metadata_port = 9999;
  EXPECT_TRUE(has_line(nft_ruleset(v), "\t\tiifname \"kbr200\" ip daddr 169.254.169.254 tcp "
                                       "dport 80 dnat to 10.16.2.1:9999"));
}

TEST(DesiredState, ForwardChainAndPerSegmentRules) {
  std::string rs = nft_ruleset(sample());
  EXPECT_EQ(block(rs, "\tchain forward"),
            (std::vector<std::string>{
                "\t\ttype filter hook forward priority filter; policy accept;",
                "\t\tct state established,related accept",
                "\t\tiifname \"kbr100\" ip saddr != 10.16.1.0/24 drop",
                "\t\tiifname \"kbr200\" ip saddr != 10.16.2.0/24 drop",
                "\t\tiifname \"kbr300\" ip saddr != 10.16.3.0/24 drop",
                "\t\tiifname vmap { \"kbr100\" : jump out_100, \"kbr200\" : jump out_200, "
                "\"kbr300\" : jump out_300 }",
                "\t\toifname vmap { \"kbr100\" : jump seg_100, \"kbr200\" : jump seg_200, "
                "\"kbr300\" : jump seg_300 }"}));
  // Out of a segment: its own segment, then what its egress allows, goes on
  // to the ingress check; the rest is dropped.
  EXPECT_EQ(block(rs, "\tchain out_100"),
            (std::vector<std::string>{"\t\toifname \"kbr100\" return", "\t\tip daddr 0.0.0.0/0 return", "\t\tdrop"}));
  EXPECT_EQ(block(rs, "\tchain out_200"), (std::vector<std::string>{"\t\toifname \"kbr200\" return",
                                                                    "\t\tip daddr 0.0.0.0/0 tcp dport 443 return",
                                                                    "\t\tdrop"}));
  EXPECT_EQ(block(rs, "\tchain out_300"),
            (std::vector<std::string>{"\t\toifname \"kbr300\" return", "\t\toifname \"kbr100\" udp dport 53 return",
                                      "\t\tdrop"}));
  // tcp single port and range, icmp type, each ending in default deny.
  EXPECT_EQ(block(rs, "\tchain seg_100"),
            (std::vector<std::string>{"\t\tiifname \"kbr100\" accept", "\t\tip saddr 0.0.0.0/0 icmp type 8 accept",
                                      "\t\tip saddr 0.0.0.0/0 tcp dport 22 accept",
                                      "\t\tip saddr 192.0.2.0/24 tcp dport 8000-8080 accept",
                                      "\t\tdrop"}));
  // all protocols from a cidr: no protocol match at all.
  EXPECT_EQ(block(rs, "\tchain seg_200"),
            (std::vector<std::string>{"\t\tiifname \"kbr200\" accept", "\t\tip saddr 10.0.0.0/8 accept", "\t\tdrop"}));
  // group-to-group: the peer segment is its bridge.
  EXPECT_EQ(block(rs, "\tchain seg_300"),
            (std::vector<std::string>{"\t\tiifname \"kbr300\" accept", "\t\tiifname \"kbr100\" udp dport 53 accept", "\t\tdrop"}));
}

TEST(DesiredState, GuestsReachOnlyDhcpAndMetadataOnTheHost) {
  EXPECT_EQ(block(nft_ruleset(sample()), "\tchain input"),
            (std::vector<std::string>{
                "\t\ttype filter hook input priority filter; policy accept;",
                "\t\tiifname \"kbr*\" udp dport 67 accept",
                "\t\tiifname \"kbr100\" ip saddr != 10.16.1.0/24 drop",
                "\t\tiifname \"kbr200\" ip saddr != 10.16.2.0/24 drop",
                "\t\tiifname \"kbr300\" ip saddr != 10.16.3.0/24 drop",
                "\t\tiifname \"kbr*\" ct state established,related accept",
                "\t\tiifname \"kbr*\" tcp dport 8775 accept",
                "\t\tiifname \"kbr*\" drop",
                "\t\ttcp dport 8775 drop"}));
  network_view empty;
  EXPECT_EQ(nft_ruleset(empty).find("chain input"), std::string::npos);
}

TEST(DesiredState, RuleVariants) {
  network_view v = sample();
  v.ingress = {
      {100, "tcp", 0, 65535, "0.0.0.0/0", 0},  // every tcp port
      {100, "icmp", -1, -1, "", 200},          // any icmp from sg-b
      {100, "icmp", 3, 4, "0.0.0.0/0", 0},     // type and code
      {100, "6", 443, 443, "0.0.0.0/0", 0},    // protocol number
      {100, "-1", 5, 7, "", 300},              // ports ignored for all
      {100, "tcp", 22, 22, "0.0.0.0/0", 0},
      {100, "tcp", 22, 22, "0.0.0.0/0", 0},    // duplicate: one rule
  };
  EXPECT_TRUE(problems(v).empty());
  EXPECT_EQ(block(nft_ruleset(v), "\tchain seg_100"),
            (std::vector<std::string>{"\t\tiifname \"kbr100\" accept",
                                      "\t\tiifname \"kbr300\" accept",
                                      "\t\tiifname \"kbr200\" ip protocol icmp accept",
                                      "\t\tip saddr 0.0.0.0/0 icmp type 3 icmp code 4 accept",
                                      "\t\tip saddr 0.0.0.0/0 ip protocol tcp accept",
                                      "\t\tip saddr 0.0.0.0/0 tcp dport 22 accept",
                                      "\t\tip saddr 0.0.0.0/0 tcp dport 443 accept", "\t\tdrop"}));
}

TEST(DesiredState, DeterministicWhateverTheInputOrder) {
  network_view v = sample();
  std::string rs = nft_ruleset(v), hosts = dnsmasq_hosts(v), conf = dnsmasq_config(v, "/s");
  auto links = desired_links(v);
  std::mt19937 rng(42);
  for (int i = 0; i < 20; ++i) {
    std::shuffle(v.segments.begin(), v.segments.end(), rng);
    std::shuffle(v.nics.begin(), v.nics.end(), rng);
    std::shuffle(v.ingress.begin(), v.ingress.end(), rng);
    EXPECT_EQ(nft_ruleset(v), rs);
    EXPECT_EQ(dnsmasq_hosts(v), hosts);
    EXPECT_EQ(dnsmasq_config(v, "/s"), conf);
    EXPECT_EQ(desired_links(v), links);
  }
}

TEST(DesiredState, MalformedEntriesAreLeftOutAndReported) {
  network_view v = sample();
  v.segments.push_back({400, "333333333333", "sg-bad", "10.16.0.0/16"});
  v.segments.push_back({100, "333333333333", "sg-dup", "10.16.9.0/24"});
  v.nics.push_back({"i-dddd", 999, "d0:0d:00:00:00:04", "10.16.9.10", "", "kt4"});
  v.nics.push_back({"i-eeee", 100, "d0:0d:00:00:00:05", "10.16.1.11", "", "kt\"; drop"});
  v.nics.push_back({"i-ffff", 100, "d0:0d:00:00:00:06", "10.16.2.11", "", "kt6"});
  v.nics.push_back({"i-gggg", 100, "d0:0d:00:00:00:07", "10.16.1.12", "198.51.100.7", "kt7"});
  v.ingress.push_back({100, "tcp", 80, 70, "0.0.0.0/0", 0});
  v.ingress.push_back({100, "gre", -1, -1, "0.0.0.0/0", 0});
  v.ingress.push_back({100, "tcp", 80, 80, "0.0.0.0/33", 0});
  v.ingress.push_back({100, "tcp", 80, 80, "", 555});
  v.ingress.push_back({100, "tcp", 80, 80, "0.0.0.0/0", 200});

  auto p = problems(v);
  ASSERT_EQ(p.size(), 11u) << ::testing::PrintToString(p);
  EXPECT_EQ(p[0], "segment 100 (sg-dup): id already used by sg-a");
  EXPECT_EQ(p[1], "segment 400 (sg-bad): subnet '10.16.0.0/16' is not a /24");
  EXPECT_EQ(p[2], "nic of i-dddd: unknown segment 999");
  EXPECT_EQ(p[3], "nic of i-eeee: bad tap name 'kt\"; drop'");
  EXPECT_EQ(p[4], "nic of i-ffff: private ip '10.16.2.11' not a host of 10.16.1.0/24");
  EXPECT_EQ(p[5], "nic of i-gggg: public ip 198.51.100.7 already used");
  EXPECT_NE(p[6].find("bad port range 80-70"), std::string::npos) << p[6];
  EXPECT_NE(p[7].find("unknown protocol 'gre'"), std::string::npos) << p[7];
  EXPECT_NE(p[8].find("malformed cidr '0.0.0.0/33'"), std::string::npos) << p[8];
  EXPECT_NE(p[9].find("unknown peer segment 555"), std::string::npos) << p[9];
  EXPECT_NE(p[10].find("needs exactly one of cidr and peer segment"), std::string::npos)
      << p[10];

  // Outputs are those of the well-formed part alone.
  EXPECT_EQ(nft_ruleset(v), nft_ruleset(sample()));
  EXPECT_EQ(dnsmasq_hosts(v), dnsmasq_hosts(sample()));
  EXPECT_EQ(desired_links(v), desired_links(sample()));
  EXPECT_TRUE(problems(sample()).empty());
}

TEST(DesiredState, VxlanLinks) {
  network_view v = sample();
  v.segments.push_back({0x123456, "1", "sg-big", "10.16.4.0/24"});
  auto links = desired_links(v);
  ASSERT_EQ(links.size(), 8u);
  EXPECT_EQ(links[0], (link{link_kind::bridge, "kbr100", "", 100, "10.16.1.1/24", "", "", 0}));
  EXPECT_EQ(links[1],
            (link{link_kind::vxlan, "kvx100", "kbr100", 100, "", "eth0", "239.0.0.100", 4789}));
  EXPECT_EQ(links[6].name, "kbr1193046");
  EXPECT_EQ(links[7], (link{link_kind::vxlan, "kvx1193046", "kbr1193046", 0x123456, "", "eth0",
                            "239.18.52.86", 4789}));
  for (const auto& l : links) EXPECT_LE(l.name.size(), 15u) << l.name;

  // The largest VXLAN id still names interfaces within IFNAMSIZ.
  v.nics.clear();
  v.ingress.clear();
  v.egress.clear();
  v.segments = {{(1u << 24) - 1, "1", "sg-max", "10.16.5.0/24"}};
  for (const auto& l : desired_links(v)) EXPECT_LE(l.name.size(), 15u) << l.name;
  v.segments = {{1u << 24, "1", "sg-over", "10.16.5.0/24"}};
  EXPECT_TRUE(desired_links(v).empty());
  EXPECT_EQ(problems(v).size(), 1u);
}

TEST(DesiredState, VlanLinks) {
  network_view v = sample();
  v.mode = segment_mode::vlan;
  v.segments.push_back({4095, "1", "sg-over", "10.16.4.0/24"});  // 802.1q ids end at 4094
  auto links = desired_links(v);
  ASSERT_EQ(links.size(), 6u);
  EXPECT_EQ(links[2], (link{link_kind::bridge, "kbr200", "", 200, "10.16.2.1/24", "", "", 0}));
  EXPECT_EQ(links[3], (link{link_kind::vlan, "kvl200", "kbr200", 200, "", "eth0", "", 0}));
  EXPECT_EQ(problems(v), (std::vector<std::string>{"segment 4095 (sg-over): id out of range 1..4094"}));
}

TEST(DesiredState, NoUnderlayMeansBridgesOnly) {
  network_view v = sample();
  v.physical_interface.clear();
  auto links = desired_links(v);
  ASSERT_EQ(links.size(), 3u);
  for (const auto& l : links) {
    EXPECT_EQ(l.kind, link_kind::bridge);
    EXPECT_TRUE(l.master.empty());
  }
  EXPECT_EQ(links[2].address, "10.16.3.1/24");
}

TEST(DesiredState, Dnsmasq) {
  network_view v = sample();
  EXPECT_EQ(dnsmasq_hosts(v),
            "d0:0d:00:00:00:01,10.16.1.10,ip-10-16-1-10\n"
            "d0:0d:00:00:00:02,10.16.2.10,ip-10-16-2-10\n"
            "d0:0d:00:00:00:03,10.16.3.10,ip-10-16-3-10\n");
  std::string conf = dnsmasq_config(v, "/var/lib/kumo/net");
  for (const char* line :
       {"port=0", "bind-dynamic", "dhcp-hostsfile=/var/lib/kumo/net/hosts",
        "dhcp-leasefile=/var/lib/kumo/net/leases", "interface=kbr300",
        "dhcp-range=set:kbr300,10.16.3.10,static,255.255.255.0,12h",
        "dhcp-option=tag:kbr300,option:router,10.16.3.1"})
    EXPECT_TRUE(has_line(conf, line)) << line << "\n" << conf;
  auto ls = lines_of(conf);
  EXPECT_EQ(std::count_if(ls.begin(), ls.end(),
                          [](const std::string& l) { return l.rfind("interface=", 0) == 0; }),
            3);
  network_view empty;
  EXPECT_EQ(dnsmasq_hosts(empty), "");
}

// desired() is every output above from one validation; refilling a plane
// that held a bigger view leaves nothing of it behind.
TEST(DesiredState, DesiredPlaneIsEveryOutputOfTheView) {
  network_view v = sample();
  v.nics.push_back({"i-gggg", 100, "d0:0d:00:00:00:07", "10.16.1.12", "198.51.100.7", "kt7"});  // left out
  v.segments.push_back({400, "333333333333", "sg-bad", "10.16.0.0/16"});                      // left out
  auto check = [](const desired_plane& d, const network_view& v) {
    EXPECT_EQ(d.problems, problems(v));
    EXPECT_EQ(d.links, desired_links(v));
    EXPECT_EQ(d.eips, eip_maps(v));
    EXPECT_EQ(nft_ruleset(d), nft_ruleset(v));
    EXPECT_EQ(d.dnsmasq_config, dnsmasq_config(v, "/s"));
    EXPECT_EQ(d.dnsmasq_hosts, dnsmasq_hosts(v));
  };
  desired_plane d = desired(v, "/s");
  check(d, v);
  EXPECT_EQ(d.segments, 3u);
  EXPECT_EQ(d.problems.size(), 2u);
  EXPECT_EQ(d.taps, (std::vector<tap_port>{{"kt0000000000001", "i-aaaa", 100},
                                           {"kt0000000000002", "i-bbbb", 200},
                                           {"kt0000000000003", "i-cccc", 300}}));
  // The rules part is the table without its maps, and names no NIC.
  EXPECT_EQ(d.nft_rules.find("10.16.1.10"), std::string::npos);
  EXPECT_EQ(d.nft_rules.rfind("\tchain prerouting {\n", 0), 0u) << d.nft_rules;
  network_view no_eip = v;
  for (auto& n : no_eip.nics) n.public_ip.clear();
  EXPECT_EQ(desired(no_eip, "/s").nft_rules, d.nft_rules);

  network_view smaller = sample();
  smaller.nics.erase(smaller.nics.begin());
  smaller.segments.pop_back();
  smaller.nics.pop_back();  // i-cccc was on segment 300
  desired(smaller, "/s", d);
  check(d, smaller);
  EXPECT_EQ(d.segments, 2u);
  EXPECT_EQ(d.taps, (std::vector<tap_port>{{"kt0000000000002", "i-bbbb", 200}}));
  EXPECT_EQ(d.eips.dnat, (std::vector<std::pair<std::string, std::string>>{{"198.51.100.8", "10.16.2.10"}}));
  desired(network_view{}, "/s", d);
  check(d, network_view{});
  EXPECT_TRUE(d.taps.empty());
  EXPECT_TRUE(d.eips.dnat.empty() && d.eips.snat.empty());
  EXPECT_EQ(d.dnsmasq_hosts, "");
}

// Addresses as dotted quads are strict: what nft and dnsmasq are given is
// canonical, and order is by address, not text.
TEST(DesiredState, AddressesAreStrictAndMapsSortedByAddress) {
  network_view v = sample();
  for (const char* bad : {"198.51.100.07", "198.51.100", "198.51.100.7.", "198.51.100.256", "198.51.100.1234",
                          "198.51.100.-1", "198.51..7", " 198.51.100.7", "198.51.100.7 "}) {
    v.nics[0].public_ip = bad;
    auto p = problems(v);
    ASSERT_EQ(p.size(), 1u) << bad;
    EXPECT_EQ(p[0], std::string("nic of i-aaaa: malformed public ip '") + bad + "'");
  }
  v.nics[0].public_ip = "198.51.100.10";  // after .8 as an address, before it as text
  v.nics[2].public_ip = "0.0.0.0";
  EXPECT_TRUE(problems(v).empty());
  EXPECT_EQ(eip_maps(v).dnat, (std::vector<std::pair<std::string, std::string>>{{"0.0.0.0", "10.16.3.10"},
                                                                                {"198.51.100.8", "10.16.2.10"},
                                                                                {"198.51.100.10", "10.16.1.10"}}));
}

// Of two NICs wanting one address the first (by instance id) keeps it, and
// only the second is left out, wherever they are.
TEST(DesiredState, DuplicateAddressesLeaveOutTheLaterNic) {
  network_view v = sample();
  v.segments.push_back({400, "333333333333", "sg-twin", "10.16.1.0/24"});  // same subnet as segment 100
  v.nics.push_back({"i-dddd", 400, "d0:0d:00:00:00:04", "10.16.1.10", "", "kt4"});  // i-aaaa's private ip
  v.nics.push_back({"i-eeee", 300, "d0:0d:00:00:00:05", "10.16.3.11", "198.51.100.8", "kt5"});  // i-bbbb's public
  v.nics.push_back({"i-ffff", 300, "d0:0d:00:00:00:06", "10.16.3.12", "198.51.100.8", "kt6"});  // and again
  EXPECT_EQ(problems(v), (std::vector<std::string>{"nic of i-dddd: private ip 10.16.1.10 already used",
                                                   "nic of i-eeee: public ip 198.51.100.8 already used",
                                                   "nic of i-ffff: public ip 198.51.100.8 already used"}));
  EXPECT_EQ(eip_maps(v), eip_maps(sample()));
  // A NIC left out for its public IP frees its private one for a later NIC.
  v.nics.push_back({"i-gggg", 300, "d0:0d:00:00:00:07", "10.16.3.11", "", "kt7"});
  EXPECT_EQ(problems(v).size(), 3u) << ::testing::PrintToString(problems(v));
  EXPECT_NE(dnsmasq_hosts(v).find("d0:0d:00:00:00:07,10.16.3.11,"), std::string::npos);
}

// nft itself parses the generated table (-c: check only, the kernel is not
// changed). nft needs CAP_NET_ADMIN even to check.
TEST(DesiredState, NftAcceptsTheRuleset) {
  if (std::system("command -v nft >/dev/null 2>&1") != 0) GTEST_SKIP() << "nft not installed";
  if (geteuid() != 0) GTEST_SKIP() << "nft -c needs root";
  auto dir = std::filesystem::temp_directory_path() /
             ("kumo-net-test-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  network_view no_eip = sample();
  for (auto& n : no_eip.nics) n.public_ip.clear();
  network_view variants = sample();
  variants.ingress.push_back({100, "tcp", 0, 65535, "0.0.0.0/0", 0});
  variants.ingress.push_back({100, "icmp", -1, -1, "", 200});
  variants.ingress.push_back({100, "icmp", 3, 4, "0.0.0.0/0", 0});
  int i = 0;
  for (const auto& v : {sample(), no_eip, variants, network_view{}}) {
    auto file = dir / ("ruleset" + std::to_string(i++) + ".nft");
    std::ofstream(file) << nft_ruleset(v);
    std::string cmd = "nft -c -f " + file.string() + " 2>&1";
    EXPECT_EQ(std::system(cmd.c_str()), 0) << nft_ruleset(v);
  }
  std::filesystem::remove_all(dir);
}

// A node host carries its guests' L2 only; the gateway host tells guests the
// MTU the VXLAN leaves them.
TEST(DesiredState, NodeHostBridgesHaveNoAddressAndDhcpAnnouncesTheMtu) {
  auto v = sample();
  v.physical_interface = "eth1";
  v.guest_mtu = 1450;
  auto gateway = desired(v, "/var/lib/kumo/net");
  EXPECT_TRUE(gateway.gateway);
  EXPECT_NE(gateway.dnsmasq_config.find(",option:mtu,1450\n"), std::string::npos) << gateway.dnsmasq_config;
  for (const auto& l : gateway.links)
    if (l.kind == link_kind::bridge) EXPECT_FALSE(l.address.empty()) << l.name;
  v.gateway = false;
  auto node = desired(v, "/var/lib/kumo/net");
  EXPECT_FALSE(node.gateway);
  ASSERT_EQ(node.links.size(), gateway.links.size());
  for (size_t i = 0; i < node.links.size(); ++i) {
    EXPECT_TRUE(node.links[i].address.empty()) << node.links[i].name;
    EXPECT_EQ(node.links[i].name, gateway.links[i].name);
  }
  v.guest_mtu = 0;
  EXPECT_EQ(desired(v, "/var/lib/kumo/net").dnsmasq_config.find("option:mtu"), std::string::npos);
}

}  // namespace
}  // namespace kumo::net

