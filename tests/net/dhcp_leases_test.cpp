// check_leases(): dnsmasq's lease file held to the log. A lease is kept only
// when the log gives its IP to its MAC; every other one is stale, with the
// bridge it can be released on and the MAC that holds its IP now.
#include "net/dhcp_leases.h"

#include <gtest/gtest.h>

namespace kumo::net {
namespace {

network_view two_segments() {
  network_view v;
  v.segments = {{1000, "111111111111", "sg-a", "10.16.0.0/24"}, {1001, "222222222222", "sg-b", "10.16.1.0/24"}};
  v.nics = {{"i-new", 1000, "02:00:00:00:00:02", "10.16.0.10", "", "kt0000000002"},
            {"i-b", 1001, "02:00:00:00:00:03", "10.16.1.10", "", "kt0000000003"}};
  return v;
}

TEST(DhcpLeases, TheLogsPairsAreKeptEverythingElseIsStale) {
  const auto plane = desired(two_segments(), "/state");
  const std::string file =
      "1796736358 02:00:00:00:00:01 10.16.0.10 ip-10-16-0-10 01:02:00:00:00:00:01\n"  // terminated: IP reused
      "1796736359 02:00:00:00:00:03 10.16.1.10 ip-10-16-1-10 *\n"                     // backed
      "1796736360 02:00:00:00:00:04 10.16.0.11 * *\n"                                  // its NIC is gone
      "1796736361 02:00:00:00:00:05 10.99.0.10 * *\n"                                  // no segment holds it
      "1796736362 02:00:00:00:00:02 10.16.0.10 ip-10-16-0-10 *\n";                     // backed
  auto check = check_leases(file, plane);
  EXPECT_EQ(check.backed_file,
            "1796736359 02:00:00:00:00:03 10.16.1.10 ip-10-16-1-10 *\n"
            "1796736362 02:00:00:00:00:02 10.16.0.10 ip-10-16-0-10 *\n");
  ASSERT_EQ(check.stale.size(), 3u);
  EXPECT_EQ(check.stale[0], (stale_lease{{"02:00:00:00:00:01", "10.16.0.10", "01:02:00:00:00:00:01"},
                                         "kbr1000", "02:00:00:00:00:02"}));
  EXPECT_EQ(check.stale[0].describe(),
            "10.16.0.10 of 02:00:00:00:00:01 (the log gives 10.16.0.10 to 02:00:00:00:00:02)");
  EXPECT_EQ(check.stale[1], (stale_lease{{"02:00:00:00:00:04", "10.16.0.11", ""}, "kbr1000", ""}));
  EXPECT_EQ(check.stale[1].describe(), "10.16.0.11 of 02:00:00:00:00:04 (no NIC in the log has 10.16.0.11)");
  EXPECT_EQ(check.stale[2], (stale_lease{{"02:00:00:00:00:05", "10.99.0.10", ""}, "", ""}))
      << "no bridge: only a restart on a rewritten file drops it";
}

TEST(DhcpLeases, MacsCompareWithoutCaseAndTheDuidLineStays) {
  auto view = two_segments();
  view.nics[0].mac = "02:00:00:00:00:AB";
  const auto plane = desired(view, "/state");
  auto check = check_leases("duid 00:01:00:01:2c:aa\n1796736362 02:00:00:00:00:ab 10.16.0.10 * *\n", plane);
  EXPECT_TRUE(check.stale.empty());
  EXPECT_EQ(check.backed_file, "duid 00:01:00:01:2c:aa\n1796736362 02:00:00:00:00:ab 10.16.0.10 * *\n");
}

// dnsmasq rewrites its lease file in place: a reader can catch a line cut
// off ("10.16.0.1" of "10.16.0.10"), which must not pass for a lease.
TEST(DhcpLeases, UnreadableAndCutOffLinesAreCountedNotTakenForLeases) {
  const auto plane = desired(two_segments(), "/state");
  auto check = check_leases(
      "garbage\n"
      "1796736362 1234::5 fe80::1 * 00:01:02\n"
      "1796736362 02:00:00:00:00:02 10.16.0.10 * *\n"
      "1796736363 02:00:00:00:00:03 10.16.0.1",
      plane);
  EXPECT_TRUE(check.stale.empty());
  EXPECT_EQ(check.unreadable, 3u);
  EXPECT_EQ(check.backed_file, "1796736362 02:00:00:00:00:02 10.16.0.10 * *\n");
}

TEST(DhcpLeases, NoNicsMeansEveryLeaseIsStale) {
  auto view = two_segments();
  view.nics.clear();
  auto check = check_leases("1796736362 02:00:00:00:00:02 10.16.0.10 * *\n", desired(view, "/state"));
  ASSERT_EQ(check.stale.size(), 1u);
  EXPECT_EQ(check.stale[0].bridge, "kbr1000");
  EXPECT_EQ(check.backed_file, "");
}

}  // namespace
}  // namespace kumo::net
