// kumod's settings: command-line flags, optionally a config file of the same
// keys ("key = value" lines, '#' comments). Flags win over the file.
#pragma once

#include "actors/ldap/ldap_config.h"
#include "actors/network/network_actors.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace kumo::daemon {

struct config {
  std::string data_dir = "/var/lib/kumo";
  std::string listen_address = "127.0.0.1";
  uint16_t listen_port = 8773;  // Eucalyptus's port
  std::string region = "kumo-1";
  std::vector<std::string> zones;  // availability zones = clusters; default "<region>a"
  std::string role = "all-in-one";     // all-in-one | cloud (cloud+cluster) | node
  bool storage = true;                 // the storage role (volumes, snapshots) runs in this process
  std::string cluster_listen = "127.0.0.1:8774";  // cloud role: where nodes connect (CAF middleman)
  std::string cluster;                 // node role: HOST:PORT of the cloud's cluster endpoint
  std::string log_level = "info";
  unsigned worker_threads = 0;  // 0 = one per core
  unsigned max_connections = 1024;  // open API connections; more are answered RequestLimitExceeded
  // Compute
  std::string hypervisor = "libvirt";  // libvirt | fake (in-process, for tests and demos)
  std::string libvirt_uri = "qemu:///system";
  std::string node_id;                 // default: the host name
  uint64_t node_vcpus = 0;             // capacity offered; 0 = detect (CPUs x 4, RAM, free disk)
  uint64_t node_memory_mib = 0;
  uint64_t node_disk_gib = 0;
  std::string instance_types;          // "name:vcpus:mib:gib,..." replaces the defaults
  std::string placement = "pack";      // pack | spread
  unsigned stop_grace_seconds = 30;    // ACPI shutdown, then the plug is pulled
  // Identity: the LDAP directory (--ldap-* flags; none by default)
  actors::ldap::ldap_config ldap;
  // Networking (--network and --net-* flags; off by default)
  actors::network_config network;
};

// "HOST:PORT" -> (host, port); false when malformed.
bool split_host_port(const std::string& text, std::string& host, uint16_t& port);

// Returns the config, or nullopt with a message in `error` naming the bad flag.
std::optional<config> parse_config(const std::vector<std::string>& args, std::string& error);
const char* usage();

}  // namespace kumo::daemon
