// The fake driver: the contract of driver.h, instantly, in memory.
#include "hypervisor/driver.h"
#include "lifecycle_recorder.h"

#include <gtest/gtest.h>

#include <mutex>

using namespace kumo::hypervisor;

namespace {

domain_spec spec(const std::string& name) {
  domain_spec s;
  s.name = name;
  s.account_id = "111122223333";
  s.instance_type = "t3.micro";
  s.disks = {{"/var/lib/kumo/vol-1.img", "vda", "raw", false}};
  s.nics = {{"d0:0d:00:00:00:01", "br-test", "tap-test"}};
  return s;
}

using recorder = kumo::hypervisor::test::lifecycle_recorder;

TEST(FakeDriver, LifecycleAndCallbacks) {
  auto d = make_fake_driver();
  recorder rec;
  rec.attach(*d);
  EXPECT_EQ(d->state("i-1"), domain_state::absent);
  ASSERT_TRUE(d->define(spec("i-1")));
  EXPECT_EQ(d->state("i-1"), domain_state::shut_off);
  ASSERT_TRUE(d->start("i-1"));
  EXPECT_EQ(d->state("i-1"), domain_state::running);
  EXPECT_FALSE(d->start("i-1")) << "starting a running domain must fail";
  EXPECT_FALSE(d->define(spec("i-1"))) << "redefining a running domain must fail";
  ASSERT_TRUE(d->reboot("i-1", false));
  ASSERT_TRUE(d->shutdown("i-1"));
  EXPECT_EQ(d->state("i-1"), domain_state::shut_off);
  EXPECT_FALSE(d->shutdown("i-1")) << "shutting down a stopped domain must fail";
  ASSERT_TRUE(d->start("i-1"));
  ASSERT_TRUE(d->destroy("i-1"));
  EXPECT_EQ(d->state("i-1"), domain_state::shut_off);
  EXPECT_TRUE(d->destroy("i-1")) << "destroying a stopped domain is not an error";
  EXPECT_TRUE(d->destroy("i-unknown"));
  ASSERT_TRUE(d->undefine("i-1"));
  EXPECT_EQ(d->state("i-1"), domain_state::absent);
  EXPECT_TRUE(d->undefine("i-1")) << "undefining an unknown domain is not an error";

  EXPECT_EQ(rec.reasons(), (std::vector<std::string>{
                               "i-1:started:running",
                               "i-1:rebooted:running",
                               "i-1:shutdown:shut-off",
                               "i-1:started:running",
                               "i-1:destroyed:shut-off",
                           }));
}

TEST(FakeDriver, UndefineRunningFailsAndUnknownDomainErrorsNameIt) {
  auto d = make_fake_driver();
  ASSERT_TRUE(d->define(spec("i-2")));
  ASSERT_TRUE(d->start("i-2"));
  auto r = d->undefine("i-2");
  EXPECT_FALSE(r);
  EXPECT_NE(r.message.find("i-2"), std::string::npos) << r.message;
  auto s = d->start("i-nope");
  EXPECT_FALSE(s);
  EXPECT_NE(s.message.find("i-nope"), std::string::npos) << s.message;
}

TEST(FakeDriver, GuestIgnoringShutdownStaysRunning) {
  fake_options o;
  o.guest_honours_shutdown = false;
  auto d = make_fake_driver(o);
  recorder rec;
  rec.attach(*d);
  ASSERT_TRUE(d->define(spec("i-3")));
  ASSERT_TRUE(d->start("i-3"));
  ASSERT_TRUE(d->shutdown("i-3"));
  EXPECT_EQ(d->state("i-3"), domain_state::running);
  ASSERT_TRUE(d->destroy("i-3"));
  EXPECT_EQ(d->state("i-3"), domain_state::shut_off);
  EXPECT_EQ(rec.reasons(), (std::vector<std::string>{"i-3:started:running", "i-3:destroyed:shut-off"}));
}

TEST(FakeDriver, ListCarriesAccount) {
  auto d = make_fake_driver();
  ASSERT_TRUE(d->define(spec("i-4")));
  auto other = spec("i-5");
  other.account_id = "444455556666";
  ASSERT_TRUE(d->define(other));
  ASSERT_TRUE(d->start("i-5"));
  auto l = d->list();
  ASSERT_EQ(l.size(), 2u);
  EXPECT_EQ(l[0].name, "i-4");
  EXPECT_EQ(l[0].state, domain_state::shut_off);
  EXPECT_TRUE(l[0].kumo);
  EXPECT_EQ(l[0].account_id, "111122223333");
  EXPECT_EQ(l[1].name, "i-5");
  EXPECT_EQ(l[1].state, domain_state::running);
  EXPECT_EQ(l[1].account_id, "444455556666");
}

TEST(FakeDriver, AttachAndDetach) {
  auto d = make_fake_driver();
  ASSERT_TRUE(d->define(spec("i-6")));
  ASSERT_TRUE(d->start("i-6"));
  EXPECT_FALSE(d->attach_disk("i-6", {"/x.img", "vda"})) << "vda is taken by the boot disk";
  ASSERT_TRUE(d->attach_disk("i-6", {"/y.img", "vdb"}));
  ASSERT_TRUE(d->detach_disk("i-6", "vdb"));
  EXPECT_FALSE(d->detach_disk("i-6", "vdb")) << "vdb is gone";
  ASSERT_TRUE(d->attach_disk("i-6", {"/y.img", "vdb"})) << "the target is free again";
  ASSERT_TRUE(d->attach_nic("i-6", {"d0:0d:00:00:00:02", "br-test", "tap-2"}));
  ASSERT_TRUE(d->detach_nic("i-6", "d0:0d:00:00:00:02"));
  EXPECT_FALSE(d->detach_nic("i-6", "d0:0d:00:00:00:02"));
  EXPECT_FALSE(d->attach_disk("i-missing", {"/y.img", "vdc"}));
}

TEST(FakeDriver, ConsoleShowsBootLineAndTail) {
  fake_options o;
  o.console_line = "kumo-guest: booted";
  auto d = make_fake_driver(o);
  ASSERT_TRUE(d->define(spec("i-7")));
  EXPECT_EQ(d->console_output("i-7"), "");
  ASSERT_TRUE(d->start("i-7"));
  EXPECT_EQ(d->console_output("i-7"), "kumo-guest: booted\n");
  ASSERT_TRUE(d->reboot("i-7", true));
  EXPECT_EQ(d->console_output("i-7"), "kumo-guest: booted\nkumo-guest: booted\n");
  EXPECT_EQ(d->console_output("i-7", 7), "booted\n");
  EXPECT_EQ(d->console_output("i-unknown"), "");
}

}  // namespace
