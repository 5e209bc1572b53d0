// The node protocol crosses CAF nodes: every field of what a cluster and a
// node say to each other survives CAF's binary serialization.
#include "actors/protocol/node.h"

#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>
#include <gtest/gtest.h>

using namespace kumo::actors;

namespace {

template <class T>
T round_trip(T x) {
  std::vector<char> buf;
  caf::binary_serializer sink{nullptr, buf};
  EXPECT_FALSE(sink(x));
  T back;
  caf::binary_deserializer source{nullptr, buf};
  EXPECT_FALSE(source(back));
  return back;
}

}  // namespace

TEST(NodeProtocol, AssignmentsCarryEachNicsSegmentAndTheCloudsSegmentMode) {
  desired_instance d;
  d.instance_id = "i-0123456789abcdef0";
  d.nic_mac = "02:00:00:10:00:01";
  d.nic_tap = "kt0000100001";
  d.nic_vni = 1003;
  d.nic_subnet = "10.16.3.0/24";
  d.nic_ip = "10.16.3.10";
  node_assignment a;
  a.instances = {d};
  a.segment_mode = 1;
  auto back = round_trip(a);
  ASSERT_EQ(back.instances.size(), 1u);
  const auto& b = back.instances[0];
  EXPECT_EQ(std::tie(b.instance_id, b.nic_mac, b.nic_tap, b.nic_vni, b.nic_subnet, b.nic_ip),
            std::tie(d.instance_id, d.nic_mac, d.nic_tap, d.nic_vni, d.nic_subnet, d.nic_ip));
  EXPECT_EQ(back.segment_mode, 1);
}

TEST(NodeProtocol, RegistrationSaysWhichProtocolTheNodeSpeaks) {
  node_capacity cap;
  cap.node_id = "node-b";
  cap.protocol = node_protocol_version + 1;
  auto back = round_trip(cap);
  EXPECT_EQ(back.protocol, node_protocol_version + 1);
  EXPECT_EQ(back.node_id, "node-b");
  EXPECT_EQ(node_capacity{}.protocol, node_protocol_version);
}
