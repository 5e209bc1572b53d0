#include "compute.h"

#include "actors/compute/instance_types.h"
#include "net/dataplane.h"

#include <spdlog/spdlog.h>

#include <net/if.h>
#include <unistd.h>

#include <filesystem>
#include <sstream>

namespace kumo::daemon {

std::optional<cluster_setup> prepare_cluster(const config& cfg, std::string& error) {
  cluster_setup out;
  out.cluster.zones = cfg.zones;
  out.cluster.placement = cfg.placement == "spread" ? actors::zone::policy::spread : actors::zone::policy::pack;

  out.instance_types = actors::default_instance_types();
  if (!cfg.instance_types.empty()) {
    out.instance_types.clear();
    std::stringstream in(cfg.instance_types);
    for (std::string item; std::getline(in, item, ',');) {
      auto t = actors::parse_instance_type(item, error);
      if (!t) return std::nullopt;
      out.instance_types.push_back(*t);
    }
  }

  return out;
}

std::optional<node_setup> prepare_node(const config& cfg, std::string& error) {
  node_setup out;
  auto& node = out.node;
  node.node_id = cfg.node_id;
  if (node.node_id.empty()) {
    char host[256] = {};
    node.node_id = ::gethostname(host, sizeof host - 1) == 0 && host[0] ? host : "node-1";
  }
  node.zone = cfg.zones.front();
  node.instances_dir = (std::filesystem::path(cfg.data_dir) / "instances").string();
  std::error_code ec;
  std::filesystem::create_directories(node.instances_dir, ec);
  if (ec) {
    error = "cannot create " + node.instances_dir + ": " + ec.message();
    return std::nullopt;
  }
  node.vcpus = cfg.node_vcpus;
  node.memory_mib = cfg.node_memory_mib;
  node.disk_gib = cfg.node_disk_gib;
  node.stop_grace = std::chrono::seconds(cfg.stop_grace_seconds);
  actors::detect_capacity(node);

  if (cfg.hypervisor == "fake") {
    out.driver = hypervisor::make_fake_driver();
  } else {
    std::string why;
    out.driver = hypervisor::make_libvirt_driver(cfg.libvirt_uri, why);
    if (!out.driver) {
      error = "the hypervisor at " + cfg.libvirt_uri + " is not reachable: " + why +
              " (start it with tools/libvirtd, or run --hypervisor=fake to try kumo without VMs)";
      return std::nullopt;
    }
  }
  if (cfg.role == "node" && cfg.network.mode == actors::network_mode::managed) {
    // A node host makes its guests' segments itself; the cloud host is their gateway.
    if (cfg.network.physical_interface.empty() || !if_nametoindex(cfg.network.physical_interface.c_str())) {
      error = "--network=managed on a node needs --net-interface naming an interface of this host (it carries the "
              "segments to the cloud host), got '" + cfg.network.physical_interface + "'";
      return std::nullopt;
    }
    std::string why;
    node.links = net::make_node_dataplane(why);
    if (!node.links) {
      error = "--network=managed: this node cannot make its guests' bridges: " + why;
      return std::nullopt;
    }
    node.net_interface = cfg.network.physical_interface;
    spdlog::info("kumod: node {}: managed networking: {} over {}", node.node_id, node.links->describe(),
                 node.net_interface);
  }
  spdlog::info("kumod: node {} in {}: {} ({} vCPU, {} MiB, {} GiB offered)", node.node_id, node.zone,
               out.driver->describe(), node.vcpus, node.memory_mib, node.disk_gib);
  return out;
}

}  // namespace kumo::daemon
