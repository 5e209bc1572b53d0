// The libvirt driver on a REAL QEMU guest through qemu:///system: tools/libvirtd
// starts the daemon, tools/mkimage builds the demo guest (it prints
// "kumo-guest: ..." lines on its serial console), and one test walks a domain
// through its whole life: define, boot, list, lifecycle events, hot-plug and
// unplug of a disk, hard reset, ACPI shutdown, start again, destroy, undefine.
// Fails (never skips) when libvirtd or the guest cannot be had.
#include "hypervisor/driver.h"
#include "lifecycle_recorder.h"
#include "tests/support/subprocess.h"

#include <gtest/gtest.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <sstream>
#include <thread>
#include <unistd.h>

using namespace kumo::hypervisor;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

constexpr const char* kUri = "qemu:///system";
constexpr uint64_t kGiB = 1024ull * 1024 * 1024;

using recorder = kumo::hypervisor::test::lifecycle_recorder;

size_t count_lines(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t p = 0; (p = text.find(needle, p)) != std::string::npos; p += needle.size()) ++n;
  return n;
}

// Whether some line starts with `prefix` and ends with `suffix`.
bool has_line(const std::string& text, const std::string& prefix, const std::string& suffix) {
  size_t start = 0;
  while (start < text.size()) {
    auto end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    auto line = text.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.rfind(prefix, 0) == 0 && line.size() >= suffix.size() &&
        line.compare(line.size() - suffix.size(), suffix.size(), suffix) == 0)
      return true;
    start = end + 1;
  }
  return false;
}

// Polls `probe` until true or the deadline passes (no fixed sleeps as readiness).
template <class F>
bool eventually(F probe, std::chrono::milliseconds timeout) {
  auto deadline = clock_type::now() + timeout;
  for (;;) {
    if (probe()) return true;
    if (clock_type::now() >= deadline) return false;
    std::this_thread::sleep_for(100ms);
  }
}

double seconds_since(clock_type::time_point t) {
  return std::chrono::duration<double>(clock_type::now() - t).count();
}

class RealGuest : public ::testing::Test {
 protected:
  // Once per process: the daemon and the guest image. Any failure is kept and
  // fails every test (a missing hypervisor is an error, not a skip).
  static void SetUpTestSuite() {
    setup_error_.clear();
    if (geteuid() != 0) {
      setup_error_ = "the real-guest tests need root (libvirtd runs QEMU as root here)";
      return;
    }
    auto t0 = clock_type::now();
    auto lv = kumo::test::run({std::string(KUMO_SOURCE_DIR) + "/tools/libvirtd"}, 90s);
    if (lv.exit_code != 0) {
      setup_error_ = "tools/libvirtd failed (exit " + std::to_string(lv.exit_code) +
                     "), cannot test with a real guest:\n" + lv.output;
      return;
    }
    std::cout << "[ timing   ] tools/libvirtd " << seconds_since(t0) << " s\n";
    t0 = clock_type::now();
    guest_dir_ = std::string(KUMO_BUILD_DIR) + "/guest";
    auto mk = kumo::test::run({std::string(KUMO_SOURCE_DIR) + "/tools/mkimage", guest_dir_}, 600s);
    if (mk.exit_code != 0) {
      setup_error_ = "tools/mkimage " + guest_dir_ + " failed (exit " + std::to_string(mk.exit_code) + "):\n" +
                     mk.output;
      return;
    }
    for (auto f : {"/vmlinuz", "/initrd.img"}) {
      if (!std::filesystem::exists(guest_dir_ + f)) {
        setup_error_ = "tools/mkimage did not produce " + guest_dir_ + f;
        return;
      }
    }
    std::cout << "[ timing   ] tools/mkimage " << seconds_since(t0) << " s\n";
  }

  void SetUp() override {
    if (!setup_error_.empty()) FAIL() << setup_error_;
    std::string error;
    drv_ = make_libvirt_driver(kUri, error);
    ASSERT_TRUE(drv_) << "libvirt driver on " << kUri << ": " << error;
    raw_ = virConnectOpen(kUri);
    ASSERT_NE(raw_, nullptr) << virGetLastErrorMessage();
    rec_.attach(*drv_);
  }

  // Cleans up in every path, even after a failed assertion mid-test.
  void TearDown() override {
    for (auto& n : names_) {
      if (drv_) {
        drv_->destroy(n);
        drv_->undefine(n);
      }
      if (raw_) {
        // Whatever the driver could not remove (e.g. a domain it never saw).
        if (virDomainPtr d = virDomainLookupByName(raw_, n.c_str())) {
          virDomainDestroy(d);
          virDomainUndefine(d);
          virDomainFree(d);
        }
      }
    }
    drv_.reset();  // before the files go: stops the event thread first
    if (raw_) virConnectClose(raw_);
    // libvirt keeps a QEMU log per domain name; ours are unique per run, so
    // drop them unless they may explain a failure.
    if (!HasFailure()) {
      std::error_code ec;
      for (auto& n : names_) std::filesystem::remove("/var/log/libvirt/qemu/" + n + ".log", ec);
    }
  }

  std::string unique_name(const std::string& tag) {
    static int counter = 0;
    auto n = "i-test" + std::to_string(getpid()) + tag + std::to_string(++counter);
    names_.push_back(n);
    return n;
  }

  static std::string make_sparse(const std::string& path, uint64_t bytes) {
    std::ofstream(path).close();
    std::filesystem::resize_file(path, bytes);
    return path;
  }

  // The live definition, to see what the guest really has right now.
  std::string live_xml(const std::string& name) {
    virDomainPtr d = virDomainLookupByName(raw_, name.c_str());
    if (!d) return {};
    char* x = virDomainGetXMLDesc(d, 0);
    std::string s = x ? x : "";
    free(x);
    virDomainFree(d);
    return s;
  }
  std::string inactive_xml(const std::string& name) {
    virDomainPtr d = virDomainLookupByName(raw_, name.c_str());
    if (!d) return {};
    char* x = virDomainGetXMLDesc(d, VIR_DOMAIN_XML_INACTIVE);
    std::string s = x ? x : "";
    free(x);
    virDomainFree(d);
    return s;
  }

  bool console_has(const std::string& name, const std::string& needle, size_t times, std::chrono::milliseconds t) {
    return eventually([&] { return count_lines(drv_->console_output(name), needle) >= times; }, t);
  }

  static inline std::string setup_error_;
  static inline std::string guest_dir_;
  std::unique_ptr<driver> drv_;
  virConnectPtr raw_ = nullptr;
  recorder rec_;
  std::vector<std::string> names_;
  kumo::test::temp_dir tmp_;
};

TEST_F(RealGuest, FullLifecycle) {
  auto t_test = clock_type::now();
  std::cout << "[ driver   ] " << drv_->describe() << "\n";
  // TCG unless KVM is asked for: nested KVM hangs on the machines we know.
  if (!std::getenv("KUMO_ACCEL")) {
    EXPECT_EQ(drv_->describe(), "libvirt qemu:///system, accel=tcg");
  }

  const auto name = unique_name("life");
  domain_spec s;
  s.name = name;
  s.account_id = "123456789012";
  s.instance_type = "t3.nano";
  s.vcpus = 1;
  s.memory_mib = 256;
  s.kernel = guest_dir_ + "/vmlinuz";
  s.initrd = guest_dir_ + "/initrd.img";
  s.cmdline = "console=ttyS0 quiet kumo.instance_id=" + name;
  s.disks = {{make_sparse(tmp_.path() + "/root.img", 1 * kGiB), "vda", "raw", false}};
  s.console_log = tmp_.path() + "/console.log";

  auto def = drv_->define(s);
  ASSERT_TRUE(def) << def.message;
  EXPECT_EQ(drv_->state(name), domain_state::shut_off);

  // NICs, on the stopped domain only: plugging one into a running guest would
  // put a tap in the host's network namespace (libvirtd's), and test traffic
  // must stay in namespaces a test makes. The definition changes either way.
  auto n1 = drv_->attach_nic(name, {"d0:0d:00:00:00:11", "br-kumo-nonexistent", "tap-kt11"});
  ASSERT_TRUE(n1) << n1.message;
  auto n2 = drv_->attach_nic(name, {"d0:0d:00:00:00:12", "", ""});
  ASSERT_TRUE(n2) << n2.message;
  EXPECT_NE(inactive_xml(name).find("<source bridge='br-kumo-nonexistent'/>"), std::string::npos);
  EXPECT_NE(inactive_xml(name).find("d0:0d:00:00:00:12"), std::string::npos);
  auto d1 = drv_->detach_nic(name, "D0:0D:00:00:00:11");  // MACs match in any case
  ASSERT_TRUE(d1) << d1.message;
  auto d2 = drv_->detach_nic(name, "d0:0d:00:00:00:12");
  ASSERT_TRUE(d2) << d2.message;
  EXPECT_EQ(inactive_xml(name).find("<interface"), std::string::npos) << inactive_xml(name);
  auto d3 = drv_->detach_nic(name, "d0:0d:00:00:00:12");
  EXPECT_FALSE(d3);
  EXPECT_NE(d3.message.find(name), std::string::npos) << d3.message;

  // Boot: the marker on the serial console, the started event, list().
  auto t_boot = clock_type::now();
  ASSERT_TRUE(drv_->start(name));
  ASSERT_TRUE(console_has(name, "kumo-guest: booted", 1, 30s))
      << "no boot marker within 30 s; console:\n" << drv_->console_output(name);
  std::cout << "[ timing   ] start -> 'kumo-guest: booted' " << seconds_since(t_boot) << " s\n";
  EXPECT_TRUE(rec_.wait_for(name, "started", domain_state::running)) << rec_.dump();
  EXPECT_EQ(drv_->state(name), domain_state::running);
  // The kernel command line and the boot disk (exact size) reached the guest.
  EXPECT_TRUE(console_has(name, "kumo-guest: instance-id " + name, 1, 10s)) << drv_->console_output(name);
  EXPECT_TRUE(eventually([&] { return has_line(drv_->console_output(name), "kumo-guest: disk vd", " 1073741824"); },
                         10s))
      << drv_->console_output(name);

  bool listed = false;
  for (auto& i : drv_->list()) {
    if (i.name != name) continue;
    listed = true;
    EXPECT_TRUE(i.kumo);
    EXPECT_EQ(i.account_id, "123456789012");
    EXPECT_EQ(i.state, domain_state::running);
  }
  EXPECT_TRUE(listed) << name << " missing from list()";

  // Hot-plug a 3 GiB disk: the guest sees it with its exact size.
  auto t_plug = clock_type::now();
  auto extra = make_sparse(tmp_.path() + "/extra.img", 3 * kGiB);
  auto a = drv_->attach_disk(name, {extra, "vdb", "raw", false});
  ASSERT_TRUE(a) << a.message;
  EXPECT_TRUE(eventually([&] { return has_line(drv_->console_output(name), "kumo-guest: disk vd", " 3221225472"); },
                         20s))
      << "hot-plugged disk not seen by the guest; console:\n" << drv_->console_output(name);
  EXPECT_NE(inactive_xml(name).find(extra), std::string::npos) << "attach must also go into the definition";
  std::cout << "[ timing   ] attach -> guest sees 3 GiB disk " << seconds_since(t_plug) << " s\n";

  // Unplug: gone from the live domain, the definition, and the guest.
  auto t_unplug = clock_type::now();
  auto det = drv_->detach_disk(name, "vdb");
  ASSERT_TRUE(det) << det.message;
  EXPECT_TRUE(eventually([&] { return live_xml(name).find(extra) == std::string::npos; }, 20s))
      << "detached disk still in the live domain:\n" << live_xml(name);
  EXPECT_EQ(inactive_xml(name).find(extra), std::string::npos);
  EXPECT_TRUE(console_has(name, "kumo-guest: disk-removed vd", 1, 20s)) << drv_->console_output(name);
  std::cout << "[ timing   ] detach -> guest loses the disk " << seconds_since(t_unplug) << " s\n";

  // Hard reset: a reboot event and a second boot in the same (appended) log.
  auto t_reset = clock_type::now();
  ASSERT_TRUE(drv_->reboot(name, true));
  EXPECT_TRUE(rec_.wait_for(name, "rebooted", domain_state::running)) << rec_.dump();
  EXPECT_TRUE(console_has(name, "kumo-guest: booted", 2, 30s)) << drv_->console_output(name);
  std::cout << "[ timing   ] reset -> booted again " << seconds_since(t_reset) << " s\n";
  // QEMU resets several times per reboot; the driver reports one.
  EXPECT_EQ(rec_.count(name, "rebooted"), 1) << rec_.dump();

  // ACPI shutdown: the guest powers itself off; state and event follow. One
  // press is enough: the guest opens its power button before "booted".
  auto t_down = clock_type::now();
  ASSERT_TRUE(drv_->shutdown(name));
  EXPECT_TRUE(eventually([&] { return drv_->state(name) == domain_state::shut_off; }, 30s))
      << "still " << to_string(drv_->state(name)) << " after one ACPI shutdown; console:\n"
      << drv_->console_output(name);
  EXPECT_TRUE(rec_.wait_for(name, "shutdown", domain_state::shut_off)) << rec_.dump();
  EXPECT_TRUE(console_has(name, "kumo-guest: power-off", 1, 1s));
  std::cout << "[ timing   ] shutdown -> shut off " << seconds_since(t_down) << " s\n";

  // Start again: the console file is appended to, not truncated.
  ASSERT_TRUE(drv_->start(name));
  EXPECT_TRUE(rec_.wait_for(name, "started", domain_state::running, 2)) << rec_.dump();
  EXPECT_TRUE(console_has(name, "kumo-guest: booted", 3, 30s)) << drv_->console_output(name);
  EXPECT_EQ(count_lines(drv_->console_output(name), "kumo-guest: power-off"), 1u)
      << "the earlier boots' output must still be in the console log";

  // Destroy, then undefine: absent everywhere.
  ASSERT_TRUE(drv_->destroy(name));
  EXPECT_EQ(drv_->state(name), domain_state::shut_off);
  EXPECT_TRUE(rec_.wait_for(name, "destroyed", domain_state::shut_off)) << rec_.dump();
  ASSERT_TRUE(drv_->undefine(name));
  EXPECT_EQ(drv_->state(name), domain_state::absent);
  for (auto& i : drv_->list()) EXPECT_NE(i.name, name);
  EXPECT_TRUE(rec_.wait_for(name, "undefined", domain_state::absent)) << rec_.dump();
  std::cout << "[ timing   ] whole real-guest lifecycle " << seconds_since(t_test) << " s\n";
}

TEST_F(RealGuest, DomainWithoutKumoMetadataIsNotOurs) {
  const auto name = unique_name("foreign");
  auto xml = "<domain type='qemu'><name>" + name +
             "</name><memory unit='MiB'>64</memory>"
             "<os><type arch='x86_64' machine='q35'>hvm</type></os></domain>";
  virDomainPtr d = virDomainDefineXML(raw_, xml.c_str());
  ASSERT_NE(d, nullptr) << virGetLastErrorMessage();
  virDomainFree(d);

  bool seen = false;
  for (auto& i : drv_->list()) {
    if (i.name != name) continue;
    seen = true;
    EXPECT_FALSE(i.kumo);
    EXPECT_TRUE(i.account_id.empty());
    EXPECT_EQ(i.state, domain_state::shut_off);
  }
  EXPECT_TRUE(seen) << name << " missing from list()";
}

// libvirtd drops our connections (as on a daemon restart, but without
// disturbing anyone else's): the driver reconnects on its next call and
// lifecycle events flow again on the new connection.
TEST_F(RealGuest, ReconnectsAfterTheDaemonDropsTheConnection) {
  const auto name = unique_name("reconn");
  domain_spec s;
  s.name = name;
  s.account_id = "123456789012";
  s.kernel = guest_dir_ + "/vmlinuz";
  s.initrd = guest_dir_ + "/initrd.img";
  ASSERT_TRUE(drv_->define(s));
  ASSERT_EQ(drv_->state(name), domain_state::shut_off);

  // Every client of this process, by the pid libvirtd saw on the socket.
  const std::string admin = "/usr/bin/virt-admin";
  auto clients = kumo::test::run({admin, "srv-clients-list", "libvirtd"}, 10s);
  ASSERT_EQ(clients.exit_code, 0) << clients.output;
  int dropped = 0;
  std::istringstream lines(clients.output);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream words(line);
    std::string id;
    words >> id;
    if (id.empty() || id.find_first_not_of("0123456789") != std::string::npos) continue;
    auto info = kumo::test::run({admin, "client-info", "libvirtd", id}, 10s);
    auto key = info.output.find("unix_process_id");
    if (key == std::string::npos) continue;
    auto value = info.output.substr(info.output.find(':', key) + 1);
    if (std::stoi(value) != getpid()) continue;
    auto dc = kumo::test::run({admin, "client-disconnect", "libvirtd", id}, 10s);
    ASSERT_EQ(dc.exit_code, 0) << dc.output;
    ++dropped;
  }
  ASSERT_GE(dropped, 1) << "found none of our connections in:\n" << clients.output;

  // The call in flight when a connection dies may fail; a later one must work.
  EXPECT_TRUE(eventually([&] { return drv_->state(name) == domain_state::shut_off; }, 10s));
  bool listed = false;
  for (auto& i : drv_->list()) listed = listed || (i.name == name && i.kumo);
  EXPECT_TRUE(listed);
  // Events are subscribed again on the new connection.
  ASSERT_TRUE(drv_->undefine(name));
  EXPECT_TRUE(rec_.wait_for(name, "undefined", domain_state::absent, 1, 10s)) << rec_.dump();
  virConnectClose(raw_);  // dropped as well; TearDown wants a working one
  raw_ = virConnectOpen(kUri);
}

TEST_F(RealGuest, ErrorsNameTheDomainAndCarryLibvirtsText) {
  const auto name = unique_name("missing");
  auto r = drv_->start(name);
  ASSERT_FALSE(r);
  EXPECT_NE(r.message.find(name), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("Domain not found"), std::string::npos) << r.message;
  EXPECT_EQ(drv_->state(name), domain_state::absent);
  EXPECT_TRUE(drv_->destroy(name));
  EXPECT_TRUE(drv_->undefine(name));
}

}  // namespace
