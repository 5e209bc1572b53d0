#include "config.h"

#include <fstream>
#include <map>

namespace kumo::daemon {
namespace {

std::string trim(const std::string& s) {
  auto b = s.find_first_not_of(" \t\r");
  auto e = s.find_last_not_of(" \t\r");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

bool set(config& c, const std::string& key, const std::string& value, std::string& error) {
  if (key == "data-dir") {
    c.data_dir = value;
  } else if (key == "listen") {
    auto colon = value.rfind(':');
    if (colon == std::string::npos || colon == 0) {
      error = "--listen must be HOST:PORT, got '" + value + "'";
      return false;
    }
    try {
      auto port = std::stoul(value.substr(colon + 1));
      if (port > 65535) throw std::out_of_range("port");
      c.listen_port = static_cast<uint16_t>(port);
    } catch (const std::exception&) {
      error = "--listen port must be 0..65535, got '" + value.substr(colon + 1) + "'";
      return false;
    }
    c.listen_address = value.substr(0, colon);
  } else if (key == "region") {
    c.region = value;
  } else if (key == "zones") {
    c.zones.clear();
    size_t start = 0;
    while (start <= value.size()) {
      auto comma = value.find(',', start);
      auto zone = trim(value.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
      if (!zone.empty()) c.zones.push_back(zone);
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    if (c.zones.empty()) {
      error = "--zones needs at least one zone name";
      return false;
    }
  } else if (key == "role") {
    if (value != "all-in-one") {
      error = "--role=" + value + " is not available yet; this kumod runs all-in-one only";
      return false;
    }
    c.role = value;
  } else if (key == "log-level") {
    c.log_level = value;
  } else if (key == "threads") {
    if (value.empty() || value.find_first_not_of("0123456789") != std::string::npos ||
        value.size() > 3) {
      error = "--threads must be a small number, got '" + value + "'";
      return false;
    }
    c.worker_threads = static_cast<unsigned>(std::stoul(value));
  } else if (key == "hypervisor") {
    if (value != "libvirt" && value != "fake") {
      error = "--hypervisor must be libvirt or fake, got '" + value + "'";
      return false;
    }
    c.hypervisor = value;
  } else if (key == "libvirt-uri") {
    c.libvirt_uri = value;
  } else if (key == "node-id") {
    c.node_id = value;
  } else if (key == "node-vcpus" || key == "node-memory-mib" || key == "node-disk-gib" ||
             key == "stop-grace-seconds") {
    if (value.empty() || value.size() > 9 || value.find_first_not_of("0123456789") != std::string::npos) {
      error = "--" + key + " must be a whole number, got '" + value + "'";
      return false;
    }
    auto n = std::stoull(value);
    if (key == "node-vcpus") c.node_vcpus = n;
    if (key == "node-memory-mib") c.node_memory_mib = n;
    if (key == "node-disk-gib") c.node_disk_gib = n;
    if (key == "stop-grace-seconds") c.stop_grace_seconds = static_cast<unsigned>(n);
  } else if (key == "instance-types") {
    c.instance_types = value;
  } else if (key == "placement") {
    if (value != "pack" && value != "spread") {
      error = "--placement must be pack or spread, got '" + value + "'";
      return false;
    }
    c.placement = value;
  } else {
    error = "unknown setting '" + key + "'";
    return false;
  }
  if (value.empty()) {
    error = "setting '" + key + "' needs a value";
    return false;
  }
  return true;
}

}  // namespace

const char* usage() {
  return "usage: kumod [--config=FILE] [--data-dir=DIR] [--listen=HOST:PORT] [--region=NAME]\n"
         "             [--zones=A,B] [--role=all-in-one] [--log-level=trace|debug|info|warn|error]\n"
         "             [--threads=N] [--hypervisor=libvirt|fake] [--libvirt-uri=URI] [--node-id=NAME]\n"
         "             [--node-vcpus=N] [--node-memory-mib=N] [--node-disk-gib=N]\n"
         "             [--instance-types=name:vcpus:mib:gib,...] [--placement=pack|spread]\n"
         "             [--stop-grace-seconds=N]\n"
         "defaults: --data-dir=/var/lib/kumo --listen=127.0.0.1:8773 --region=kumo-1\n"
         "          --zones=<region>a --hypervisor=libvirt --libvirt-uri=qemu:///system\n"
         "          --node-id=<host name>, node capacity detected, Eucalyptus's instance types\n";
}

std::optional<config> parse_config(const std::vector<std::string>& args, std::string& error) {
  std::map<std::string, std::string> flags;
  std::string file;
  for (const auto& a : args) {
    if (a.rfind("--", 0) != 0 || a.find('=') == std::string::npos) {
      error = "unexpected argument '" + a + "' (flags are --key=value)";
      return std::nullopt;
    }
    auto eq = a.find('=');
    auto key = a.substr(2, eq - 2);
    if (key == "config")
      file = a.substr(eq + 1);
    else
      flags[key] = a.substr(eq + 1);
  }
  config c;
  if (!file.empty()) {
    std::ifstream in(file);
    if (!in) {
      error = "cannot read config file " + file;
      return std::nullopt;
    }
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
      line = trim(line.substr(0, line.find('#')));
      if (line.empty()) continue;
      auto eq = line.find('=');
      if (eq == std::string::npos ||
          !set(c, trim(line.substr(0, eq)), trim(line.substr(eq + 1)), error)) {
        error = file + ":" + std::to_string(n) + ": " +
                (error.empty() ? "expected 'key = value'" : error);
        return std::nullopt;
      }
    }
  }
  for (const auto& [k, v] : flags)
    if (!set(c, k, v, error)) return std::nullopt;
  if (c.zones.empty()) c.zones.push_back(c.region + "a");
  return c;
}

}  // namespace kumo::daemon
