// kumod: the kumo daemon. Today it runs all roles in one process: the event
// store and journal, the aggregates and views, the compute controller, this
// host's node (hypervisor driver) and the EC2 API.
#include "bootstrap.h"
#include "compute.h"
#include "config.h"

#include "actors/account/account_actors.h"
#include "actors/cloud.h"
#include "api/http_server.h"
#include "persistence/data_dir.h"

#include <caf/all.hpp>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdio>
#include <sys/stat.h>
#include <iostream>
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

int run(const daemon::config& cfg, const sigset_t& signals) {
  persistence::status st;
  auto lock = persistence::data_dir_lock::acquire(cfg.data_dir, st);
  if (!lock) {
    spdlog::error("kumod: {}", st.message);
    return 1;
  }
  auto store = persistence::event_store::open(persistence::events_path(cfg.data_dir),
                                              persistence::open_mode::read_write, st);
  if (!store) {
    spdlog::error("kumod: {}", st.message);
    return 1;
  }
  spdlog::info("kumod: event store {} at event #{}", persistence::events_path(cfg.data_dir),
               store->last_global_seq());

  std::string compute_error;
  auto compute = daemon::prepare_compute(cfg, compute_error);
  if (!compute) {
    spdlog::error("kumod: {}", compute_error);
    return 1;
  }

  caf::actor_system_config caf_cfg;
  unsigned threads = cfg.worker_threads ? cfg.worker_threads
                                        : std::max(2u, std::thread::hardware_concurrency());
  caf_cfg.set("scheduler.max-threads", threads);
  int exit_code = 0;
  {
    caf::actor_system sys{caf_cfg};
    auto cloud = actors::cloud_actors::spawn(sys, *store, compute->cluster);
    auto node = actors::spawn_node(sys, compute->node, compute->driver, cloud.compute);
    std::unique_ptr<api::http_server> http;
    caf::actor gateway;
    try {
      actors::account::client accounts{sys, cloud.accounts, cloud.accounts_view};
      std::string error;
      if (!daemon::ensure_admin(accounts, cfg.data_dir, error)) {
        spdlog::error("kumod: {}", error);
        exit_code = 1;
      }
    } catch (const std::exception& e) {
      spdlog::error("kumod: bootstrap failed: {}", e.what());
      exit_code = 1;
    }
    if (exit_code == 0) {
      std::string error;
      api::http_config http_cfg;
      http_cfg.address = cfg.listen_address;
      http_cfg.port = cfg.listen_port;
      http_cfg.region = cfg.region;
      gateway = api::spawn_ec2_gateway(sys, cloud, {cfg.region, cfg.zones, cfg.data_dir, compute->instance_types});
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
      spdlog::info("kumod ready: listening on http://{}:{} region={} data-dir={} credentials={}",
                   cfg.listen_address, http->port(), cfg.region, cfg.data_dir,
                   daemon::credentials_path(cfg.data_dir));
      spdlog::default_logger()->flush();  // whoever waits for "ready" sees it now
      int sig = wait_for_stop_signal(signals);
      spdlog::info("kumod: {} received, shutting down", strsignal(sig));
      http->stop();
    }
    if (gateway) caf::anon_send_exit(gateway, caf::exit_reason::user_shutdown);
    // Running guests stay up: a control-plane stop never touches them.
    caf::anon_send_exit(node, caf::exit_reason::user_shutdown);
    cloud.shutdown(sys);
  }  // the actor system waits for every actor here
  store.reset();
  if (exit_code == 0) spdlog::info("kumod: stopped cleanly");
  spdlog::shutdown();
  return exit_code;
}

}  // namespace

int main(int argc, char** argv) {
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
