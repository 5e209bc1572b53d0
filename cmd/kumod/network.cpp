#include "network.h"

#include <spdlog/spdlog.h>

#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

namespace kumo::daemon {
namespace {

// The MTU of an interface of this network namespace (/sys may show another's), or -1.
int interface_mtu(const std::string& name) {
  ifreq req{};
  if (name.empty() || name.size() >= sizeof req.ifr_name) return -1;
  std::strncpy(req.ifr_name, name.c_str(), sizeof req.ifr_name - 1);
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  const int rc = ::ioctl(fd, SIOCGIFMTU, &req);
  ::close(fd);
  return rc == 0 ? req.ifr_mtu : -1;
}

}  // namespace

std::optional<network_setup> prepare_network(const config& cfg, std::string& error) {
  network_setup out;
  out.cfg = cfg.network;
  out.cfg.region = cfg.region;
  out.cfg.host_id = cfg.node_id.empty() ? "local" : cfg.node_id;
  if (out.cfg.mode != actors::network_mode::managed) return out;
  // With split roles this is the cloud host: the segments' gateway (NAT,
  // DHCP, metadata), reached over --net-interface by the node hosts, which
  // make their guests' links themselves (see prepare_node).
  if (cfg.role != "all-in-one" && cfg.network.physical_interface.empty()) {
    error = "--network=managed with split roles needs --net-interface: the interface that carries the segments "
            "to the node hosts";
    return std::nullopt;
  }
  if (!out.cfg.physical_interface.empty()) {
    // Guests must send frames the segment can carry: a bridge never fragments.
    const int mtu = interface_mtu(out.cfg.physical_interface);
    if (mtu <= 0) {
      error = "--net-interface=" + out.cfg.physical_interface + " does not exist on this host";
      return std::nullopt;
    }
    out.cfg.guest_mtu = out.cfg.segments == net::segment_mode::vxlan ? mtu - 50 : mtu;
  }
  const auto state_dir = cfg.data_dir + "/net";
  std::error_code ec;
  std::filesystem::create_directories(state_dir, ec);
  if (ec) {
    error = "cannot create " + state_dir + ": " + ec.message();
    return std::nullopt;
  }
  std::string why;
  auto dp = net::make_kernel_dataplane({state_dir, true}, why);
  if (!dp) {
    error = "--network=managed: the data plane cannot start: " + why;
    return std::nullopt;
  }
  // Guests reach it through the per-segment DNAT of 169.254.169.254:80.
  auto md = net::start_metadata_server("0.0.0.0", out.cfg.metadata_port, why);
  if (!md) {
    error = "--network=managed: the metadata server cannot listen on port " + std::to_string(out.cfg.metadata_port) +
            ": " + why + " (choose another with --net-metadata-port)";
    return std::nullopt;
  }
  spdlog::info("kumod: managed networking on this host: {}; metadata on :{}", dp->describe(), out.cfg.metadata_port);
  out.plane = {std::move(dp), std::move(md)};
  return out;
}

}  // namespace kumo::daemon
