// kumod: the kumo daemon. Today it runs all roles in one process: the event
// store and journal, the aggregates and views, the compute controller, this
// host's node (hypervisor driver) and the EC2 API.
#include "bootstrap.h"
#include "compute.h"
#include "config.h"
#include "ldap.h"
#include "network.h"

#include "actors/account/account_actors.h"
#include "actors/cloud.h"
#include "actors/protocol/node.h"
#include "api/http_server.h"
#include "persistence/data_dir.h"

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdio>
#include <sys/stat.h>
#include <iostream>
#include <string_view>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace {

using namespace kumo;

void setup_logging(const std::string& level) {
  // One line per API request: buffer them and flush every second (and at
  // once for warnings), instead of a write(2) per line.
  static char buffer[1 << 16];
  std::setvbuf(stderr, buffer, _IOFBF, sizeof buffer);
  auto logger = spdlog::stderr_logger_mt("kumod");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%l%$ %v", spdlog::pattern_time_type::utc);
  logger->set_level(spdlog::level::from_str(level));
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(logger);
  spdlog::flush_every(std::chrono::seconds(1));
}

// Blocks until SIGTERM or SIGINT; the signals are blocked in every thread, so
// only this wait sees them.
int wait_for_stop_signal(const sigset_t& set) {
  int sig = 0;
  sigwait(&set, &sig);
  return sig;
}

caf::actor_system_config actor_config(const daemon::config& cfg) {
  caf::actor_system_config caf_cfg;
  unsigned threads = cfg.worker_threads ? cfg.worker_threads
                                        : std::max(2u, std::thread::hardware_concurrency());
  caf_cfg.set("scheduler.max-threads", threads);
  if (cfg.role != "all-in-one") {  // roles in separate processes talk over the CAF middleman
    caf_cfg.load<caf::io::middleman>();
    actors::add_node_protocol_types(caf_cfg);
  }
  return caf_cfg;
}

// The node role: this host's hypervisor, reporting to a cloud kumod's cluster.
int run_node(const daemon::config& cfg, const sigset_t& signals) {
  std::string error;
  auto node_cfg = daemon::prepare_node(cfg, error);
  if (!node_cfg) {
    spdlog::error("kumod: {}", error);
    return 1;
  }
  std::string host;
  uint16_t port = 0;
  daemon::split_host_port(cfg.cluster, host, port);
  auto caf_cfg = actor_config(cfg);
  {
    caf::actor_system sys{caf_cfg};
    auto failures = std::make_shared<int>(0);
    auto connect = [&sys, host, port, failures]() -> caf::actor {
      auto cluster = sys.middleman().remote_actor(host, port);
      if (cluster) {
        spdlog::info("kumod: connected to the cluster at {}:{}", host, port);
        *failures = 0;
        return *cluster;
      }
      if ((*failures)++ % 15 == 0)  // say it now and then, not every tick
        spdlog::warn("kumod: the cluster at {}:{} is not reachable ({}); retrying", host, port,
                     sys.render(cluster.error()));
      return nullptr;
    };
    auto node = actors::spawn_node(sys, node_cfg->node, node_cfg->driver, connect);
    spdlog::info("kumod node ready: node {} in {} ({}), cluster {}", node_cfg->node.node_id,
                 node_cfg->node.zone, node_cfg->driver->describe(), cfg.cluster);
    spdlog::default_logger()->flush();
    int sig = wait_for_stop_signal(signals);
    spdlog::info("kumod: {} received, shutting down (guests keep running)", strsignal(sig));
    caf::scoped_actor self{sys};
    self->monitor(node);
    self->send_exit(node, caf::exit_reason::user_shutdown);
    bool stopped = false;
    self->receive([&](caf::down_msg&) { stopped = true; },
                  caf::after(std::chrono::seconds(10)) >> [] {});
    // A node has no state of its own to save (libvirt is its state). CAF 0.17
    // can wait forever in ~actor_system while the cluster still holds a handle
    // to this node over the middleman, so the process ends here.
    spdlog::info("kumod: {}", stopped ? "stopped cleanly" : "node actor did not stop in 10 s; exiting");
    spdlog::shutdown();
    std::fflush(nullptr);
    std::_Exit(stopped ? 0 : 1);
  }
}

// CAF 0.17's ~actor_system waits for every actor, and rarely one never acts
// on its exit (seen in tests at shutdown under load; the actor was not
// found), which would hang kumod's stop for ever. Everything acknowledged is
// durable before it is acknowledged, so once armed, kumod exits after
// `limit` whatever is left, as after a crash.
class shutdown_watchdog {
 public:
  void arm(std::chrono::seconds limit) {
    thread_ = std::thread([this, limit] {
      std::unique_lock lock(mutex_);
      if (stopped_.wait_for(lock, limit, [this] { return done_; })) return;
      spdlog::error("kumod: the actor system did not stop within {} s (an actor never acted on its exit); "
                    "exiting anyway: everything acknowledged is in the log",
                    limit.count());
      spdlog::shutdown();
      std::fflush(nullptr);
      std::_Exit(1);
    });
  }
  ~shutdown_watchdog() {
    {
      std::lock_guard lock(mutex_);
      done_ = true;
    }
    stopped_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::mutex mutex_;
  std::condition_variable stopped_;
  bool done_ = false;
  std::thread thread_;
};

int run(const daemon::config& cfg, const sigset_t& signals) {
  persistence::status st;
  auto lock = persistence::data_dir_lock::acquire(cfg.data_dir, st);
  if (!lock) {
    spdlog::error("kumod: {}", st.message);
    return 1;
  }
  if (cfg.role == "node") return run_node(cfg, signals);
  auto store = persistence::event_store::open(persistence::events_path(cfg.data_dir),
                                              persistence::open_mode::read_write, st);
  if (!store) {
    spdlog::error("kumod: {}", st.message);
    return 1;
  }
  spdlog::info("kumod: event store {} at event #{}", persistence::events_path(cfg.data_dir),
               store->last_global_seq());

  std::string error;
  auto cluster = daemon::prepare_cluster(cfg, error);
  std::optional<daemon::node_setup> local_node;
  if (cluster && cfg.role == "all-in-one") local_node = daemon::prepare_node(cfg, error);
  std::optional<daemon::network_setup> network;
  if (cluster && (cfg.role != "all-in-one" || local_node)) network = daemon::prepare_network(cfg, error);
  if (!cluster || (cfg.role == "all-in-one" && !local_node) || !network) {
    spdlog::error("kumod: {}", error);
    return 1;
  }
  cluster->cluster.attach_nics = network->cfg.mode == actors::network_mode::managed;
  cluster->cluster.segment_mode = static_cast<uint8_t>(network->cfg.segments);

  auto caf_cfg = actor_config(cfg);
  int exit_code = 0;
  {
    shutdown_watchdog watchdog;  // destroyed after the actor system: disarmed once it stopped
    caf::actor_system sys{caf_cfg};
    auto cloud = actors::cloud_actors::spawn(sys, *store, cluster->cluster,
                                             {cfg.storage ? cfg.data_dir : std::string{}}, network->cfg, network->plane);
    caf::actor node;
    std::string cluster_endpoint;
    if (local_node) {
      node = actors::spawn_node(sys, local_node->node, local_node->driver, [c = cloud.compute] { return c; });
    } else {
      std::string host;
      uint16_t port = 0;
      daemon::split_host_port(cfg.cluster_listen, host, port);
      auto published = sys.middleman().publish(cloud.compute, port, host.c_str(), true);
      if (!published) {
        spdlog::error("kumod: cannot listen for nodes on {}: {}", cfg.cluster_listen, sys.render(published.error()));
        exit_code = 1;
      } else {
        cluster_endpoint = host + ":" + std::to_string(*published);
        spdlog::info("kumod: nodes connect to the cluster at {} (kumod --role=node --cluster={})",
                     cluster_endpoint, cluster_endpoint);
      }
    }
    std::unique_ptr<api::http_server> http;
    caf::actor gateway;
    if (exit_code == 0) try {
      actors::account::client accounts{sys, cloud.accounts, cloud.accounts_view};
      if (!daemon::ensure_admin(accounts, cfg.data_dir, error) || !daemon::start_ldap(sys, cfg, accounts, cloud, error)) {
        spdlog::error("kumod: {}", error);
        exit_code = 1;
      }
    } catch (const std::exception& e) {
      spdlog::error("kumod: bootstrap failed: {}", e.what());
      exit_code = 1;
    }
    if (exit_code == 0) {
      api::http_config http_cfg;
      http_cfg.address = cfg.listen_address;
      http_cfg.port = cfg.listen_port;
      http_cfg.region = cfg.region;
      http_cfg.max_connections = cfg.max_connections;
      gateway = api::spawn_ec2_gateway(sys, cloud, {cfg.region, cfg.zones, cfg.data_dir, cluster->instance_types});
      http_cfg.handler = [gateway](api::http_parts req, std::string rid, api::reply_fn done) {
        api::submit(gateway, std::move(req), std::move(rid), std::move(done));
      };
      http = api::http_server::start(http_cfg, error);
      if (!http) {
        spdlog::error("kumod: {}", error);
        exit_code = 1;
      }
    }
    if (exit_code == 0) {
      spdlog::info("kumod ready: listening on http://{}:{} region={} data-dir={} credentials={}{}",
                   cfg.listen_address, http->port(), cfg.region, cfg.data_dir,
                   daemon::credentials_path(cfg.data_dir),
                   cluster_endpoint.empty() ? "" : " cluster=" + cluster_endpoint);
      spdlog::default_logger()->flush();  // whoever waits for "ready" sees it now
      int sig = wait_for_stop_signal(signals);
      spdlog::info("kumod: {} received, shutting down", strsignal(sig));
      http->stop();
    }
    watchdog.arm(std::chrono::seconds(30));
    if (gateway) caf::anon_send_exit(gateway, caf::exit_reason::user_shutdown);
    // Running guests stay up: a control-plane stop never touches them.
    if (node) caf::anon_send_exit(node, caf::exit_reason::user_shutdown);
    node = nullptr;
    cloud.shutdown(sys);
    // dnsmasq and the metadata server stop; bridges and nft rules stay, so
    // guests keep their network while the control plane restarts.
    if (network->plane.dataplane) network->plane.dataplane->stop();
    if (network->plane.metadata) network->plane.metadata->stop();
  }  // the actor system waits for every actor here
  store.reset();
  if (exit_code == 0) spdlog::info("kumod: stopped cleanly");
  spdlog::shutdown();
  return exit_code;
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i)
    if (std::string_view(argv[i]) == "--help" || std::string_view(argv[i]) == "-h") {
      std::cout << kumo::daemon::usage();
      return 0;
    }
  std::string error;
  auto cfg = kumo::daemon::parse_config({argv + 1, argv + argc}, error);
  if (!cfg) {
    std::cerr << "kumod: " << error << "\n" << kumo::daemon::usage();
    return 2;
  }
  // The data dir holds access-key secrets (in the log, snapshots and
  // checkpoints): nothing kumod creates is readable by anyone else.
  umask(077);
  // Block the stop signals before any thread exists (the log flusher is the
  // first), so every thread inherits the mask and only sigwait sees them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  setup_logging(cfg->log_level);
  return run(*cfg, signals);
}
