// The Network aggregate (the region's address ledger) and the host view built
// from it: pure decide/apply/codec, no kernel.
#include "actors/network/host_view.h"
#include "actors/network/network.h"
#include "net/desired_state.h"
#include "tests/support/aggregate_checks.h"

#include <gtest/gtest.h>

#include <set>

using namespace kumo;
using namespace kumo::actors;
using namespace kumo::actors::network;
using kumo::checks::expect_codec_round_trip;
using kumo::checks::fold;

namespace {

const std::string acct_a = "111111111111", acct_b = "222222222222";

pools small_pools() {
  pools p;
  p.vni_first = 100;
  p.vni_last = 101;  // two segments only
  p.private_cidr = "10.16.0.0/16";
  p.public_first = "198.51.100.10";
  p.public_last = "198.51.100.12";  // three public addresses
  return p;
}

struct ledger {
  state s;
  std::vector<event> all;  // every event so far, for the codec check

  std::optional<api_error> run(const command& c) {
    auto d = aggregate::decide("kumo-1", s, c);
    if (d.error) {
      EXPECT_TRUE(d.events.empty());
      return d.error;
    }
    s = fold<aggregate>(d.events, s);
    all.insert(all.end(), d.events.begin(), d.events.end());
    return std::nullopt;
  }
  void ok(const command& c) {
    auto e = run(c);
    ASSERT_FALSE(e) << e->code << ": " << e->message;
  }
  std::string refused(const command& c) {
    auto before = s;
    auto e = run(c);
    EXPECT_EQ(s, before) << "a refused command changed the ledger";
    return e ? e->code : "";
  }
  void launch(const std::string& iid, const std::string& acct, const std::string& group, bool auto_public = false) {
    ok(allocate_nics{{{iid, acct, group}}, small_pools(), auto_public, 1000});
  }
};

}  // namespace

TEST(Network, NicsGetDistinctAddressesMacsAndTapsOnTheirGroupsSegment) {
  ledger l;
  l.launch("i-1", acct_a, "sg-a");
  l.launch("i-2", acct_a, "sg-a");
  l.launch("i-3", acct_b, "sg-b");
  ASSERT_EQ(l.s.segments.size(), 2u);
  const auto& n1 = l.s.nics.at("i-1");
  const auto& n2 = l.s.nics.at("i-2");
  const auto& n3 = l.s.nics.at("i-3");
  EXPECT_EQ(n1.vni, n2.vni);
  EXPECT_NE(n1.vni, n3.vni);
  EXPECT_EQ(l.s.segments.at(n1.vni).subnet, "10.16.0.0/24");
  EXPECT_EQ(l.s.segments.at(n3.vni).subnet, "10.16.1.0/24");
  EXPECT_EQ(n1.private_ip, "10.16.0.10");
  EXPECT_EQ(n2.private_ip, "10.16.0.11");
  EXPECT_EQ(n3.private_ip, "10.16.1.10");
  EXPECT_EQ(std::set<std::string>({n1.mac, n2.mac, n3.mac}).size(), 3u);
  EXPECT_EQ(std::set<std::string>({n1.tap, n2.tap, n3.tap}).size(), 3u);
  EXPECT_EQ(n1.mac.rfind("d0:0d:", 0), 0u);
  EXPECT_EQ(n1.tap.size(), 15u);  // IFNAMSIZ - 1
  // A retry gives nothing new.
  auto before = l.s;
  l.launch("i-1", acct_a, "sg-a");
  EXPECT_EQ(l.s, before);
}

TEST(Network, SegmentsRunOutWithAClearErrorAndAreFreedByTheirLastNic) {
  ledger l;
  l.launch("i-1", acct_a, "sg-a");
  l.launch("i-2", acct_a, "sg-b");
  EXPECT_EQ(l.refused(allocate_nics{{{"i-3", acct_b, "sg-c"}}, small_pools(), false, 1}),
            "InsufficientAddressCapacity");
  // All or nothing: a request with one instance that does not fit adds none.
  EXPECT_EQ(l.refused(allocate_nics{{{"i-4", acct_a, "sg-a"}, {"i-5", acct_b, "sg-c"}}, small_pools(), false, 1}),
            "InsufficientAddressCapacity");
  l.ok(release_nic{"i-2"});
  EXPECT_EQ(l.s.segments.size(), 1u);
  l.launch("i-3", acct_b, "sg-c");
  EXPECT_EQ(l.s.nics.at("i-3").private_ip, "10.16.1.10");
}

TEST(Network, ReleasedAddressesAreReusedButTapsAndMacsNever) {
  ledger l;
  l.launch("i-1", acct_a, "sg-a");
  l.launch("i-2", acct_a, "sg-a");
  auto old = l.s.nics.at("i-1");
  l.ok(release_nic{"i-1"});
  l.launch("i-3", acct_a, "sg-a");
  const auto& n3 = l.s.nics.at("i-3");
  EXPECT_EQ(n3.private_ip, old.private_ip);  // no two live instances share one, reuse after is fine
  EXPECT_NE(n3.mac, old.mac);
  EXPECT_NE(n3.tap, old.tap);
}

TEST(Network, ElasticIpLifecycleAndErrors) {
  ledger l;
  l.launch("i-1", acct_a, "sg-a", /*auto_public=*/true);
  l.launch("i-2", acct_a, "sg-a");
  l.launch("i-9", acct_b, "sg-b");
  EXPECT_EQ(l.s.nics.at("i-1").auto_public_ip, "198.51.100.10");
  l.ok(allocate_address{acct_a, "eipalloc-1", small_pools()});
  EXPECT_EQ(l.s.addresses.at("eipalloc-1").public_ip, "198.51.100.11");
  l.ok(allocate_address{acct_a, "eipalloc-2", small_pools()});
  EXPECT_EQ(l.refused(allocate_address{acct_b, "eipalloc-3", small_pools()}), "AddressLimitExceeded");

  // Another account's allocation or instance does not exist for this one.
  EXPECT_EQ(l.refused(associate_address{acct_b, "eipalloc-1", "i-9", "eipassoc-x"}), "InvalidAllocationID.NotFound");
  EXPECT_EQ(l.refused(associate_address{acct_a, "eipalloc-1", "i-9", "eipassoc-x"}), "InvalidInstanceID.NotFound");

  l.ok(associate_address{acct_a, "eipalloc-1", "i-1", "eipassoc-1"});
  EXPECT_EQ(public_ip_of(l.s, "i-1"), "198.51.100.11");  // the elastic IP wins over the auto one
  EXPECT_EQ(l.refused(associate_address{acct_a, "eipalloc-1", "i-2", "eipassoc-2", false}),
            "Resource.AlreadyAssociated");
  EXPECT_EQ(l.refused(release_address{acct_a, "eipalloc-1"}), "InvalidIPAddress.InUse");

  // Re-association moves the address in one decision.
  l.ok(associate_address{acct_a, "eipalloc-1", "i-2", "eipassoc-2", true});
  EXPECT_EQ(public_ip_of(l.s, "i-2"), "198.51.100.11");
  EXPECT_EQ(public_ip_of(l.s, "i-1"), "198.51.100.10");
  // A second elastic IP on i-2 replaces the first.
  l.ok(associate_address{acct_a, "eipalloc-2", "i-2", "eipassoc-3"});
  EXPECT_EQ(public_ip_of(l.s, "i-2"), "198.51.100.12");
  EXPECT_TRUE(l.s.addresses.at("eipalloc-1").instance_id.empty());

  EXPECT_EQ(l.refused(disassociate_address{acct_b, "eipassoc-3"}), "InvalidAssociationID.NotFound");
  l.ok(disassociate_address{acct_a, "eipassoc-3"});
  EXPECT_EQ(public_ip_of(l.s, "i-2"), "");
  EXPECT_EQ(l.refused(disassociate_address{acct_a, "eipassoc-3"}), "InvalidAssociationID.NotFound");
  l.ok(release_address{acct_a, "eipalloc-2"});
  EXPECT_FALSE(l.s.addresses.count("eipalloc-2"));
  EXPECT_EQ(l.refused(release_address{acct_a, "eipalloc-2"}), "InvalidAllocationID.NotFound");

  // Terminating an instance lets its elastic IP go (it stays allocated).
  l.ok(associate_address{acct_a, "eipalloc-1", "i-2", "eipassoc-4"});
  l.ok(release_nic{"i-2"});
  EXPECT_TRUE(l.s.addresses.at("eipalloc-1").instance_id.empty());
  expect_codec_round_trip<aggregate>(l.all);
}

TEST(Network, OneAccountCannotTakeTheWholePool) {
  ledger l;
  auto big = small_pools();
  big.public_last = "198.51.100.60";
  for (size_t i = 0; i < max_addresses_per_account; ++i)
    l.ok(allocate_address{acct_a, "eipalloc-a" + std::to_string(i), big});
  EXPECT_EQ(l.refused(allocate_address{acct_a, "eipalloc-a9", big}), "AddressLimitExceeded");
  l.ok(allocate_address{acct_b, "eipalloc-b0", big});  // another account still gets one
  l.ok(release_address{acct_a, "eipalloc-a0"});
  l.ok(allocate_address{acct_a, "eipalloc-a9", big});
}

TEST(Network, MetadataOptionsAreCheckedAndScoped) {
  ledger l;
  l.launch("i-1", acct_a, "sg-a");
  EXPECT_EQ(l.refused(set_metadata_options{acct_b, "i-1", {true, 2, true}}), "InvalidInstanceID.NotFound");
  EXPECT_EQ(l.refused(set_metadata_options{acct_a, "i-1", {true, 65, true}}), "InvalidParameterValue");
  l.ok(set_metadata_options{acct_a, "i-1", {true, 3, true}});
  EXPECT_TRUE(l.s.nics.at("i-1").metadata.tokens_required);
  EXPECT_EQ(l.s.nics.at("i-1").metadata.hop_limit, 3);
  l.ok(record_repair{"node-1", "created bridge kbr100", 5});
  expect_codec_round_trip<aggregate>(l.all);
}

TEST(Network, BadPrivateRangeIsRefused) {
  ledger l;
  auto p = small_pools();
  p.private_cidr = "10.16.0.0/30";
  EXPECT_EQ(l.refused(allocate_nics{{{"i-1", acct_a, "sg-a"}}, p, false, 1}), "InternalError");
}

TEST(Network, HostViewCompilesGroupsRulesOntoSegments) {
  ledger l;
  l.launch("i-1", acct_a, "sg-a", true);
  l.launch("i-2", acct_a, "sg-web");
  security_group::state web;
  web.exists = true;
  web.account_id = acct_a;
  web.group_id = "sg-web";
  web.ingress = {{"tcp", 80, 80, "0.0.0.0/0", "", ""},
                 {"-1", -1, -1, "", "sg-a", ""},        // from a group with a segment
                 {"tcp", 22, 22, "", "sg-empty", ""}};  // from a group with no instances
  security_group::state foreign = web;  // same id in another account must not leak in
  foreign.account_id = acct_b;
  groups_by_id groups{{"sg-web", &web}};
  auto v = host_view(l.s, groups, {net::segment_mode::vxlan, "eth9", 8775});
  ASSERT_EQ(v.segments.size(), 2u);
  ASSERT_EQ(v.nics.size(), 2u);
  EXPECT_EQ(v.nics[0].public_ip, "198.51.100.10");
  EXPECT_EQ(v.nics[1].public_ip, "");
  const auto web_vni = l.s.nics.at("i-2").vni, a_vni = l.s.nics.at("i-1").vni;
  ASSERT_EQ(v.ingress.size(), 2u);
  EXPECT_EQ(v.ingress[0].vni, web_vni);
  EXPECT_EQ(v.ingress[0].cidr, "0.0.0.0/0");
  EXPECT_EQ(v.ingress[1].peer_vni, a_vni);
  EXPECT_TRUE(net::problems(v).empty());
  EXPECT_NE(net::nft_ruleset(v).find("198.51.100.10 : 10.16.0.10"), std::string::npos) << net::nft_ruleset(v);

  groups_by_id wrong_account{{"sg-web", &foreign}};
  EXPECT_TRUE(host_view(l.s, wrong_account, {}).ingress.empty());
}

TEST(Network, MetadataTableHasEachLiveInstanceByPrivateIp) {
  ledger l;
  l.launch("i-1", acct_a, "sg-a", true);
  l.launch("i-2", acct_a, "sg-a");
  l.ok(set_metadata_options{acct_a, "i-2", {true, 2, true}});
  instance::state one, two;
  one.exists = two.exists = true;
  one.spec.instance_id = "i-1";
  one.spec.account_id = acct_a;
  one.spec.image_id = "emi-1";
  one.spec.size.instance_type = "t3.micro";
  one.spec.zone = "kumo-1a";
  one.spec.user_data = "IyEvYmluL3NoCmVjaG8gaGk=";  // "#!/bin/sh\necho hi"
  one.spec.security_group_names = {"a"};
  two = one;
  two.spec.instance_id = "i-2";
  two.status = instance::lifecycle::terminated;
  auto table = metadata_of(
      l.s, [&](const nic& n) { return n.instance_id == "i-1" ? &one : n.instance_id == "i-2" ? &two : nullptr; }, "kumo-1");
  ASSERT_EQ(table.size(), 1u);  // a terminated instance answers nothing
  const auto& m = table.at("10.16.0.10");
  EXPECT_EQ(m.instance_id, "i-1");
  EXPECT_EQ(m.public_ip, "198.51.100.10");
  EXPECT_EQ(m.user_data, "#!/bin/sh\necho hi");
  EXPECT_EQ(m.hostname, "ip-10-16-0-10.kumo-1.compute.internal");
  EXPECT_EQ(m.mac, l.s.nics.at("i-1").mac);
}
