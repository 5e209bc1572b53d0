// The Network aggregate (the region's ledger: segment leases, public IPs),
// the Segment aggregates (private addresses, MACs, taps, metadata options)
// and the views built from them: pure decide/apply/codec, no kernel, no actors.
#include "actors/network/host_view.h"
#include "actors/network/network.h"
#include "actors/network/releases.h"
#include "actors/network/segment.h"
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

// Runs commands against one aggregate, as its actor would: decide, then fold.
template <class A>
struct stream {
  std::string id;
  typename A::state s;
  std::vector<typename A::event> all;  // every event so far, for the codec check

  std::optional<api_error> run(const typename A::command& c) {
    auto d = A::decide(id, s, c);
    if (d.error) {
      EXPECT_TRUE(d.events.empty());
      return d.error;
    }
    s = fold<A>(d.events, s);
    all.insert(all.end(), d.events.begin(), d.events.end());
    return std::nullopt;
  }
  void ok(const typename A::command& c) {
    auto e = run(c);
    ASSERT_FALSE(e) << e->code << ": " << e->message;
  }
  std::string refused(const typename A::command& c) {
    auto before = s;
    auto e = run(c);
    EXPECT_EQ(s, before) << "a refused command changed " << id;
    return e ? e->code : "";
  }
};

// The region: its ledger and its segments, driven the way RunInstances and
// the network controller drive them.
struct region {
  stream<aggregate> ledger{"kumo-1"};
  std::map<std::string, stream<segment::aggregate>> segments;
  pools from = small_pools();

  stream<segment::aggregate>& seg(const std::string& acct, const std::string& group) {
    auto id = segment::aggregate_id(acct, group);
    auto [it, _] = segments.try_emplace(id, stream<segment::aggregate>{id});
    return it->second;
  }
  // RunInstances: the ledger's side, then the segment's (with a new lease
  // when the segment gave the one it was offered back). "" when launched.
  std::string launch(const std::vector<std::string>& ids, const std::string& acct, const std::string& group,
                     bool auto_public = false) {
    uint64_t stale = 0;
    for (int attempt = 0; attempt < 2; ++attempt) {
      if (auto e = ledger.run(prepare_launch{acct, group, ids, from, auto_public, 1000, stale})) return e->code;
      const auto* l = lease_of(ledger.s, acct, group);
      auto e = seg(acct, group).run(segment::allocate_nics{acct, group, {l->number, l->vni, l->subnet}, ids, 1000});
      if (!e) return "";
      if (e->code != segment::segment_retired_code) {
        ledger.ok(release_instances{ids, 1000});  // a refused launch holds no public IP
        return e->code;
      }
      stale = l->number;
    }
    return "retried twice";
  }
  void launch_ok(const std::string& iid, const std::string& acct, const std::string& group, bool auto_public = false) {
    EXPECT_EQ(launch({iid}, acct, group, auto_public), "");
  }
  // The controller, for a terminated instance and then an empty segment.
  void terminate(const std::string& iid, const std::string& acct, const std::string& group) {
    auto& s = seg(acct, group);
    s.ok(segment::release_nic{iid});
    ledger.ok(release_instances{{iid}});
    if (s.s.active() && s.s.nics.empty()) {
      const auto number = s.s.current.number;
      s.ok(segment::retire{number});
      ledger.ok(release_lease{acct, group, number});
    }
  }
  const segment::nic& nic(const std::string& iid, const std::string& acct, const std::string& group) {
    return seg(acct, group).s.nics.at(iid);
  }
  segments_by_id all_segments() {
    segments_by_id out;
    for (auto& [id, s] : segments) out[id] = &s.s;
    return out;
  }
};

}  // namespace

TEST(Network, NicsGetDistinctAddressesMacsAndTapsOnTheirGroupsSegment) {
  region r;
  r.launch_ok("i-1", acct_a, "sg-a");
  r.launch_ok("i-2", acct_a, "sg-a");
  r.launch_ok("i-3", acct_b, "sg-b");
  ASSERT_EQ(r.ledger.s.leases.size(), 2u);
  const auto& a = r.seg(acct_a, "sg-a").s;
  const auto& b = r.seg(acct_b, "sg-b").s;
  EXPECT_NE(a.current.vni, b.current.vni);
  EXPECT_NE(a.current.number, b.current.number);
  EXPECT_EQ(a.current.subnet, "10.16.0.0/24");
  EXPECT_EQ(b.current.subnet, "10.16.1.0/24");
  const auto &n1 = r.nic("i-1", acct_a, "sg-a"), &n2 = r.nic("i-2", acct_a, "sg-a"), &n3 = r.nic("i-3", acct_b, "sg-b");
  EXPECT_EQ(n1.private_ip, "10.16.0.10");
  EXPECT_EQ(n2.private_ip, "10.16.0.11");
  EXPECT_EQ(n3.private_ip, "10.16.1.10");
  EXPECT_EQ(std::set<std::string>({n1.mac, n2.mac, n3.mac}).size(), 3u);
  EXPECT_EQ(std::set<std::string>({n1.tap, n2.tap, n3.tap}).size(), 3u);
  EXPECT_EQ(n1.mac.rfind("02:", 0), 0u);  // locally administered
  EXPECT_EQ(n1.tap.size(), 12u);          // fits IFNAMSIZ - 1
  EXPECT_EQ(r.ledger.s.instances.at("i-3").account_id, acct_b);
  // A retry gives nothing new, in either aggregate.
  auto ledger_before = r.ledger.s;
  auto seg_before = a;
  r.launch_ok("i-1", acct_a, "sg-a");
  EXPECT_EQ(r.ledger.s, ledger_before);
  EXPECT_EQ(r.seg(acct_a, "sg-a").s, seg_before);
  expect_codec_round_trip<segment::aggregate>(r.seg(acct_a, "sg-a").all);
}

TEST(Network, SegmentIdsRunOutWithAClearErrorAndComeBackWhenTheSegmentRetires) {
  region r;
  r.launch_ok("i-1", acct_a, "sg-a");
  r.launch_ok("i-2", acct_a, "sg-b");
  EXPECT_EQ(r.ledger.refused(prepare_launch{acct_b, "sg-c", {"i-3"}, r.from, false, 1}), "InsufficientAddressCapacity");
  // A segment with a NIC keeps its lease.
  const auto number = r.seg(acct_a, "sg-b").s.current.number;
  EXPECT_EQ(r.seg(acct_a, "sg-b").refused(segment::retire{number}), "DependencyViolation");
  r.terminate("i-2", acct_a, "sg-b");
  EXPECT_FALSE(r.seg(acct_a, "sg-b").s.active());
  EXPECT_EQ(r.ledger.s.leases.size(), 1u);
  r.launch_ok("i-3", acct_b, "sg-c");
  EXPECT_EQ(r.nic("i-3", acct_b, "sg-c").private_ip, "10.16.1.10");
  // All or nothing: more instances than a /24 holds get none.
  std::vector<std::string> many;
  for (int i = 0; i < 246; ++i) many.push_back("i-m" + std::to_string(i));
  auto seg_before = r.seg(acct_a, "sg-a").s;
  auto attached_before = r.ledger.s.instances;
  EXPECT_EQ(r.launch(many, acct_a, "sg-a", /*auto_public=*/true), "InsufficientAddressCapacity");
  EXPECT_EQ(r.seg(acct_a, "sg-a").s, seg_before);
  EXPECT_EQ(r.ledger.s.instances, attached_before);  // and no public IP stays taken
}

// The race the lease numbers exist for: the controller retires an empty
// segment while RunInstances holds its old lease. The segment refuses the
// retired lease, RunInstances asks for a new one, and the old number can
// never come back to life after the ledger freed it.
TEST(Network, ARetiredSegmentNeverTakesItsOldLeaseBack) {
  region r;
  r.launch_ok("i-1", acct_a, "sg-a");
  auto& seg = r.seg(acct_a, "sg-a");
  const auto old = seg.s.current;
  seg.ok(segment::release_nic{"i-1"});
  seg.ok(segment::retire{old.number});  // the ledger has not freed it yet
  const auto* l = lease_of(r.ledger.s, acct_a, "sg-a");
  ASSERT_EQ(l->number, old.number);
  EXPECT_EQ(seg.refused(segment::allocate_nics{acct_a, "sg-a", {l->number, l->vni, l->subnet}, {"i-2"}, 1}),
            segment::segment_retired_code);
  EXPECT_EQ(r.launch({"i-2"}, acct_a, "sg-a"), "");  // lets the old lease go and gets a new one
  EXPECT_GT(seg.s.current.number, old.number);
  EXPECT_TRUE(seg.s.active());
  EXPECT_EQ(lease_of(r.ledger.s, acct_a, "sg-a")->number, seg.s.current.number);
  // The controller's late release of the old lease changes nothing.
  auto ledger_before = r.ledger.s;
  r.ledger.ok(release_lease{acct_a, "sg-a", old.number});
  EXPECT_EQ(r.ledger.s, ledger_before);
  seg.ok(segment::retire{old.number});
  EXPECT_TRUE(seg.s.active());
  // An active segment never gives back a lease it does not run on.
  EXPECT_EQ(seg.refused(segment::retire{seg.s.current.number + 1}), "InternalError");
  // A lease that never reached its segment (a crash in RunInstances) is
  // retired there first, so the segment can never take it up later.
  r.ledger.ok(prepare_launch{acct_b, "sg-z", {"i-z"}, r.from, false, 1});
  const auto orphan = *lease_of(r.ledger.s, acct_b, "sg-z");
  auto& z = r.seg(acct_b, "sg-z");
  z.ok(segment::retire{orphan.number});
  r.ledger.ok(release_lease{acct_b, "sg-z", orphan.number});
  EXPECT_EQ(z.refused(segment::allocate_nics{acct_b, "sg-z", {orphan.number, orphan.vni, orphan.subnet}, {"i-z"}, 1}),
            segment::segment_retired_code);
  expect_codec_round_trip<segment::aggregate>(seg.all);
  expect_codec_round_trip<aggregate>(r.ledger.all);
}

TEST(Network, ReleasedAddressesAreReusedButTapsAndMacsNever) {
  region r;
  r.launch_ok("i-1", acct_a, "sg-a");
  r.launch_ok("i-2", acct_a, "sg-a");
  auto old = r.nic("i-1", acct_a, "sg-a");
  r.terminate("i-1", acct_a, "sg-a");
  r.launch_ok("i-3", acct_a, "sg-a");
  const auto& n3 = r.nic("i-3", acct_a, "sg-a");
  EXPECT_EQ(n3.private_ip, old.private_ip);  // no two live instances share one, reuse after is fine
  EXPECT_NE(n3.mac, old.mac);
  EXPECT_NE(n3.tap, old.tap);
  // Nor after the segment retired and got a new lease.
  r.terminate("i-2", acct_a, "sg-a");
  r.terminate("i-3", acct_a, "sg-a");
  r.launch_ok("i-4", acct_a, "sg-a");
  const auto& n4 = r.nic("i-4", acct_a, "sg-a");
  EXPECT_EQ(n4.private_ip, "10.16.0.10");
  EXPECT_NE(n4.mac, old.mac);
  EXPECT_NE(n4.mac, n3.mac);
}

TEST(Network, ElasticIpLifecycleAndErrors) {
  region r;
  r.launch_ok("i-1", acct_a, "sg-a", /*auto_public=*/true);
  r.launch_ok("i-2", acct_a, "sg-a");
  r.launch_ok("i-9", acct_b, "sg-b");
  auto& l = r.ledger;
  EXPECT_EQ(l.s.instances.at("i-1").auto_public_ip, "198.51.100.10");
  l.ok(allocate_address{acct_a, "eipalloc-1", small_pools()});
  EXPECT_EQ(l.s.addresses.at("eipalloc-1").public_ip, "198.51.100.11");
  l.ok(allocate_address{acct_a, "eipalloc-2", small_pools()});
  EXPECT_EQ(l.refused(allocate_address{acct_b, "eipalloc-3", small_pools()}), "AddressLimitExceeded");

  // Another account's allocation or instance does not exist for this one.
  EXPECT_EQ(l.refused(associate_address{acct_b, "eipalloc-1", "i-9", "eipassoc-x"}), "InvalidAllocationID.NotFound");
  EXPECT_EQ(l.refused(associate_address{acct_a, "eipalloc-1", "i-9", "eipassoc-x"}), "InvalidInstanceID.NotFound");

  l.ok(associate_address{acct_a, "eipalloc-1", "i-1", "eipassoc-1"});
  EXPECT_EQ(public_ip_of(l.s, acct_a, "i-1"), "198.51.100.11");
  EXPECT_EQ(l.s.instances.at("i-1").auto_public_ip, "");  // given back: no auto one while it has an elastic one
  EXPECT_EQ(public_ip_of(l.s, acct_b, "i-1"), "");               // and only for its own account
  EXPECT_EQ(l.refused(associate_address{acct_a, "eipalloc-1", "i-2", "eipassoc-2", false}),
            "Resource.AlreadyAssociated");
  EXPECT_EQ(l.refused(release_address{acct_a, "eipalloc-1"}), "InvalidIPAddress.InUse");

  // Re-association moves the address in one decision; i-1 gets an auto
  // address again when the cloud gives them (the one it gave back is free).
  l.ok(associate_address{acct_a, "eipalloc-1", "i-2", "eipassoc-2", true, small_pools(), true});
  EXPECT_EQ(public_ip_of(l.s, acct_a, "i-2"), "198.51.100.11");
  EXPECT_EQ(public_ip_of(l.s, acct_a, "i-1"), "198.51.100.10");
  // A second elastic IP on i-2 replaces the first.
  l.ok(associate_address{acct_a, "eipalloc-2", "i-2", "eipassoc-3"});
  EXPECT_EQ(public_ip_of(l.s, acct_a, "i-2"), "198.51.100.12");
  EXPECT_TRUE(l.s.addresses.at("eipalloc-1").instance_id.empty());

  EXPECT_EQ(l.refused(disassociate_address{acct_b, "eipassoc-3"}), "InvalidAssociationID.NotFound");
  l.ok(disassociate_address{acct_a, "eipassoc-3"});  // without auto-assignment: no public IP left
  EXPECT_EQ(public_ip_of(l.s, acct_a, "i-2"), "");
  EXPECT_EQ(l.refused(disassociate_address{acct_a, "eipassoc-3"}), "InvalidAssociationID.NotFound");
  l.ok(release_address{acct_a, "eipalloc-2"});
  EXPECT_FALSE(l.s.addresses.count("eipalloc-2"));
  EXPECT_EQ(l.refused(release_address{acct_a, "eipalloc-2"}), "InvalidAllocationID.NotFound");

  // With auto-assignment, an instance losing its elastic IP gets a free
  // auto address; when the pool has none it simply has no public IP.
  l.ok(allocate_address{acct_a, "eipalloc-4", small_pools()});  // the last free one, .12
  l.ok(associate_address{acct_a, "eipalloc-4", "i-2", "eipassoc-5"});
  l.ok(disassociate_address{acct_a, "eipassoc-5", small_pools(), true});
  EXPECT_EQ(public_ip_of(l.s, acct_a, "i-2"), "");
  l.ok(release_address{acct_a, "eipalloc-4"});
  l.ok(associate_address{acct_a, "eipalloc-1", "i-2", "eipassoc-6"});
  l.ok(disassociate_address{acct_a, "eipassoc-6", small_pools(), true});
  EXPECT_EQ(public_ip_of(l.s, acct_a, "i-2"), "198.51.100.12");  // eipalloc-4's, released above
  // Terminating an instance lets its elastic IP go (it stays allocated) and
  // frees its auto public IP.
  l.ok(associate_address{acct_a, "eipalloc-1", "i-2", "eipassoc-4"});
  r.terminate("i-2", acct_a, "sg-a");
  EXPECT_TRUE(l.s.addresses.at("eipalloc-1").instance_id.empty());
  r.terminate("i-1", acct_a, "sg-a");
  r.launch_ok("i-5", acct_b, "sg-b", true);
  EXPECT_EQ(l.s.instances.at("i-5").auto_public_ip, "198.51.100.10");
  expect_codec_round_trip<aggregate>(l.all);
}

TEST(Network, OneAccountCannotTakeTheWholePool) {
  region r;
  auto& l = r.ledger;
  auto big = small_pools();
  big.public_last = "198.51.100.60";
  for (size_t i = 0; i < max_addresses_per_account; ++i)
    l.ok(allocate_address{acct_a, "eipalloc-a" + std::to_string(i), big});
  EXPECT_EQ(l.refused(allocate_address{acct_a, "eipalloc-a9", big}), "AddressLimitExceeded");
  l.ok(allocate_address{acct_b, "eipalloc-b0", big});  // another account still gets one
  l.ok(release_address{acct_a, "eipalloc-a0"});
  l.ok(allocate_address{acct_a, "eipalloc-a9", big});
}

TEST(Network, MetadataOptionsChangeOnlyWhatIsGiven) {
  region r;
  r.launch_ok("i-1", acct_a, "sg-a");
  auto& seg = r.seg(acct_a, "sg-a");
  EXPECT_EQ(seg.refused(segment::set_metadata_options{"i-404", true}), "InvalidInstanceID.NotFound");
  EXPECT_EQ(seg.refused(segment::set_metadata_options{"i-1", std::nullopt, 65}), "InvalidParameterValue");
  EXPECT_EQ(seg.refused(segment::set_metadata_options{"i-1", std::nullopt, 0}), "InvalidParameterValue");
  // Two calls changing different fields both land (no read-modify-write in the API).
  seg.ok(segment::set_metadata_options{"i-1", true});
  seg.ok(segment::set_metadata_options{"i-1", std::nullopt, 3});
  const auto& m = r.nic("i-1", acct_a, "sg-a").metadata;
  EXPECT_TRUE(m.tokens_required);
  EXPECT_EQ(m.hop_limit, 3);
  EXPECT_TRUE(m.endpoint_enabled);
  // Asking for what is already so records nothing.
  const auto events = seg.all.size();
  seg.ok(segment::set_metadata_options{"i-1", true, 3});
  EXPECT_EQ(seg.all.size(), events);
  r.ledger.ok(record_repair{"node-1", "created bridge kbr100", 5});
  expect_codec_round_trip<segment::aggregate>(seg.all);
  expect_codec_round_trip<aggregate>(r.ledger.all);
}

TEST(Network, BadPrivateRangeIsRefused) {
  region r;
  auto p = small_pools();
  p.private_cidr = "10.16.0.0/30";
  EXPECT_EQ(r.ledger.refused(prepare_launch{acct_a, "sg-a", {"i-1"}, p, false, 1}), "InternalError");
  EXPECT_FALSE(segment::aggregate::valid_id(acct_a + "/default"));
  EXPECT_FALSE(segment::aggregate::valid_id("12/sg-0a"));
  EXPECT_TRUE(segment::aggregate::valid_id(segment::aggregate_id(acct_a, "sg-0123456789abcdef0")));
}

// A /24 a live segment has is never handed out again, even when
// --net-private changed so that the same /24 sits at another index.
TEST(Network, AChangedPrivateRangeNeverOverlapsLiveSegments) {
  region r;
  r.from.vni_last = 110;
  r.launch_ok("i-1", acct_a, "sg-a");  // 10.16.0.0/24
  r.launch_ok("i-2", acct_a, "sg-b");  // 10.16.1.0/24
  r.terminate("i-1", acct_a, "sg-a");
  r.from.private_cidr = "10.16.1.0/24";  // one block: the one sg-b still has
  EXPECT_EQ(r.ledger.refused(prepare_launch{acct_a, "sg-c", {"i-3"}, r.from, false, 1}),
            "InsufficientAddressCapacity");
  r.from.private_cidr = "10.16.0.0/23";
  r.launch_ok("i-3", acct_a, "sg-c");
  EXPECT_EQ(r.nic("i-3", acct_a, "sg-c").private_ip, "10.16.0.10");
}

TEST(Network, HostViewCompilesGroupsRulesOntoSegments) {
  region r;
  r.launch_ok("i-1", acct_a, "sg-a", true);
  r.launch_ok("i-2", acct_a, "sg-web");
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
  auto v = host_view(r.ledger.s, r.all_segments(), groups, {net::segment_mode::vxlan, "eth9", 8775});
  ASSERT_EQ(v.segments.size(), 2u);
  ASSERT_EQ(v.nics.size(), 2u);
  EXPECT_EQ(v.nics[0].instance_id, "i-1");
  EXPECT_EQ(v.nics[0].public_ip, "198.51.100.10");
  EXPECT_EQ(v.nics[1].public_ip, "");
  const auto web_vni = r.seg(acct_a, "sg-web").s.current.vni, a_vni = r.seg(acct_a, "sg-a").s.current.vni;
  EXPECT_EQ(v.nics[1].vni, web_vni);
  ASSERT_EQ(v.ingress.size(), 2u);
  EXPECT_EQ(v.ingress[0].vni, web_vni);
  EXPECT_EQ(v.ingress[0].cidr, "0.0.0.0/0");
  EXPECT_EQ(v.ingress[1].peer_vni, a_vni);
  EXPECT_TRUE(net::problems(v).empty());
  EXPECT_NE(net::nft_ruleset(v).find("198.51.100.10 : 10.16.0.10"), std::string::npos) << net::nft_ruleset(v);

  groups_by_id wrong_account{{"sg-web", &foreign}};
  EXPECT_TRUE(host_view(r.ledger.s, r.all_segments(), wrong_account, {}).ingress.empty());

  // A segment whose lease the ledger no longer has serves no NIC (its bridge is gone).
  r.ledger.ok(release_lease{acct_a, "sg-web", r.seg(acct_a, "sg-web").s.current.number});
  auto after = host_view(r.ledger.s, r.all_segments(), groups, {});
  ASSERT_EQ(after.nics.size(), 1u);
  EXPECT_EQ(after.nics[0].instance_id, "i-1");
}

TEST(Network, AccountViewShowsOnlyTheAccountsNicsAndAddresses) {
  region r;
  r.launch_ok("i-1", acct_a, "sg-a", true);
  r.launch_ok("i-9", acct_b, "sg-b");
  r.ledger.ok(allocate_address{acct_b, "eipalloc-b", small_pools()});
  r.ledger.ok(associate_address{acct_b, "eipalloc-b", "i-9", "eipassoc-b"});
  auto a = account_view(r.ledger.s, r.all_segments(), acct_a);
  ASSERT_EQ(a.instances.size(), 1u);
  EXPECT_EQ(a.instances.at("i-1").nic.private_ip, "10.16.0.10");
  EXPECT_EQ(a.instances.at("i-1").public_ip, "198.51.100.10");
  EXPECT_EQ(a.instances.at("i-1").group_id, "sg-a");
  EXPECT_TRUE(a.addresses.empty());
  auto b = account_view(r.ledger.s, r.all_segments(), acct_b);
  ASSERT_EQ(b.addresses.size(), 1u);
  EXPECT_EQ(b.instances.at("i-9").public_ip, b.addresses[0].public_ip);
}

TEST(Network, MetadataTableHasEachLiveInstanceByPrivateIp) {
  region r;
  r.launch_ok("i-1", acct_a, "sg-a", true);
  r.launch_ok("i-2", acct_a, "sg-a");
  r.seg(acct_a, "sg-a").ok(segment::set_metadata_options{"i-2", true, 2});
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
      r.ledger.s, r.all_segments(),
      [&](const std::string& acct, const std::string& iid) -> const instance::state* {
        if (acct != acct_a) return nullptr;
        return iid == "i-1" ? &one : iid == "i-2" ? &two : nullptr;
      },
      "kumo-1");
  ASSERT_EQ(table.size(), 1u);  // a terminated instance answers nothing
  const auto& m = table.at("10.16.0.10");
  EXPECT_EQ(m.instance_id, "i-1");
  EXPECT_EQ(m.public_ip, "198.51.100.10");
  EXPECT_EQ(m.user_data, "#!/bin/sh\necho hi");
  EXPECT_EQ(m.hostname, "ip-10-16-0-10.kumo-1.compute.internal");
  EXPECT_EQ(m.mac, r.nic("i-1", acct_a, "sg-a").mac);
}

TEST(Network, ASegmentTakesOnlyItsOwnAccountGroupAndLease) {
  region r;
  r.launch_ok("i-1", acct_a, "sg-a");
  auto& seg = r.seg(acct_a, "sg-a");
  const auto l = seg.s.current;
  // Another account's or group's NICs are never put on this segment.
  EXPECT_EQ(seg.refused(segment::allocate_nics{acct_b, "sg-a", l, {"i-2"}, 1}), "InternalError");
  EXPECT_EQ(seg.refused(segment::allocate_nics{acct_a, "sg-b", l, {"i-2"}, 1}), "InternalError");
  // A lease newer than the segment's means the ledger and the segment disagree: refused.
  EXPECT_EQ(seg.refused(segment::allocate_nics{acct_a, "sg-a", {l.number + 7, l.vni, l.subnet}, {"i-2"}, 1}),
            "InternalError");
  // An older one is refused as retired, so RunInstances asks the ledger again.
  const auto old_mac = r.nic("i-1", acct_a, "sg-a").mac;
  seg.ok(segment::release_nic{"i-1"});
  seg.ok(segment::retire{l.number});
  EXPECT_EQ(r.launch({"i-2"}, acct_a, "sg-a"), "");
  const auto newer = seg.s.current;
  EXPECT_EQ(seg.refused(segment::allocate_nics{acct_a, "sg-a", l, {"i-3"}, 1}), segment::segment_retired_code);
  // NICs are numbered per lease: the new lease starts again at 1, its MACs differ by the lease number.
  EXPECT_EQ(seg.s.nic_serial, 1u);
  EXPECT_NE(r.nic("i-2", acct_a, "sg-a").mac.substr(0, 11), old_mac.substr(0, 11));  // another lease number
  EXPECT_GT(newer.number, l.number);
}

TEST(Network, TheLedgerStopsNumberingLeasesBeforeMacsWouldRepeat) {
  region r;
  r.ledger.s.lease_serial = segment::max_lease_number;
  EXPECT_EQ(r.ledger.refused(prepare_launch{acct_a, "sg-a", {"i-1"}, r.from, false, 1}), "InsufficientAddressCapacity");
}

// The network controller's decisions, from the projection alone.
TEST(Network, ReleasePlanGivesBackWhatNoLiveInstanceUses) {
  region r;
  r.from.vni_last = 110;
  r.launch_ok("i-live", acct_a, "sg-a", true);
  r.launch_ok("i-gone", acct_a, "sg-a", true);
  r.launch_ok("i-orphan", acct_b, "sg-b");  // no instance in the log: a crash before its launch
  instance::state live, gone;
  live.exists = gone.exists = true;
  live.status = instance::lifecycle::running;
  gone.status = instance::lifecycle::terminated;
  auto lookup = [&](const std::string& acct, const std::string& iid) -> const instance::state* {
    if (acct != acct_a) return nullptr;
    return iid == "i-live" ? &live : iid == "i-gone" ? &gone : nullptr;
  };
  const int64_t grace = 300000;
  // Within the grace period the orphan keeps its NIC; the terminated instance does not.
  auto plan = plan_releases(r.ledger.s, r.all_segments(), lookup, 1000 + grace, grace);
  ASSERT_EQ(plan.nics.size(), 1u);
  EXPECT_EQ(plan.nics[0].instance_id, "i-gone");
  EXPECT_EQ(plan.nics[0].segment_id, segment::aggregate_id(acct_a, "sg-a"));
  auto public_ids = [](const release_plan& p) {
    std::vector<std::string> ids;
    for (const auto& x : p.instances) ids.push_back(x.instance_id);
    return ids;
  };
  EXPECT_EQ(public_ids(plan), std::vector<std::string>{"i-gone"});
  EXPECT_TRUE(plan.retire.empty());
  EXPECT_TRUE(plan.free.empty());
  // After it, the orphan goes too, on both sides.
  plan = plan_releases(r.ledger.s, r.all_segments(), lookup, 1001 + grace, grace);
  EXPECT_EQ(plan.nics.size(), 2u);
  EXPECT_EQ(public_ids(plan), (std::vector<std::string>{"i-gone", "i-orphan"}));

  // An empty segment is retired, then its lease freed.
  auto& b = r.seg(acct_b, "sg-b");
  b.ok(segment::release_nic{"i-orphan"});
  plan = plan_releases(r.ledger.s, r.all_segments(), lookup, 0, grace);
  ASSERT_EQ(plan.retire.size(), 1u);
  EXPECT_EQ(plan.retire[0].segment_id, segment::aggregate_id(acct_b, "sg-b"));
  EXPECT_FALSE(plan.retire[0].never_taken_up);
  b.ok(segment::retire{plan.retire[0].lease_number});
  plan = plan_releases(r.ledger.s, r.all_segments(), lookup, 0, grace);
  ASSERT_EQ(plan.free.size(), 1u);
  EXPECT_EQ(plan.free[0].group_id, "sg-b");
  EXPECT_TRUE(plan.retire.empty());

  // A lease that never reached its segment is retired there after the grace period only.
  r.ledger.ok(prepare_launch{acct_b, "sg-c", {"i-c"}, r.from, false, 1000});
  plan = plan_releases(r.ledger.s, r.all_segments(), lookup, 1000 + grace, grace);
  for (const auto& x : plan.retire) EXPECT_NE(x.segment_id, segment::aggregate_id(acct_b, "sg-c"));
  plan = plan_releases(r.ledger.s, r.all_segments(), lookup, 1001 + grace, grace);
  bool retired = false;
  for (const auto& x : plan.retire) retired |= x.segment_id == segment::aggregate_id(acct_b, "sg-c") && x.never_taken_up;
  EXPECT_TRUE(retired);
}

// A RunInstances retried long after a crash (same ClientToken, same ids)
// claims the NIC it already has, so the orphan release the controller
// decided before the retry does not take it away.
TEST(Network, ALateRetryOfALaunchKeepsItsNic) {
  region r;
  r.launch_ok("i-1", acct_a, "sg-a");  // at 1000; the launch itself never happened
  const int64_t grace = 300000;
  auto none = [](const std::string&, const std::string&) -> const instance::state* { return nullptr; };
  auto plan = plan_releases(r.ledger.s, r.all_segments(), none, 2000 + grace, grace);
  ASSERT_EQ(plan.nics.size(), 1u);
  auto& seg = r.seg(acct_a, "sg-a");
  // The retry lands first ...
  seg.ok(segment::allocate_nics{acct_a, "sg-a", seg.s.current, {"i-1"}, 2500 + grace});
  EXPECT_EQ(r.nic("i-1", acct_a, "sg-a").allocated_ms, 2500 + grace);
  // ... then the release decided before it: the NIC stays.
  seg.ok(segment::release_nic{plan.nics[0].instance_id, plan.nics[0].allocated_ms});
  EXPECT_TRUE(seg.s.nics.count("i-1"));
  EXPECT_TRUE(plan_releases(r.ledger.s, r.all_segments(), none, 2600 + grace, grace).nics.empty());
  // A release without an age (a terminated instance) takes it whatever its age.
  seg.ok(segment::release_nic{"i-1"});
  EXPECT_FALSE(seg.s.nics.count("i-1"));
  expect_codec_round_trip<segment::aggregate>(seg.all);

  // The ledger side the same way: the retry claims the attachment, the
  // release judged on the old one changes nothing.
  r.launch_ok("i-2", acct_a, "sg-a", true);
  release_plan::public_release judged;
  for (const auto& p : plan_releases(r.ledger.s, r.all_segments(), none, 2000 + grace, grace).instances)
    if (p.instance_id == "i-2") judged = p;
  ASSERT_EQ(judged.attached_ms, 1000);
  r.ledger.ok(prepare_launch{acct_a, "sg-a", {"i-2"}, r.from, true, 2500 + grace});
  EXPECT_EQ(r.ledger.s.instances.at("i-2").at_ms, 2500 + grace);
  r.ledger.ok(release_instances{{judged.instance_id}, judged.attached_ms});
  EXPECT_EQ(public_ip_of(r.ledger.s, acct_a, "i-2"), "198.51.100.10");
  expect_codec_round_trip<aggregate>(r.ledger.all);
}
