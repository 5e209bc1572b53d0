// The kernel data plane against a real kernel, inside a network namespace
// this binary makes for itself (main() unshares before any test runs), so the
// machine's own network is never touched. "Guests" are network namespaces
// with a veth whose host end is named like a tap; they get their address from
// the data plane's dnsmasq with busybox udhcpc. A "public" namespace stands
// for the outside world that reaches elastic IPs.
#include "net/dataplane.h"
#include "net/desired_state.h"
#include "process/child.h"
#include "tests/support/subprocess.h"

#include <gtest/gtest.h>
#include <sched.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>

using namespace kumo;
using namespace std::chrono_literals;

namespace {

int sh(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()); }

std::string output(const std::string& cmd) {
  std::string out;
  if (FILE* p = ::popen((cmd + " 2>&1").c_str(), "r")) {
    std::array<char, 4096> buf{};
    size_t n;
    while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
    ::pclose(p);
  }
  return out;
}

// A namespace kept alive by a sleeping process; commands run in it with nsenter.
struct netns {
  std::unique_ptr<test::subprocess> keeper;
  explicit netns() {
    keeper = std::make_unique<test::subprocess>(
        std::vector<std::string>{"/usr/bin/unshare", "-n", "/bin/sh", "-c", "ip link set lo up; echo ready; exec sleep 600"});
    EXPECT_TRUE(keeper->wait_for("ready", 10s));
  }
  std::string in(const std::string& cmd) const { return "nsenter -t " + std::to_string(keeper->pid()) + " -n " + cmd; }
  int run(const std::string& cmd) const { return sh(in(cmd)); }
  std::string out(const std::string& cmd) const { return output(in(cmd)); }
  // A veth whose host end is `host_end` and whose other end is this namespace's eth0.
  void plug(const std::string& host_end, const std::string& mac = "") const {
    ASSERT_EQ(sh("ip link add " + host_end + " type veth peer name g" + std::to_string(keeper->pid())), 0);
    ASSERT_EQ(sh("ip link set g" + std::to_string(keeper->pid()) + " netns " + std::to_string(keeper->pid())), 0);
    ASSERT_EQ(run("ip link set g" + std::to_string(keeper->pid()) + " name eth0"), 0);
    if (!mac.empty()) ASSERT_EQ(run("ip link set eth0 address " + mac), 0);
    ASSERT_EQ(run("ip link set eth0 up"), 0);
    ASSERT_EQ(sh("ip link set " + host_end + " up"), 0);
  }
  bool ping(const std::string& ip) const { return run("busybox ping -c 1 -W 2 " + ip) == 0; }
  // The outside world: 203.0.113.2 behind pub0 (203.0.113.1 on this host),
  // routing the public pool to this host.
  void become_the_outside() const {
    plug("pub0");
    ASSERT_EQ(sh("ip addr add 203.0.113.1/24 dev pub0"), 0);
    ASSERT_EQ(run("ip addr add 203.0.113.2/24 dev eth0"), 0);
    ASSERT_EQ(run("ip route add 198.51.100.0/24 via 203.0.113.1"), 0);
  }
};

// A guest asks dnsmasq for its lease and takes it, as the demo guest does.
std::string dhcp(const netns& guest) {
  auto text = guest.out("busybox udhcpc -i eth0 -n -q -t 5 -T 1 -s /bin/true");
  auto at = text.find("lease of ");
  if (at == std::string::npos) return "no lease: " + text;
  auto ip = text.substr(at + 9, text.find(' ', at + 9) - at - 9);
  guest.run("ip addr add " + ip + "/24 dev eth0");
  guest.run("ip route add default via " + ip.substr(0, ip.rfind('.')) + ".1");
  return ip;
}

net::network_view two_segments() {
  net::network_view v;
  v.physical_interface = "kumoul0";
  v.segments = {{1000, "111111111111", "sg-a", "10.16.0.0/24"}, {1001, "222222222222", "sg-b", "10.16.1.0/24"}};
  v.nics = {{"i-a1", 1000, "d0:0d:00:00:00:01", "10.16.0.10", "", "kt0000000000001"},
            {"i-a2", 1000, "d0:0d:00:00:00:02", "10.16.0.11", "", "kt0000000000002"},
            {"i-b1", 1001, "d0:0d:00:00:00:03", "10.16.1.10", "198.51.100.10", "kt0000000000003"}};
  // Group b admits ping from the outside only: not from group a's segment.
  v.ingress = {{1001, "icmp", -1, -1, "203.0.113.0/24", 0}};
  return v;
}

class KernelDataplane : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = std::filesystem::temp_directory_path() / ("kumo-net-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    ASSERT_EQ(sh("ip link add kumoul0 type veth peer name kumoul1 && ip link set kumoul1 up && ip addr add 192.0.2.1/24 dev kumoul0 && ip link set kumoul0 up"), 0);
    dp = make();
    ASSERT_TRUE(dp);
  }
  void TearDown() override {
    if (dp) dp->stop();
    sh("nft delete table ip kumo");
    for (auto l : {"kbr1000", "kbr1001", "kbr1002", "kvx1000", "kvx1001", "kvx1002", "kumoul0", "pub0", "kbr-lan"}) sh(std::string("ip link del ") + l);
    std::filesystem::remove_all(dir);
  }
  std::unique_ptr<net::dataplane> make() {
    std::string error;
    auto d = net::make_kernel_dataplane({dir.string(), true}, error);
    EXPECT_TRUE(d) << error;
    return d;
  }
  net::reconcile_result apply(const net::network_view& v) {
    auto r = dp->reconcile(v);
    EXPECT_TRUE(r.ok) << r.error;
    return r;
  }
  std::filesystem::path dir;
  std::unique_ptr<net::dataplane> dp;
};

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += x + "\n";
  return s;
}

TEST_F(KernelDataplane, GuestsGetTheirLeaseSegmentsAreIsolatedAndElasticIpsReachTheirGuest) {
  auto view = two_segments();
  netns a1, a2, b1, outside;
  a1.plug("kt0000000000001", "d0:0d:00:00:00:01");
  a2.plug("kt0000000000002", "d0:0d:00:00:00:02");
  b1.plug("kt0000000000003", "d0:0d:00:00:00:03");
  outside.become_the_outside();

  apply(view);
  EXPECT_NE(output("ip -d link show kvx1000"), "");
  EXPECT_NE(output("ip -d link show kvx1000").find("vxlan id 1000"), std::string::npos) << output("ip -d link show kvx1000");
  EXPECT_NE(output("ip addr show kbr1001").find("10.16.1.1/24"), std::string::npos);
  EXPECT_NE(output("ip link show kt0000000000003").find("master kbr1001"), std::string::npos)
      << "the data plane plugs taps into their segment's bridge";
  EXPECT_EQ(apply(view).repairs, std::vector<std::string>{}) << "a second pass with nothing changed repairs nothing";

  EXPECT_EQ(dhcp(a1), "10.16.0.10");
  EXPECT_EQ(dhcp(a2), "10.16.0.11");
  EXPECT_EQ(dhcp(b1), "10.16.1.10");
  EXPECT_TRUE(a1.ping("10.16.0.11")) << "one group, one segment: guests reach each other";
  EXPECT_FALSE(a1.ping("10.16.0.1")) << "the host answers a guest only DHCP and metadata";
  EXPECT_FALSE(a1.ping("10.16.1.10")) << "group b does not admit group a";
  EXPECT_TRUE(outside.ping("198.51.100.10")) << "the elastic IP reaches its guest\n" << output("nft list table ip kumo");
  EXPECT_FALSE(outside.ping("10.16.0.10")) << "a guest without a public IP is not reachable from outside";

  // Disassociate: the mapping goes, as one map element.
  view.nics[2].public_ip.clear();
  EXPECT_EQ(apply(view).repairs, std::vector<std::string>{}) << "an update is not a repair";
  EXPECT_FALSE(outside.ping("198.51.100.10"));
  // Associate it with a1 instead (group a admits nothing from outside, so
  // prove the mapping by the table instead of a ping).
  view.nics[0].public_ip = "198.51.100.10";
  apply(view);
  EXPECT_NE(output("nft list map ip kumo eip_dnat").find("198.51.100.10 : 10.16.0.10"), std::string::npos);
}

TEST_F(KernelDataplane, EgressRulesLimitWhereGuestsSend) {
  auto view = two_segments();
  view.ingress.push_back({1000, "icmp", -1, -1, "0.0.0.0/0", 0});  // a1 admits ping from anywhere
  view.egress = {{1001, "icmp", -1, -1, "203.0.113.0/24", 0}};     // b1 may only ping the outside
  netns a1, b1, outside;
  a1.plug("kt0000000000001", "d0:0d:00:00:00:01");
  b1.plug("kt0000000000003", "d0:0d:00:00:00:03");
  outside.become_the_outside();
  ASSERT_EQ(outside.run("ip route add 10.16.0.0/16 via 203.0.113.1"), 0);  // a1 has no public IP
  apply(view);
  ASSERT_EQ(dhcp(a1), "10.16.0.10");
  ASSERT_EQ(dhcp(b1), "10.16.1.10");
  EXPECT_TRUE(b1.ping("203.0.113.2")) << output("nft list table ip kumo");
  EXPECT_FALSE(b1.ping("10.16.0.10")) << "a1 would admit it, but b1's group may not send there";
  EXPECT_TRUE(outside.ping("10.16.0.10")) << "a1 admits ping from anywhere";
  view.egress.push_back({1001, "-1", -1, -1, "0.0.0.0/0", 0});
  apply(view);
  EXPECT_TRUE(b1.ping("10.16.0.10")) << "with egress to anywhere it may";
}

TEST_F(KernelDataplane, DriftIsRepairedAndReported) {
  auto view = two_segments();
  netns b1;
  b1.plug("kt0000000000003", "d0:0d:00:00:00:03");
  apply(view);
  // The Eucalyptus failure: a stale DNAT for an address nobody holds; plus a
  // lost correct one, a deleted bridge and a tap out of its bridge.
  ASSERT_EQ(sh("nft add element ip kumo eip_dnat { 198.51.100.77 : 10.16.0.99 }"), 0);
  ASSERT_EQ(sh("nft delete element ip kumo eip_dnat { 198.51.100.10 }"), 0);
  ASSERT_EQ(sh("ip link del kbr1000"), 0);
  ASSERT_EQ(sh("ip link set kt0000000000003 nomaster"), 0);
  ASSERT_EQ(sh("ip link add kbr4242 type bridge"), 0);
  auto r = apply(view);
  auto text = joined(r.repairs);
  EXPECT_NE(text.find("removed DNAT 198.51.100.77 -> 10.16.0.99 nobody asked for"), std::string::npos) << text;
  EXPECT_NE(text.find("restored DNAT 198.51.100.10 -> 10.16.1.10"), std::string::npos) << text;
  EXPECT_NE(text.find("created link kbr1000 (it was missing)"), std::string::npos) << text;
  EXPECT_NE(text.find("plugged tap kt0000000000003 of i-b1 back into kbr1001"), std::string::npos) << text;
  EXPECT_NE(text.find("removed link kbr4242 nobody asked for"), std::string::npos) << text;
  auto dnat = output("nft list map ip kumo eip_dnat");
  EXPECT_EQ(dnat.find("198.51.100.77"), std::string::npos) << dnat;
  EXPECT_NE(dnat.find("198.51.100.10 : 10.16.1.10"), std::string::npos) << dnat;
  EXPECT_NE(output("ip addr show kbr1000").find("10.16.0.1/24"), std::string::npos);
  EXPECT_NE(output("ip -d link show kvx1000").find("master kbr1000"), std::string::npos);
  EXPECT_EQ(apply(view).repairs, std::vector<std::string>{});

  // A rule added by hand is drift too: the table is replaced.
  ASSERT_EQ(sh("nft add rule ip kumo forward accept"), 0);
  text = joined(apply(view).repairs);
  EXPECT_NE(text.find("chains, rules or map elements of table ip kumo differed"), std::string::npos) << text;
  // An element kumo cannot have written (here with a comment) never blocks
  // the maps: the table is replaced.
  ASSERT_EQ(sh("nft add element ip kumo eip_dnat '{ 198.51.100.55 comment \"x\" : 10.16.0.50 }'"), 0);
  text = joined(apply(view).repairs);
  EXPECT_NE(text.find("map elements of table ip kumo differed"), std::string::npos) << text;
  EXPECT_EQ(output("nft list map ip kumo eip_dnat").find("198.51.100.55"), std::string::npos);
  EXPECT_EQ(apply(view).repairs, std::vector<std::string>{});
  // Links that only look like kumo's are not kumo's.
  ASSERT_EQ(sh("ip link add kbr-lan type bridge"), 0);
  EXPECT_EQ(apply(view).repairs, std::vector<std::string>{});
  EXPECT_EQ(sh("ip link show kbr-lan"), 0);

  // dnsmasq killed: restarted.
  auto pid = output("cat " + (dir / "dnsmasq.pid").string());
  pid.erase(pid.find_last_not_of("\n") + 1);
  ASSERT_EQ(sh("kill -9 " + pid), 0);
  // Until it died (it is this process's child: a zombie until reaped).
  for (int i = 0; i < 100 && process::alive(std::stoi(pid)); ++i) usleep(20'000);
  text = joined(apply(view).repairs);
  EXPECT_NE(text.find("restarted dnsmasq"), std::string::npos) << text;
}

// Passes that only move elastic IPs skip listing the table while nftables'
// generation is the one kumo's own write left; any other commit, right after
// such a pass too, is still seen and repaired.
TEST_F(KernelDataplane, CommitsOfOthersAreSeenAfterElementOnlyUpdates) {
  auto view = two_segments();
  apply(view);
  for (int round = 0; round < 3; ++round) {
    view.nics[0].public_ip = "198.51.100.2" + std::to_string(round);
    EXPECT_EQ(apply(view).repairs, std::vector<std::string>{});
    ASSERT_EQ(sh("nft add element ip kumo eip_snat { 10.16.0.99 : 198.51.100.99 }"), 0);
    auto text = joined(apply(view).repairs);
    EXPECT_NE(text.find("removed SNAT 10.16.0.99 -> 198.51.100.99 nobody asked for"), std::string::npos)
        << "round " << round << ": " << text;
    EXPECT_EQ(output("nft list map ip kumo eip_snat").find("10.16.0.99"), std::string::npos);
  }
  // A commit to another table moves the generation too: listed, nothing to repair.
  ASSERT_EQ(sh("nft add table ip other"), 0);
  EXPECT_EQ(apply(view).repairs, std::vector<std::string>{});
  ASSERT_EQ(sh("nft delete table ip other"), 0);
  // And a hand-made change to the rules after an element-only pass.
  view.nics[0].public_ip.clear();
  apply(view);
  ASSERT_EQ(sh("nft add rule ip kumo forward accept"), 0);
  auto text = joined(apply(view).repairs);
  EXPECT_NE(text.find("chains, rules or map elements of table ip kumo differed"), std::string::npos) << text;
  EXPECT_EQ(output("nft list chain ip kumo forward").find("\t\taccept\n"), std::string::npos);
}

// Passes skip reading every link while rtnetlink announces no change; a
// change made after such passes is announced, read and repaired.
TEST_F(KernelDataplane, LinkChangesAreSeenAfterPassesThatSkippedReadingLinks) {
  auto view = two_segments();
  netns b1;
  b1.plug("kt0000000000003", "d0:0d:00:00:00:03");
  apply(view);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(apply(view).repairs, std::vector<std::string>{});
  ASSERT_EQ(sh("ip link set kt0000000000003 nomaster"), 0);
  EXPECT_EQ(apply(view).repairs, std::vector<std::string>{"plugged tap kt0000000000003 of i-b1 back into kbr1001"});
  for (int i = 0; i < 3; ++i) EXPECT_EQ(apply(view).repairs, std::vector<std::string>{});
  ASSERT_EQ(sh("ip addr del 10.16.0.1/24 dev kbr1000"), 0);
  EXPECT_EQ(apply(view).repairs, std::vector<std::string>{"gave kbr1000 its gateway address 10.16.0.1/24"});
  EXPECT_EQ(apply(view).repairs, std::vector<std::string>{});
  ASSERT_EQ(sh("ip link set kvx1001 down"), 0);
  EXPECT_EQ(apply(view).repairs, std::vector<std::string>{"set link kvx1001 up (it was down)"});
  EXPECT_NE(output("ip link show kt0000000000003").find("master kbr1001"), std::string::npos);
  EXPECT_NE(output("ip addr show kbr1000").find("10.16.0.1/24"), std::string::npos);
}

TEST_F(KernelDataplane, AFlushedTableIsRebuiltIdenticalByANewProcess) {
  auto view = two_segments();
  apply(view);
  const auto before = output("nft list table ip kumo");
  ASSERT_NE(before.find("198.51.100.10 : 10.16.1.10"), std::string::npos) << before;
  ASSERT_EQ(sh("nft delete table ip kumo"), 0);
  dp->stop();
  dp = make();  // as after a kumod restart: nothing in memory
  auto r = apply(view);
  EXPECT_EQ(output("nft list table ip kumo"), before);
  EXPECT_NE(joined(r.repairs).find("table ip kumo was missing; rebuilt it from the log"), std::string::npos)
      << joined(r.repairs);
  // A restart with everything in place repairs nothing.
  dp = make();
  EXPECT_EQ(apply(view).repairs, std::vector<std::string>{});
}

// The network of two_segments() after i-a1 was terminated and i-a3 got its
// address (the segment hands out the lowest free one).
net::network_view a1_replaced_by_a3() {
  auto view = two_segments();
  view.nics.erase(view.nics.begin());
  view.nics.insert(view.nics.begin() + 1, {"i-a3", 1000, "d0:0d:00:00:00:07", "10.16.0.10", "", "kt0000000000007"});
  return view;
}

std::string leases_in(const std::filesystem::path& dir) { return output("cat " + (dir / "leases").string()); }

// Guest a1 holds its lease on 10.16.0.10 from the data plane of
// two_segments(); a3, whose NIC gets that address next, is plugged in.
struct a1_leased {
  netns a1, a3;
  explicit a1_leased(const std::function<net::reconcile_result(const net::network_view&)>& apply) {
    a1.plug("kt0000000000001", "d0:0d:00:00:00:01");
    a3.plug("kt0000000000007", "d0:0d:00:00:00:07");
    apply(two_segments());
    EXPECT_EQ(dhcp(a1), "10.16.0.10");
  }
};

// dnsmasq remembers a lease for 12 h and gives no address leased to another
// MAC: once the log gives a terminated instance's address to a new NIC, the
// running dnsmasq forgets the old lease (dhcp_release) in the same pass.
TEST_F(KernelDataplane, AnAddressGoesToItsNewMacAtOnceAfterItsNicIsGone) {
  a1_leased guests([&](const net::network_view& v) { return apply(v); });
  ASSERT_FALSE(HasFailure());
  const auto pid = output("cat " + (dir / "dnsmasq.pid").string());
  ASSERT_NE(leases_in(dir).find("d0:0d:00:00:00:01 10.16.0.10"), std::string::npos) << leases_in(dir);

  // (Plugging a3's stand-in tap into its bridge is one; releasing a1's lease is not.)
  EXPECT_EQ(joined(apply(a1_replaced_by_a3()).repairs).find("DHCP lease"), std::string::npos)
      << "applying the log is not a repair";
  EXPECT_EQ(leases_in(dir).find("d0:0d:00:00:00:01"), std::string::npos) << "gone before the next guest asks";
  EXPECT_EQ(dhcp(guests.a3), "10.16.0.10");
  EXPECT_NE(leases_in(dir).find("d0:0d:00:00:00:07 10.16.0.10"), std::string::npos) << leases_in(dir);
  EXPECT_EQ(output("cat " + (dir / "dnsmasq.pid").string()), pid) << "released, not restarted";
}

// kumod died after writing the hosts file, before releasing and before
// telling dnsmasq (SIGHUP): the next process's first pass finds the stale
// lease in the running dnsmasq, releases it, records that as a repair, and
// has dnsmasq reread the hosts.
TEST_F(KernelDataplane, AStaleLeaseFoundByTheNextProcessIsReleasedAndReported) {
  a1_leased guests([&](const net::network_view& v) { return apply(v); });
  ASSERT_FALSE(HasFailure());
  const auto after = net::desired(a1_replaced_by_a3(), dir.string());
  std::ofstream(dir / "hosts") << after.dnsmasq_hosts;
  const auto pid = output("cat " + (dir / "dnsmasq.pid").string());
  dp = make();  // the crash: the old one never stops dnsmasq
  EXPECT_NE(joined(apply(a1_replaced_by_a3()).repairs)
                .find("released the DHCP lease 10.16.0.10 of d0:0d:00:00:00:01 (the log gives 10.16.0.10 to "
                      "d0:0d:00:00:00:07)\n"),
            std::string::npos);
  EXPECT_EQ(dhcp(guests.a3), "10.16.0.10");
  EXPECT_EQ(output("cat " + (dir / "dnsmasq.pid").string()), pid) << "adopted, not restarted";
}

// dnsmasq not running (kumod stopped it, or it died): its lease file is
// rewritten from the log before it starts, keeping the leases the log backs.
TEST_F(KernelDataplane, ALeaseFileIsRewrittenFromTheLogBeforeDnsmasqStarts) {
  netns b1;
  b1.plug("kt0000000000003", "d0:0d:00:00:00:03");
  a1_leased guests([&](const net::network_view& v) { return apply(v); });
  ASSERT_FALSE(HasFailure());
  ASSERT_EQ(dhcp(b1), "10.16.1.10");
  dp->stop();
  // kumod's shutdown: a pass still queued after stop() starts nothing.
  EXPECT_FALSE(dp->reconcile(two_segments()).ok);
  EXPECT_FALSE(std::filesystem::exists(dir / "dnsmasq.pid"));
  dp = make();
  apply(a1_replaced_by_a3());
  const auto leases = leases_in(dir);
  EXPECT_EQ(leases.find("d0:0d:00:00:00:01"), std::string::npos) << leases;
  EXPECT_NE(leases.find("d0:0d:00:00:00:03 10.16.1.10"), std::string::npos) << "b1's lease stays\n" << leases;
  EXPECT_EQ(dhcp(guests.a3), "10.16.0.10");
}

// kumod died after writing a new segment list, before restarting dnsmasq:
// the next process restarts the dnsmasq it adopts, and the new segment's
// guest gets its lease.
TEST_F(KernelDataplane, AnAdoptedDnsmasqOnAnOlderSegmentListIsRestarted) {
  apply(two_segments());
  auto view = two_segments();
  view.segments.push_back({1002, "333333333333", "sg-c", "10.16.2.0/24"});
  view.nics.push_back({"i-c1", 1002, "d0:0d:00:00:00:0c", "10.16.2.10", "", "kt000000000000c"});
  const auto after = net::desired(view, dir.string());
  std::ofstream(dir / "dnsmasq.conf") << after.dnsmasq_config;
  std::ofstream(dir / "hosts") << after.dnsmasq_hosts;
  const auto pid = output("cat " + (dir / "dnsmasq.pid").string());
  netns c1;
  c1.plug("kt000000000000c", "d0:0d:00:00:00:0c");
  dp = make();
  auto text = joined(apply(view).repairs);
  EXPECT_NE(text.find("it ran an older segment list"), std::string::npos) << text;
  EXPECT_NE(output("cat " + (dir / "dnsmasq.pid").string()), pid);
  EXPECT_EQ(dhcp(c1), "10.16.2.10");
}

// A dnsmasq that runs our config while its pid file does not name it (kumod
// died between starting it and its writing the file) is stopped before
// another starts: two would both answer, one of them unmanaged.
TEST_F(KernelDataplane, ADnsmasqItsPidFileDoesNotNameIsStoppedBeforeAnotherStarts) {
  apply(two_segments());
  const auto pid = output("cat " + (dir / "dnsmasq.pid").string());
  std::filesystem::remove(dir / "dnsmasq.pid");
  auto text = joined(apply(two_segments()).repairs);
  EXPECT_NE(text.find("stopped dnsmasq (pid " + pid.substr(0, pid.find('\n')) + "): it ran our config without its pid file"),
            std::string::npos)
      << text;
  int running = 0;  // live processes with our --conf-file argument
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    const auto name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos || !process::alive(std::stoi(name))) continue;
    for (const auto& a : process::arguments(std::stoi(name)))
      if (a == "--conf-file=" + (dir / "dnsmasq.conf").string()) ++running;
  }
  EXPECT_EQ(running, 1);
}

TEST_F(KernelDataplane, MalformedEntriesAreLeftOutNotApplied) {
  auto view = two_segments();
  view.nics.push_back({"i-bad", 1000, "d0:0d:00:00:00:09", "10.16.0.12; flush ruleset", "", "kt0000000000009"});
  view.segments.push_back({77, "333333333333", "sg-c", "not-a-subnet"});
  auto r = apply(view);
  EXPECT_TRUE(r.ok) << r.error;
  EXPECT_EQ(output("ip link show kbr77").find("kbr77:"), std::string::npos);
  EXPECT_EQ(output("nft list table ip kumo").find("flush"), std::string::npos);
}

}  // namespace

int main(int argc, char** argv) {
  // Everything below happens in a network namespace of this process alone.
  if (::geteuid() != 0 || ::unshare(CLONE_NEWNET) != 0) {
    std::fprintf(stderr, "net.kernel needs root (CAP_NET_ADMIN) to make its own network namespace\n");
    return 1;
  }
  std::system("ip link set lo up");
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
