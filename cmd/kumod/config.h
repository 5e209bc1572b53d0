// kumod's settings: command-line flags, optionally a config file of the same
// keys ("key = value" lines, '#' comments). Flags win over the file.
#pragma once

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
  std::string role = "all-in-one";
  std::string log_level = "info";
  unsigned worker_threads = 0;  // 0 = one per core
};

// Returns the config, or nullopt with a message in `error` naming the bad flag.
std::optional<config> parse_config(const std::vector<std::string>& args, std::string& error);
const char* usage();

}  // namespace kumo::daemon
