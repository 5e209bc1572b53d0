// The compute controller, the Zone ledger and a node reconciler on the fake
// driver, on a real RocksDB: instances move through their lifecycle because
// the node reports what the hypervisor did, a control-plane restart leaves
// running guests alone, orphans are removed, a silent node makes its
// instances impaired.
#include "actors/cloud.h"
#include "actors/node/node.h"
#include "persistence/time_format.h"
#include "../support/subprocess.h"

#include <caf/all.hpp>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

using namespace kumo;
using namespace kumo::actors;
using instance::lifecycle;

namespace {

const std::string account_id = "123456789012";
const request_meta meta{"arn:aws:iam::123456789012:root", "rid-compute-test"};

// Polls `pred` until it holds or 10 s pass (actors work asynchronously).
template <class Pred>
bool eventually(Pred pred) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return pred();
}

// The cloud core plus one node on `driver`; destroy and re-create to restart.
struct compute_core {
  compute_core(const std::string& dir, std::shared_ptr<hypervisor::driver> d) : driver(std::move(d)) {
    persistence::status st;
    store = persistence::event_store::open(dir + "/events", persistence::open_mode::read_write, st);
    if (!store) throw std::runtime_error(st.message);
    sys = std::make_unique<caf::actor_system>(cfg);
    compute_config cc;
    cc.resync_interval = std::chrono::milliseconds(50);
    cc.node_timeout = std::chrono::milliseconds(300);
    cloud = cloud_actors::spawn(*sys, *store, cc);
    node_cfg.instances_dir = dir + "/instances";
    kernel = dir + "/vmlinuz";  // nodes link the image's files into each instance's dir
    std::ofstream(kernel) << "kernel";
    node_cfg.vcpus = 4;
    node_cfg.memory_mib = 1024;
    node_cfg.disk_gib = 50;
    node_cfg.report_interval = std::chrono::milliseconds(50);
    node_cfg.orphan_grace = std::chrono::milliseconds(200);
    start_node();
  }
  ~compute_core() {
    {
      // The node is gone before the cloud stops (as kumod does it): a node
      // still reporting while the controller shuts down left the actor
      // system waiting forever now and then.
      caf::scoped_actor self{*sys};
      self->monitor(node);
      caf::anon_send_exit(node, caf::exit_reason::user_shutdown);
      self->receive([](caf::down_msg&) {}, caf::after(std::chrono::seconds(10)) >> [] {});
    }
    node = nullptr;  // a detached actor's thread ends only when its last handle goes
    cloud.shutdown(*sys);
    sys.reset();
    store.reset();
  }
  // The node registers asynchronously: wait until the controller places on it.
  void start_node() {
    node = spawn_node(*sys, node_cfg, driver, [c = cloud.compute] { return c; });
  }

  std::vector<instance_view> list() {
    caf::scoped_actor self{*sys};
    std::vector<instance_view> out;
    self->request(cloud.compute, std::chrono::seconds(10), list_instances_atom::value, account_id, uint64_t{0})
        .receive([&](std::vector<instance_view>& v) { out = std::move(v); },
                 [](caf::error& e) { ADD_FAILURE() << to_string(e); });
    return out;
  }
  std::optional<instance_view> find(const std::string& id) {
    for (auto& v : list())
      if (v.state.spec.instance_id == id) return v;
    return std::nullopt;
  }
  bool has_state(const std::string& id, lifecycle s) {
    auto v = find(id);
    return v && v->state.status == s;
  }

  // Places and launches `n` instances (MinCount = n) the way RunInstances does.
  std::optional<api_error> launch(const std::vector<std::string>& ids) {
    caf::scoped_actor self{*sys};
    instance::sizing size{"m1.small", 1, 256, 5};
    std::optional<api_error> err;
    place_reply placed;
    self->request(cloud.compute, std::chrono::seconds(10), place_atom::value,
                  place_request{ids, size, "", ids.size()}, meta)
        .receive([&](place_reply& r) { placed = std::move(r); }, [&](caf::error& e) { err = api_error{"caf", to_string(e)}; });
    if (err) return err;
    if (placed.error) return placed.error;
    for (size_t i = 0; i < ids.size(); ++i) {
      instance::launch_spec spec;
      spec.instance_id = ids[i];
      spec.reservation_id = "r-0000000000000000" + std::to_string(i % 10);
      spec.account_id = account_id;
      spec.image_id = "emi-00000000000000001";
      spec.kernel_path = kernel;
      spec.size = size;
      spec.zone = placed.zone;
      spec.node_id = placed.node_of.at(ids[i]);
      spec.launch_ms = persistence::now_ms();
      command(ids[i], instance::launch{spec});
    }
    return std::nullopt;
  }
  std::optional<api_error> command(const std::string& id, instance::command c) {
    caf::scoped_actor self{*sys};
    std::optional<api_error> err;
    self->request(cloud.instances, std::chrono::seconds(10), instance::aggregate_id(account_id, id), c, meta)
        .receive([&](instance_reply& r) { err = r.error; }, [&](caf::error& e) { err = api_error{"caf", to_string(e)}; });
    return err;
  }

  std::multiset<std::string> event_types(const std::string& stream) {
    std::multiset<std::string> out;
    store->read_stream(stream, 1, [&](const persistence::event_record& r) {
      out.insert(r.type);
      return true;
    });
    return out;
  }

  caf::actor_system_config cfg;
  std::shared_ptr<hypervisor::driver> driver;
  std::unique_ptr<persistence::event_store> store;
  std::unique_ptr<caf::actor_system> sys;
  cloud_actors cloud;
  node_config node_cfg;
  std::string kernel;
  caf::actor node;
};

const std::string i1 = "i-00000000000000001";
const std::string i2 = "i-00000000000000002";

int booted_count(hypervisor::driver& d, const std::string& id) {
  auto text = d.console_output(id);
  int n = 0;
  for (size_t at = 0; (at = text.find("kumo-guest: booted", at)) != std::string::npos; ++at) ++n;
  return n;
}

}  // namespace

TEST(Compute, InstancesFollowWhatTheHypervisorDoes) {
  test::temp_dir dir;
  std::shared_ptr<hypervisor::driver> driver = hypervisor::make_fake_driver();
  compute_core core(dir.path(), driver);
  ASSERT_TRUE(eventually([&] { return !core.launch({i1, i2}); }));
  ASSERT_TRUE(eventually([&] { return core.has_state(i1, lifecycle::running) && core.has_state(i2, lifecycle::running); }));
  EXPECT_EQ(driver->state(i1), hypervisor::domain_state::running);
  EXPECT_EQ(booted_count(*driver, i1), 1);
  EXPECT_TRUE(std::filesystem::exists(dir.path() + "/instances/" + i1 + "/vmlinuz"));

  ASSERT_FALSE(core.command(i1, instance::stop{false, persistence::now_ms()}));
  ASSERT_TRUE(eventually([&] { return core.has_state(i1, lifecycle::stopped); }));
  EXPECT_EQ(driver->state(i1), hypervisor::domain_state::shut_off);

  ASSERT_FALSE(core.command(i1, instance::start{persistence::now_ms()}));
  ASSERT_TRUE(eventually([&] { return core.has_state(i1, lifecycle::running); }));
  EXPECT_EQ(booted_count(*driver, i1), 2);

  // A guest that powers itself off becomes stopped (instance-initiated).
  ASSERT_TRUE(driver->shutdown(i2));
  ASSERT_TRUE(eventually([&] { return core.has_state(i2, lifecycle::stopped); }));
  EXPECT_EQ(core.find(i2)->state.reason_code, "Client.InstanceInitiatedShutdown");

  ASSERT_FALSE(core.command(i1, instance::terminate{persistence::now_ms()}));
  ASSERT_TRUE(eventually([&] { return core.has_state(i1, lifecycle::terminated); }));
  EXPECT_EQ(driver->state(i1), hypervisor::domain_state::absent);
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/instances/" + i1));
}

TEST(Compute, CapacityIsReservedDurablyAndReleasedOnTermination) {
  test::temp_dir dir;
  std::shared_ptr<hypervisor::driver> driver = hypervisor::make_fake_driver();
  {
    compute_core core(dir.path(), driver);
    // 4 vCPUs on the only node: 4 m1.small fit, a fifth does not.
    ASSERT_TRUE(eventually([&] { return !core.launch({i1, i2, "i-00000000000000003", "i-00000000000000004"}); }));
    auto refused = core.launch({"i-00000000000000005"});
    ASSERT_TRUE(refused);
    EXPECT_EQ(refused->code, "InsufficientInstanceCapacity");
  }
  compute_core core(dir.path(), driver);  // the ledger survives a restart
  ASSERT_TRUE(eventually([&] { return core.has_state(i1, lifecycle::running); }));
  EXPECT_EQ(core.launch({"i-00000000000000005"})->code, "InsufficientInstanceCapacity");
  ASSERT_FALSE(core.command(i1, instance::terminate{persistence::now_ms()}));
  ASSERT_TRUE(eventually([&] { return core.has_state(i1, lifecycle::terminated); }));
  EXPECT_TRUE(eventually([&] { return !core.launch({"i-00000000000000005"}); }));
}

TEST(Compute, ControlPlaneRestartLeavesRunningGuestsAlone) {
  test::temp_dir dir;
  std::shared_ptr<hypervisor::driver> driver = hypervisor::make_fake_driver();
  {
    compute_core core(dir.path(), driver);
    ASSERT_TRUE(eventually([&] { return !core.launch({i1}); }));
    ASSERT_TRUE(eventually([&] { return core.has_state(i1, lifecycle::running); }));
  }
  compute_core core(dir.path(), driver);
  // Several report rounds later the guest is still the one that booted first.
  ASSERT_TRUE(eventually([&] { return core.has_state(i1, lifecycle::running) && core.find(i1)->node_available; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // let reconcile rounds pass
  EXPECT_EQ(booted_count(*driver, i1), 1);
  EXPECT_EQ(driver->list().size(), 1u);
}

TEST(Compute, UnknownDomainsAreRemovedAndVanishedOnesRecreated) {
  test::temp_dir dir;
  std::shared_ptr<hypervisor::driver> driver = hypervisor::make_fake_driver();
  compute_core core(dir.path(), driver);
  ASSERT_TRUE(eventually([&] { return !core.launch({i1}); }));
  ASSERT_TRUE(eventually([&] { return core.has_state(i1, lifecycle::running); }));
  // A kumo domain the log knows nothing of (e.g. left by a crash before its launch was recorded).
  hypervisor::domain_spec orphan;
  orphan.name = "i-0000000000000dead";
  orphan.account_id = account_id;
  ASSERT_TRUE(driver->define(orphan));
  ASSERT_TRUE(driver->start(orphan.name));
  EXPECT_TRUE(eventually([&] { return driver->state(orphan.name) == hypervisor::domain_state::absent; }));
  // The removal is an event, so `kumoctl audit` shows it.
  EXPECT_TRUE(eventually([&] { return core.event_types("zone/kumo-1a").count("unknown_domain_removed") == 1; }));
  // A domain that should run but vanished (e.g. the host rebooted while the
  // node was down) is recreated by the node. The node is down while the test
  // removes it: a node that saw the domain shut off in between would rightly
  // report a guest that powered itself off instead.
  caf::anon_send_exit(core.node, caf::exit_reason::kill);
  ASSERT_TRUE(eventually([&] { return !core.find(i1)->node_available; }));
  ASSERT_TRUE(driver->destroy(i1));
  ASSERT_TRUE(driver->undefine(i1));
  core.start_node();
  EXPECT_TRUE(eventually([&] { return driver->state(i1) == hypervisor::domain_state::running; }));
  EXPECT_TRUE(core.has_state(i1, lifecycle::running));
  // So is the recreation.
  EXPECT_TRUE(eventually([&] {
    return core.event_types("instance/" + instance::aggregate_id(account_id, i1)).count("repaired") == 1;
  }));
}

TEST(Compute, SilentNodeMakesItsInstancesImpairedUntilItReturns) {
  test::temp_dir dir;
  std::shared_ptr<hypervisor::driver> driver = hypervisor::make_fake_driver();
  compute_core core(dir.path(), driver);
  ASSERT_TRUE(eventually([&] { return !core.launch({i1}); }));
  ASSERT_TRUE(eventually([&] { return core.has_state(i1, lifecycle::running); }));
  caf::anon_send_exit(core.node, caf::exit_reason::kill);
  ASSERT_TRUE(eventually([&] { return !core.find(i1)->node_available; }));
  EXPECT_EQ(core.find(i1)->state.status, lifecycle::running);  // the guest itself is fine
  core.start_node();
  ASSERT_TRUE(eventually([&] { return core.find(i1)->node_available; }));
  EXPECT_EQ(driver->list().size(), 1u);  // no duplicate domain
  EXPECT_EQ(booted_count(*driver, i1), 1);
}

TEST(Compute, AnInstanceThatCannotStartEndsTerminatedWithTheReason) {
  test::temp_dir dir;
  std::shared_ptr<hypervisor::driver> driver = hypervisor::make_fake_driver();
  compute_core core(dir.path(), driver);
  core.kernel = dir.path() + "/no-such-kernel";  // e.g. lost from the image store
  ASSERT_TRUE(eventually([&] { return !core.launch({i1}); }));
  ASSERT_TRUE(eventually([&] { return core.has_state(i1, lifecycle::terminated); }));
  auto v = core.find(i1);
  EXPECT_EQ(v->state.reason_code, "Server.InternalError");
  EXPECT_NE(v->state.reason_message.find("no-such-kernel"), std::string::npos) << v->state.reason_message;
  EXPECT_EQ(driver->state(i1), hypervisor::domain_state::absent);
}

TEST(Compute, ARebootRequestedWhileTheNodeIsDownHappensWhenItReturns) {
  test::temp_dir dir;
  std::shared_ptr<hypervisor::driver> driver = hypervisor::make_fake_driver();
  compute_core core(dir.path(), driver);
  ASSERT_TRUE(eventually([&] { return !core.launch({i1}); }));
  ASSERT_TRUE(eventually([&] { return core.has_state(i1, lifecycle::running); }));
  ASSERT_FALSE(core.command(i1, instance::reboot{}));
  ASSERT_TRUE(eventually([&] { return booted_count(*driver, i1) == 2 && core.find(i1)->state.reboot_done == 1; }));

  caf::anon_send_exit(core.node, caf::exit_reason::kill);
  ASSERT_TRUE(eventually([&] { return !core.find(i1)->node_available; }));
  ASSERT_FALSE(core.command(i1, instance::reboot{}));  // accepted: the instance is running
  EXPECT_EQ(booted_count(*driver, i1), 2);
  core.start_node();  // a fresh node process: it knows only what the log says
  ASSERT_TRUE(eventually([&] { return booted_count(*driver, i1) == 3 && core.find(i1)->state.reboot_done == 2; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // later report rounds reboot nothing more
  EXPECT_EQ(booted_count(*driver, i1), 3);
}

// A node of another kumod version is refused by name, never misread.
TEST(Compute, ANodeSpeakingAnotherProtocolIsRefusedByName) {
  test::temp_dir dir;
  compute_core core(dir.path(), hypervisor::make_fake_driver());
  // The core's own node first: stopping the actor system while a node is
  // still registering can leave it waiting forever (see the closing note).
  ASSERT_TRUE(eventually([&] { return !core.launch({i1}); }));
  caf::scoped_actor self{*core.sys};
  node_capacity cap;
  cap.protocol = node_protocol_version + 1;
  cap.node_id = "node-old";
  cap.zone = "kumo-1a";
  cap.vcpus = 1;
  std::string refusal;
  self->request(core.cloud.compute, std::chrono::seconds(10), register_node_atom::value, cap,
                caf::actor_cast<caf::actor>(self))
      .receive([&](bool) { refusal = "accepted"; }, [&](caf::error& e) { refusal = core.sys->render(e); });
  EXPECT_NE(refusal.find("speaks node protocol " + std::to_string(node_protocol_version + 1)), std::string::npos)
      << refusal;
}
