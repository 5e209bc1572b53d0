// The libvirt driver against libvirt's in-process test:///default driver: the
// domain XML we generate, metadata round trips, state mapping, lifecycle
// events through the event loop thread, and error messages. No daemon, no
// guest (tests/hypervisor/libvirt_qemu_test.cpp boots a real one).
//
// test:///default is one shared in-memory host per process while any
// connection to it is open; each test keeps its own driver and removes what
// it defined.
#include "hypervisor/driver.h"
#include "lifecycle_recorder.h"

#include <gtest/gtest.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <chrono>
#include <condition_variable>
#include <atomic>
#include <mutex>
#include <thread>

using namespace kumo::hypervisor;
using namespace std::chrono_literals;

namespace {

constexpr const char* kUri = "test:///default";

using recorder = kumo::hypervisor::test::lifecycle_recorder;

class LibvirtTestDriver : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    drv = make_libvirt_driver(kUri, error);
    ASSERT_TRUE(drv) << error;
    // A second, raw connection to look at what the driver did.
    raw = virConnectOpen(kUri);
    ASSERT_NE(raw, nullptr) << virGetLastErrorMessage();
  }
  void TearDown() override {
    if (drv) {
      for (auto& n : defined) {
        drv->destroy(n);
        drv->undefine(n);
      }
    }
    if (raw) virConnectClose(raw);
    drv.reset();
  }

  domain_spec spec(const std::string& name) {
    defined.push_back(name);
    domain_spec s;
    s.name = name;
    s.account_id = "111122223333";
    s.instance_type = "t3.micro";
    s.vcpus = 2;
    s.memory_mib = 384;
    s.kernel = "/var/lib/kumo/guest/vmlinuz";
    s.initrd = "/var/lib/kumo/guest/initrd.img";
    s.cmdline = "console=ttyS0 kumo.instance_id=" + name;
    s.disks = {{"/var/lib/kumo/volumes/vol-1.img", "vda", "raw", false},
               {"/var/lib/kumo/volumes/vol-2.qcow2", "vdb", "qcow2", true}};
    s.nics = {{"d0:0d:00:00:00:01", "br-kumo", "tap-i1"}};
    s.console_log = "/var/lib/kumo/console/" + name + ".log";
    return s;
  }

  std::string xml_of(const std::string& name, unsigned flags = 0) {
    virDomainPtr d = virDomainLookupByName(raw, name.c_str());
    if (!d) return {};
    char* x = virDomainGetXMLDesc(d, flags);
    std::string s = x ? x : "";
    free(x);
    virDomainFree(d);
    return s;
  }

  std::unique_ptr<driver> drv;
  virConnectPtr raw = nullptr;
  std::vector<std::string> defined;
};

TEST_F(LibvirtTestDriver, DescribeNamesUriAndAccelerator) {
  auto d = drv->describe();
  EXPECT_NE(d.find("libvirt test:///default"), std::string::npos) << d;
  EXPECT_NE(d.find("accel="), std::string::npos) << d;
}

TEST_F(LibvirtTestDriver, ConnectFailureIsReportedWithUri) {
  std::string error;
  auto bad = make_libvirt_driver("test:///nonexistent/kumo-config.xml", error);
  EXPECT_FALSE(bad);
  EXPECT_NE(error.find("test:///nonexistent/kumo-config.xml"), std::string::npos) << error;
}

TEST_F(LibvirtTestDriver, DomainXmlCarriesTheSpec) {
  ASSERT_TRUE(drv->define(spec("i-xml1")));
  auto x = xml_of("i-xml1");
  ASSERT_FALSE(x.empty());
  EXPECT_NE(x.find("<domain type='qemu'"), std::string::npos) << x;
  EXPECT_NE(x.find("<memory unit='KiB'>393216</memory>"), std::string::npos) << x;
  EXPECT_NE(x.find(">2</vcpu>"), std::string::npos) << x;
  EXPECT_NE(x.find("machine='q35'"), std::string::npos) << x;
  EXPECT_NE(x.find("<kernel>/var/lib/kumo/guest/vmlinuz</kernel>"), std::string::npos) << x;
  EXPECT_NE(x.find("<initrd>/var/lib/kumo/guest/initrd.img</initrd>"), std::string::npos) << x;
  EXPECT_NE(x.find("<cmdline>console=ttyS0 kumo.instance_id=i-xml1</cmdline>"), std::string::npos) << x;
  EXPECT_NE(x.find("<source file='/var/lib/kumo/volumes/vol-1.img'/>"), std::string::npos) << x;
  EXPECT_NE(x.find("<target dev='vda' bus='virtio'/>"), std::string::npos) << x;
  EXPECT_NE(x.find("type='qcow2'"), std::string::npos) << x;
  EXPECT_NE(x.find("<readonly/>"), std::string::npos) << x;
  EXPECT_NE(x.find("<interface type='bridge'>"), std::string::npos) << x;
  EXPECT_NE(x.find("<source bridge='br-kumo'/>"), std::string::npos) << x;
  EXPECT_NE(x.find("<target dev='tap-i1'/>"), std::string::npos) << x;
  EXPECT_NE(x.find("<mac address='d0:0d:00:00:00:01'/>"), std::string::npos) << x;
  EXPECT_NE(x.find("<model type='virtio'/>"), std::string::npos) << x;
  EXPECT_NE(x.find("<serial type='file'>"), std::string::npos) << x;
  EXPECT_NE(x.find("path='/var/lib/kumo/console/i-xml1.log'"), std::string::npos) << x;
  EXPECT_NE(x.find("<on_poweroff>destroy</on_poweroff>"), std::string::npos) << x;
  EXPECT_NE(x.find("<on_reboot>restart</on_reboot>"), std::string::npos) << x;
  EXPECT_NE(x.find("<on_crash>destroy</on_crash>"), std::string::npos) << x;
  EXPECT_NE(x.find("https://kumo.dev/xmlns/instance/1"), std::string::npos) << x;
  EXPECT_NE(x.find("111122223333</kumo:account>"), std::string::npos) << x;
  EXPECT_NE(x.find("t3.micro</kumo:type>"), std::string::npos) << x;
  EXPECT_EQ(x.find("host-passthrough"), std::string::npos) << x;
  // Spare PCIe root ports for hot-plug beyond the 3 devices defined.
  size_t ports = 0;
  for (size_t p = 0; (p = x.find("model='pcie-root-port'", p)) != std::string::npos; ++p) ++ports;
  EXPECT_GE(ports, 3u + 4u) << x;
}

TEST_F(LibvirtTestDriver, NicWithoutBridgeIsAnUnpluggedTap) {
  auto s = spec("i-xml2");
  s.nics = {{"d0:0d:00:00:00:02", "", "tap-i2"}};
  ASSERT_TRUE(drv->define(s));
  auto x = xml_of("i-xml2");
  EXPECT_NE(x.find("<interface type='ethernet'>"), std::string::npos) << x;
  EXPECT_EQ(x.find("<source bridge="), std::string::npos) << x;
  EXPECT_NE(x.find("<mac address='d0:0d:00:00:00:02'/>"), std::string::npos) << x;
}

TEST_F(LibvirtTestDriver, EveryStringIsEscapedAndMetadataRoundTrips) {
  auto s = spec("i-esc<&>'\"");
  s.account_id = "acct<&>'\"x";
  s.instance_type = "</kumo:type><evil/>";
  s.cmdline = "a='b' c=\"d\" e<f&g";
  s.console_log = "/tmp/con'sole&.log";
  ASSERT_TRUE(drv->define(s)) << "unescaped input would make the XML invalid";
  bool found = false;
  for (auto& i : drv->list()) {
    if (i.name != s.name) continue;
    found = true;
    EXPECT_TRUE(i.kumo);
    EXPECT_EQ(i.account_id, s.account_id);
    EXPECT_EQ(i.state, domain_state::shut_off);
  }
  EXPECT_TRUE(found);
  auto x = xml_of(s.name);
  EXPECT_EQ(x.find("<evil/>"), std::string::npos) << x;
  EXPECT_NE(x.find("a=&apos;b&apos; c=&quot;d&quot; e&lt;f&amp;g"), std::string::npos) << x;
}

TEST_F(LibvirtTestDriver, ListTellsKumoDomainsFromOthers) {
  ASSERT_TRUE(drv->define(spec("i-list1")));
  bool ours = false, theirs = false;
  for (auto& i : drv->list()) {
    if (i.name == "i-list1") {
      ours = true;
      EXPECT_TRUE(i.kumo);
      EXPECT_EQ(i.account_id, "111122223333");
      EXPECT_EQ(i.state, domain_state::shut_off);
    }
    // The test driver's built-in, running domain "test" has no kumo metadata.
    if (i.name == "test") {
      theirs = true;
      EXPECT_FALSE(i.kumo);
      EXPECT_TRUE(i.account_id.empty());
      EXPECT_EQ(i.state, domain_state::running);
    }
  }
  EXPECT_TRUE(ours);
  EXPECT_TRUE(theirs);
}

TEST_F(LibvirtTestDriver, LifecycleWithEvents) {
  recorder rec;
  rec.attach(*drv);
  const std::string n = "i-life1";
  EXPECT_EQ(drv->state(n), domain_state::absent);
  ASSERT_TRUE(drv->define(spec(n)));
  EXPECT_EQ(drv->state(n), domain_state::shut_off);

  ASSERT_TRUE(drv->start(n));
  EXPECT_EQ(drv->state(n), domain_state::running);
  EXPECT_TRUE(rec.wait_for(n, "started", domain_state::running)) << rec.dump();
  auto again = drv->start(n);
  EXPECT_FALSE(again);
  EXPECT_NE(again.message.find(n), std::string::npos) << again.message;

  // Redefining a running domain is refused (it would only be a pending config).
  EXPECT_FALSE(drv->define(spec(n)));
  auto u = drv->undefine(n);
  EXPECT_FALSE(u) << "undefining a running domain must be refused";
  EXPECT_NE(u.message.find(n), std::string::npos) << u.message;

  ASSERT_TRUE(drv->reboot(n, true));
  ASSERT_TRUE(drv->shutdown(n));  // the test driver's guests obey at once
  EXPECT_EQ(drv->state(n), domain_state::shut_off);
  EXPECT_TRUE(rec.wait_for(n, "shutdown", domain_state::shut_off)) << rec.dump();

  ASSERT_TRUE(drv->start(n));
  ASSERT_TRUE(drv->destroy(n));
  EXPECT_EQ(drv->state(n), domain_state::shut_off);
  EXPECT_TRUE(rec.wait_for(n, "destroyed", domain_state::shut_off)) << rec.dump();
  EXPECT_TRUE(drv->destroy(n)) << "destroying a stopped domain is not an error";

  ASSERT_TRUE(drv->undefine(n));
  EXPECT_EQ(drv->state(n), domain_state::absent);
  EXPECT_TRUE(rec.wait_for(n, "undefined", domain_state::absent)) << rec.dump();
  EXPECT_TRUE(drv->undefine(n)) << "undefining an unknown domain is not an error";
  EXPECT_TRUE(drv->destroy(n)) << "destroying an unknown domain is not an error";
}

TEST_F(LibvirtTestDriver, RedefineWhileShutOffReplacesTheDefinition) {
  auto s = spec("i-redef1");
  ASSERT_TRUE(drv->define(s));
  s.memory_mib = 512;
  s.account_id = "999988887777";
  ASSERT_TRUE(drv->define(s)) << "a second define must replace, not clash on the UUID";
  EXPECT_NE(xml_of(s.name).find("<memory unit='KiB'>524288</memory>"), std::string::npos);
  bool seen = false;
  for (auto& i : drv->list()) {
    if (i.name != s.name) continue;
    seen = true;
    EXPECT_EQ(i.account_id, "999988887777");
  }
  EXPECT_TRUE(seen);
}

TEST_F(LibvirtTestDriver, ErrorsNameTheDomainAndCarryLibvirtsText) {
  auto r = drv->start("i-missing1");
  ASSERT_FALSE(r);
  EXPECT_NE(r.message.find("i-missing1"), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("Domain not found"), std::string::npos) << r.message;

  // The test driver has no device hot-plug: the failure says so, with context.
  ASSERT_TRUE(drv->define(spec("i-attach1")));
  auto a = drv->attach_disk("i-attach1", {"/tmp/x.img", "vdc"});
  ASSERT_FALSE(a);
  EXPECT_NE(a.message.find("i-attach1"), std::string::npos) << a.message;
  EXPECT_NE(a.message.find("vdc"), std::string::npos) << a.message;
  EXPECT_NE(a.message.find("not supported"), std::string::npos) << a.message;
}

TEST_F(LibvirtTestDriver, ConsoleOutputIsTheTailOfTheConsoleFile) {
  char tmpl[] = "/tmp/kumo-con'sole&-XXXXXX";  // quote and ampersand: escaped in, unescaped out
  int fd = mkstemp(tmpl);
  ASSERT_GE(fd, 0);
  std::string content = "line one\nkumo-guest: booted\n";
  ASSERT_EQ(write(fd, content.data(), content.size()), static_cast<ssize_t>(content.size()));
  close(fd);
  auto s = spec("i-console1");
  s.console_log = tmpl;
  ASSERT_TRUE(drv->define(s));
  EXPECT_EQ(drv->console_output("i-console1"), content);
  EXPECT_EQ(drv->console_output("i-console1", 7), "booted\n");
  EXPECT_EQ(drv->console_output("i-unknown1"), "");
  unlink(tmpl);
}

// The node calls the driver from several threads at once: every call must
// still succeed and every domain's events arrive.
TEST_F(LibvirtTestDriver, CallsFromSeveralThreads) {
  recorder rec;
  rec.attach(*drv);
  constexpr int kThreads = 4, kRounds = 10;
  std::vector<domain_spec> specs;  // built here: spec() is not thread-safe
  for (int t = 0; t < kThreads; ++t) specs.push_back(spec("i-mt" + std::to_string(t)));
  std::atomic<int> failures{0};
  std::mutex msg_mutex;
  std::string first_failure;
  auto check = [&](const result& r) {
    if (r) return;
    if (failures++ == 0) {
      std::lock_guard l(msg_mutex);
      first_failure = r.message;
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const auto& n = specs[t].name;
      for (int i = 0; i < kRounds; ++i) {
        check(drv->define(specs[t]));
        check(drv->start(n));
        if (drv->state(n) != domain_state::running) ++failures;
        if (drv->list().empty()) ++failures;
        check(drv->destroy(n));
        check(drv->undefine(n));
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0) << first_failure;
  for (auto& s : specs) EXPECT_TRUE(rec.wait_for(s.name, "destroyed", domain_state::shut_off)) << rec.dump();
}

// The event thread blocks in libvirt's loop; destroying the driver must wake
// and join it at once (test:// has no timers that would wake it anyway).
TEST(LibvirtDriverLifetime, DestructionStopsTheEventThreadPromptly) {
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 3; ++i) {
    std::string error;
    auto d = make_libvirt_driver(kUri, error);
    ASSERT_TRUE(d) << error;
    // Let the loop thread reach its blocking wait before asking it to stop.
    EXPECT_EQ(d->state("i-none"), domain_state::absent);
  }
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
}

}  // namespace
