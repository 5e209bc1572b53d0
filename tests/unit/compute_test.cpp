// Instance, Zone and ClientToken aggregates: pure decide/apply/codec.
#include "actors/clienttoken/client_token.h"
#include "actors/compute/instance_types.h"
#include "actors/compute/zone.h"
#include "actors/instance/instance.h"
#include "tests/support/aggregate_checks.h"

#include <gtest/gtest.h>

using namespace kumo;
using namespace kumo::actors;
using kumo::checks::expect_codec_round_trip;
using kumo::checks::fold;

namespace {

const std::string account_id = "123456789012";
const std::string instance_id = "i-0123456789abcdef0";

instance::launch_spec spec_of(const std::string& reservation = "r-0123456789abcdef0") {
  instance::launch_spec s;
  s.instance_id = instance_id;
  s.reservation_id = reservation;
  s.account_id = account_id;
  s.image_id = "emi-0123456789abcdef0";
  s.kernel_path = "/k";
  s.size = {"m1.small", 1, 256, 5};
  s.zone = "kumo-1a";
  s.node_id = "node-1";
  s.launch_ms = 1000;
  return s;
}

// Applies a command to a state and returns the new state; fails the test on refusal.
instance::state step(const instance::state& s, const instance::command& c) {
  auto id = instance::aggregate_id(account_id, instance_id);
  auto d = instance::aggregate::decide(id, s, c);
  EXPECT_FALSE(d.error) << (d.error ? d.error->code + ": " + d.error->message : "");
  return fold<instance::aggregate>(d.events, s);
}

std::string refusal(const instance::state& s, const instance::command& c) {
  auto d = instance::aggregate::decide(instance::aggregate_id(account_id, instance_id), s, c);
  EXPECT_TRUE(d.events.empty());
  return d.error ? d.error->code : "";
}

}  // namespace

TEST(Instance, IdsAreScopedToTheAccount) {
  using A = instance::aggregate;
  EXPECT_TRUE(A::valid_id(instance::aggregate_id(account_id, instance_id)));
  EXPECT_FALSE(A::valid_id(instance_id));
  EXPECT_FALSE(A::valid_id(account_id + "/i-XYZ"));
  EXPECT_FALSE(instance::valid_instance_id("i-0123456789ABCDEF0"));
  // Another account's id names an empty stream: NotFound, never its state.
  EXPECT_EQ(refusal({}, instance::stop{}), "InvalidInstanceID.NotFound");
}

TEST(Instance, LifecycleFollowsEc2) {
  using instance::lifecycle;
  using instance::observed;
  auto s = step({}, instance::launch{spec_of()});
  EXPECT_EQ(s.status, lifecycle::pending);
  // What the hypervisor reports moves it; a report of the same state changes nothing.
  s = step(s, instance::observe{observed::running, "", 2000});
  EXPECT_EQ(s.status, lifecycle::running);
  EXPECT_EQ(refusal(s, instance::observe{observed::running}), "");
  EXPECT_EQ(refusal(s, instance::start{}), "IncorrectInstanceState");

  s = step(s, instance::reboot{});
  EXPECT_EQ(s.reboot_generation, 1u);
  EXPECT_EQ(s.reboot_done, 0u);
  // The node says it carried the reboot out (a claim beyond the requests is capped).
  s = step(s, instance::observe{observed::running, "", 2500, 7});
  EXPECT_EQ(s.reboot_done, 1u);
  EXPECT_EQ(refusal(s, instance::observe{observed::running, "", 2600, 1}), "");
  s = step(s, instance::stop{false, 3000});
  EXPECT_EQ(s.status, lifecycle::stopping);
  EXPECT_FALSE(s.stop_forced);
  EXPECT_NE(s.transition_reason.find("User initiated"), std::string::npos);
  s = step(s, instance::stop{true, 3100});  // forcing a stop in progress pulls the plug
  EXPECT_TRUE(s.stop_forced);
  EXPECT_EQ(refusal(s, instance::reboot{}), "IncorrectInstanceState");
  s = step(s, instance::observe{observed::shut_off, "", 4000});
  EXPECT_EQ(s.status, lifecycle::stopped);
  EXPECT_EQ(s.reason_code, "Client.UserInitiatedShutdown");
  EXPECT_EQ(refusal(s, instance::stop{}), "");  // stopping a stopped instance is a no-op

  s = step(s, instance::modify_sizing{{"m1.large", 2, 512, 10}});
  EXPECT_EQ(s.spec.size.instance_type, "m1.large");
  s = step(s, instance::start{5000});
  EXPECT_EQ(s.status, lifecycle::pending);
  EXPECT_EQ(refusal(s, instance::modify_user_data{"aGk="}), "IncorrectInstanceState");
  s = step(s, instance::observe{observed::running, "", 6000});

  // The guest powering itself off is an instance-initiated shutdown.
  auto off = step(s, instance::observe{observed::shut_off, "", 6500});
  EXPECT_EQ(off.status, lifecycle::stopped);
  EXPECT_EQ(off.reason_code, "Client.InstanceInitiatedShutdown");

  s = step(s, instance::terminate{7000});
  EXPECT_EQ(s.status, lifecycle::shutting_down);
  EXPECT_EQ(refusal(s, instance::terminate{}), "");
  s = step(s, instance::observe{observed::shut_off, "", 7500});  // not gone yet
  EXPECT_EQ(s.status, lifecycle::shutting_down);
  s = step(s, instance::observe{observed::absent, "", 8000});
  EXPECT_EQ(s.status, lifecycle::terminated);
  EXPECT_EQ(s.changed_ms, 8000);
  EXPECT_EQ(refusal(s, instance::start{}), "IncorrectInstanceState");
  EXPECT_EQ(refusal(s, instance::stop{}), "IncorrectInstanceState");
  EXPECT_EQ(refusal(s, instance::terminate{}), "");
}

TEST(Instance, FailedBootTerminatesWithAReason) {
  auto s = step({}, instance::launch{spec_of()});
  s = step(s, instance::observe{instance::observed::failed, "kernel not found", 10});
  EXPECT_EQ(s.status, instance::lifecycle::terminated);
  EXPECT_EQ(s.reason_code, "Server.InternalError");
  EXPECT_NE(s.reason_message.find("kernel not found"), std::string::npos);
}

TEST(Instance, RepeatedLaunchIsIdempotentButIdsAreNeverReused) {
  auto s = step({}, instance::launch{spec_of()});
  EXPECT_EQ(refusal(s, instance::launch{spec_of()}), "");  // same reservation: a retry
  EXPECT_EQ(refusal(s, instance::launch{spec_of("r-ffffffffffffffff0")}), "InvalidInstanceID.Malformed");
  auto other = spec_of();
  other.account_id = "999999999999";
  EXPECT_EQ(refusal({}, instance::launch{other}), "InvalidParameterValue");
}

TEST(Instance, EventsAndSnapshotsSurviveTheCodec) {
  using namespace instance;
  expect_codec_round_trip<aggregate>(
      {launched{spec_of()}, state_changed{lifecycle::pending, lifecycle::running, "", "", false, 5},
       reboot_requested{}, rebooted{1}, repaired{"recreated", 7}, state_changed{lifecycle::running, lifecycle::stopping, "c", "m", true, 6},
       sizing_changed{{"m1.large", 2, 512, 10}}, user_data_changed{"aGVsbG8="},
       tags_changed{{{"Name", "web"}}, {}}});
}

TEST(Zone, PlacesByPolicyAndNeverOverbooks) {
  using namespace zone;
  using A = zone::aggregate;
  state s = fold<A>({node_registered{"a", {4, 1024, 100}}, node_registered{"b", {4, 1024, 100}}});
  reserve two{{"i-1", "i-2"}, {1, 256, 5}, 2, {"a", "b"}, policy::spread, 1};
  auto spread = A::decide("kumo-1a", s, two);
  ASSERT_FALSE(spread.error);
  auto sp = fold<A>(spread.events, s);
  EXPECT_NE(sp.reservations.at("i-1").node_id, sp.reservations.at("i-2").node_id);
  two.placement = policy::pack;
  auto packed = fold<A>(A::decide("kumo-1a", s, two).events, s);
  EXPECT_EQ(packed.reservations.at("i-1").node_id, packed.reservations.at("i-2").node_id);
  EXPECT_EQ(packed.nodes.at(packed.reservations.at("i-1").node_id).used, (capacity{2, 512, 10}));

  // Retrying the same ids books nothing new.
  EXPECT_TRUE(A::decide("kumo-1a", packed, two).events.empty());

  // 8 vCPUs in total: 6 more of 1 vCPU fit, 7 do not; MinCount is all-or-nothing.
  reserve many{{}, {1, 128, 1}, 7, {"a", "b"}, policy::pack, 2};
  for (int i = 0; i < 7; ++i) many.instance_ids.push_back("j-" + std::to_string(i));
  auto refused = A::decide("kumo-1a", packed, many);
  ASSERT_TRUE(refused.error);
  EXPECT_EQ(refused.error->code, "InsufficientInstanceCapacity");
  EXPECT_TRUE(refused.events.empty());
  many.min_count = 1;  // MaxCount 7, MinCount 1: as many as fit
  auto partial = fold<A>(A::decide("kumo-1a", packed, many).events, packed);
  EXPECT_EQ(partial.reservations.size(), 8u);

  // Unavailable nodes are not used.
  reserve only_b{{"k-1"}, {4, 128, 1}, 1, {"b"}, policy::pack, 3};
  EXPECT_EQ(A::decide("kumo-1a", packed, only_b).events.size(), 1u);
  only_b.available_nodes = {};
  EXPECT_TRUE(A::decide("kumo-1a", packed, only_b).error);

  auto released = fold<A>(A::decide("kumo-1a", packed, release{"i-1"}).events, packed);
  EXPECT_EQ(released.reservations.count("i-1"), 0u);
  EXPECT_EQ(released.nodes.at(packed.reservations.at("i-1").node_id).used, (capacity{1, 256, 5}));
  EXPECT_TRUE(A::decide("kumo-1a", released, release{"i-1"}).events.empty());

  auto audit = A::decide("kumo-1a", released, record_removal{"a", "i-0000000000000dead", 9});
  ASSERT_EQ(audit.events.size(), 1u);
  EXPECT_EQ(fold<A>(audit.events, released), released);  // audit only: the ledger is unchanged
  expect_codec_round_trip<A>({node_registered{"a", {4, 1024, 100}},
                              capacity_reserved{{{"i-1", "a", {1, 256, 5}, 7}}}, capacity_released{"i-1"},
                              unknown_domain_removed{"a", "i-0000000000000dead", 9}});
}

TEST(ClientToken, SameParametersRepeatDifferentParametersMismatch) {
  using namespace client_token;
  using A = client_token::aggregate;
  const auto id = aggregate_id(account_id, "my-token");
  EXPECT_TRUE(A::valid_id(id));
  EXPECT_FALSE(valid_token(std::string(65, 'a')));
  EXPECT_FALSE(valid_token("has space"));
  auto s = fold<A>(A::decide(id, {}, claim{"RunInstances", "h1", "seed-1", 1}).events);
  EXPECT_EQ(s.seed, "seed-1");
  // A retry keeps the first seed (so the same ids) and writes nothing.
  auto retry = A::decide(id, s, claim{"RunInstances", "h1", "seed-2", 2});
  EXPECT_FALSE(retry.error);
  EXPECT_TRUE(retry.events.empty());
  auto other = A::decide(id, s, claim{"RunInstances", "h2", "seed-3", 3});
  ASSERT_TRUE(other.error);
  EXPECT_EQ(other.error->code, "IdempotentParameterMismatch");
  s = fold<A>(A::decide(id, s, complete{"<x/>"}).events, s);
  EXPECT_TRUE(s.done);
  EXPECT_EQ(s.response_body, "<x/>");
  EXPECT_TRUE(A::decide(id, s, complete{"<y/>"}).events.empty());
  EXPECT_TRUE(A::decide(id, s, release{"h1", "InvalidParameterValue"}).events.empty()) << "a completed call stays";
  expect_codec_round_trip<A>({claimed{"RunInstances", "h", "s", 1}, completed{"<r/>"}, released{"Bad"}});
}

TEST(ClientToken, ACallRefusedOnItsInputReleasesItsClaim) {
  using namespace client_token;
  using A = client_token::aggregate;
  const auto id = aggregate_id(account_id, "my-token");
  auto s = fold<A>(A::decide(id, {}, claim{"CreateVolume", "h1", "seed-1", 1}).events);
  EXPECT_TRUE(A::decide(id, s, release{"h2", "InvalidParameterValue"}).events.empty())
      << "only the claim of the failed call's parameters goes";
  s = fold<A>(A::decide(id, s, release{"h1", "InvalidParameterValue"}).events, s);
  EXPECT_FALSE(s.exists);
  auto again = A::decide(id, s, claim{"CreateVolume", "h2", "seed-2", 2});
  ASSERT_FALSE(again.error) << "a retry with other parameters runs";
  EXPECT_EQ(fold<A>(again.events, s).seed, "seed-2");
}

TEST(InstanceTypes, ParsedFromConfigWithClearErrors) {
  std::string error;
  auto t = parse_instance_type("x1.huge:8:16384:100", error);
  ASSERT_TRUE(t);
  EXPECT_EQ(*t, (instance::sizing{"x1.huge", 8, 16384, 100}));
  EXPECT_FALSE(parse_instance_type("x1:0:256:1", error));
  EXPECT_NE(error.find("x1:0:256:1"), std::string::npos);
  EXPECT_FALSE(parse_instance_type("x1:1:256", error));
  EXPECT_FALSE(parse_instance_type("x1:1:abc:1", error));
  EXPECT_EQ(default_instance_types().front().instance_type, "t1.micro");
}
