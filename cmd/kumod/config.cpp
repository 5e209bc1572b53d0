#include "config.h"

#include <arpa/inet.h>

#include <fstream>
#include <map>
#include <set>

namespace kumo::daemon {
namespace {

// "FIRST-LAST" -> the two halves; false when there is no single '-'.
bool split_range(const std::string& value, std::string& first, std::string& last) {
  auto dash = value.find('-');
  if (dash == std::string::npos || value.find('-', dash + 1) != std::string::npos) return false;
  first = value.substr(0, dash);
  last = value.substr(dash + 1);
  return !first.empty() && !last.empty();
}

bool valid_ipv4(const std::string& text) {
  in_addr a{};
  return inet_pton(AF_INET, text.c_str(), &a) == 1;
}

bool whole_number(const std::string& v, size_t max_digits) {
  return !v.empty() && v.size() <= max_digits && v.find_first_not_of("0123456789") == std::string::npos;
}

bool set_network_option(actors::network_config& n, const std::string& key, const std::string& value,
                        std::string& error) {
  auto bad = [&](const std::string& what) {
    error = "--" + key + " " + what + ", got '" + value + "'";
    return false;
  };
  std::string first, last;
  if (key == "network") {
    if (value == "off") n.mode = actors::network_mode::off;
    else if (value == "ledger") n.mode = actors::network_mode::ledger;
    else if (value == "managed") n.mode = actors::network_mode::managed;
    else return bad("must be off, ledger or managed");
  } else if (key == "net-private") {
    auto slash = value.find('/');
    if (slash == std::string::npos || !valid_ipv4(value.substr(0, slash)) || !whole_number(value.substr(slash + 1), 2) ||
        std::stoi(value.substr(slash + 1)) < 8 || std::stoi(value.substr(slash + 1)) > 24)
      return bad("must be an IPv4 CIDR from /8 to /24 (cut into /24 segments), e.g. 10.16.0.0/16");
    n.pools.private_cidr = value;
  } else if (key == "net-vni") {
    if (!split_range(value, first, last) || !whole_number(first, 8) || !whole_number(last, 8) ||
        std::stoul(first) < 1 || std::stoul(last) > 16777215 || std::stoul(first) > std::stoul(last))
      return bad("must be FIRST-LAST segment ids within 1-16777215 (VLAN mode: 1-4094)");
    n.pools.vni_first = static_cast<uint32_t>(std::stoul(first));
    n.pools.vni_last = static_cast<uint32_t>(std::stoul(last));
  } else if (key == "net-public-pool") {
    if (!split_range(value, first, last) || !valid_ipv4(first) || !valid_ipv4(last))
      return bad("must be FIRST-LAST IPv4 addresses, e.g. 198.51.100.10-198.51.100.250");
    n.pools.public_first = first;
    n.pools.public_last = last;
  } else if (key == "net-auto-public-ip") {
    if (value != "true" && value != "false") return bad("must be true or false");
    n.auto_public_ip = value == "true";
  } else if (key == "net-segments") {
    if (value != "vxlan" && value != "vlan") return bad("must be vxlan or vlan");
    n.segments = value == "vxlan" ? net::segment_mode::vxlan : net::segment_mode::vlan;
  } else if (key == "net-interface") {
    if (value.size() > 15) return bad("must be an interface name (at most 15 characters)");
    n.physical_interface = value;
  } else if (key == "net-metadata-port") {
    if (!whole_number(value, 5) || std::stoul(value) < 1 || std::stoul(value) > 65535) return bad("must be a port");
    n.metadata_port = static_cast<uint16_t>(std::stoul(value));
  } else if (key == "net-reconcile-seconds") {
    if (!whole_number(value, 4) || std::stoul(value) < 1) return bad("must be a whole number of seconds");
    n.reconcile_interval = std::chrono::seconds(std::stoul(value));
  } else {
    error = "unknown setting '" + key + "'";
    return false;
  }
  return true;
}

std::string trim(const std::string& s) {
  auto b = s.find_first_not_of(" \t\r");
  auto e = s.find_last_not_of(" \t\r");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

bool set(config& c, const std::string& key, const std::string& value, std::string& error) {
  if (key == "data-dir") {
    c.data_dir = value;
  } else if (key == "listen" || key == "cluster-listen" || key == "cluster") {
    std::string host;
    uint16_t port = 0;
    if (!split_host_port(value, host, port)) {
      error = "--" + key + " must be HOST:PORT with a port 0..65535, got '" + value + "'";
      return false;
    }
    if (key == "listen") {
      c.listen_address = host;
      c.listen_port = port;
    } else if (key == "cluster-listen") {
      c.cluster_listen = value;
    } else {
      c.cluster = value;
    }
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
    // The cloud and cluster roles always run together (one event log).
    // Storage keeps its volumes and snapshots in the cloud's event log, so it
    // runs in the cloud's process (all-in-one has every role).
    std::set<std::string> roles;
    for (size_t start = 0;;) {
      auto comma = value.find(',', start);
      roles.insert(trim(value.substr(start, comma == std::string::npos ? std::string::npos : comma - start)));
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    const bool storage = roles.erase("storage") > 0;
    if (value == "all-in-one") {
      c.role = value;
      c.storage = true;
    } else if (roles == std::set<std::string>{"cloud"} || roles == std::set<std::string>{"cloud", "cluster"}) {
      c.role = "cloud";
      c.storage = storage;
    } else if (value == "node") {
      c.role = value;
      c.storage = false;
    } else if (storage && roles.empty()) {
      error = "--role=storage runs with the cloud role, whose event log holds the volumes: use "
              "--role=cloud,cluster,storage (or all-in-one)";
      return false;
    } else {
      error = "--role must be all-in-one, cloud,cluster[,storage] or node, got '" + value + "'";
      return false;
    }
  } else if (key == "log-level") {
    c.log_level = value;
  } else if (key == "threads") {
    if (value.empty() || value.find_first_not_of("0123456789") != std::string::npos ||
        value.size() > 3) {
      error = "--threads must be a small number, got '" + value + "'";
      return false;
    }
    c.worker_threads = static_cast<unsigned>(std::stoul(value));
  } else if (key == "max-connections") {
    if (value.empty() || value.find_first_not_of("0123456789") != std::string::npos || value.size() > 6 ||
        std::stoul(value) == 0) {
      error = "--max-connections must be a number from 1 to 999999, got '" + value + "'";
      return false;
    }
    c.max_connections = static_cast<unsigned>(std::stoul(value));
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
  } else if (key == "network" || key.rfind("net-", 0) == 0) {
    if (!set_network_option(c.network, key, value, error)) return false;
  } else if (key.rfind("ldap-", 0) == 0) {
    if (!actors::ldap::set_option(c.ldap, key.substr(5), value, error)) return false;
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

bool split_host_port(const std::string& text, std::string& host, uint16_t& port) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size() || text.size() - colon > 6 ||
      text.find_first_not_of("0123456789", colon + 1) != std::string::npos)
    return false;
  auto n = std::stoul(text.substr(colon + 1));
  if (n > 65535) return false;
  host = text.substr(0, colon);
  port = static_cast<uint16_t>(n);
  return true;
}

const char* usage() {
  return "usage: kumod [--config=FILE] [--data-dir=DIR] [--listen=HOST:PORT] [--region=NAME]\n"
         "             [--zones=A,B] [--role=all-in-one|cloud,cluster[,storage]|node] [--cluster-listen=HOST:PORT]\n"
         "             [--cluster=HOST:PORT] [--log-level=trace|debug|info|warn|error]\n"
         "             [--threads=N] [--max-connections=N] [--hypervisor=libvirt|fake] [--libvirt-uri=URI]\n"
         "             [--node-id=NAME]\n"
         "             [--node-vcpus=N] [--node-memory-mib=N] [--node-disk-gib=N]\n"
         "             [--instance-types=name:vcpus:mib:gib,...] [--placement=pack|spread]\n"
         "             [--stop-grace-seconds=N]\n"
         "             [--ldap-uri=ldap://HOST:PORT --ldap-bind-dn=DN --ldap-bind-password-file=FILE\n"
         "              --ldap-user-base=DN --ldap-group-base=DN ...] (see docs/identity.md)\n"
         "             [--network=off|ledger|managed --net-private=CIDR --net-vni=FIRST-LAST\n"
         "              --net-public-pool=FIRST-LAST --net-auto-public-ip=true|false --net-segments=vxlan|vlan\n"
         "              --net-interface=IF --net-metadata-port=N --net-reconcile-seconds=N] (see docs/networking.md)\n"
         "defaults: --data-dir=/var/lib/kumo --listen=127.0.0.1:8773 --region=kumo-1\n"
         "          --zones=<region>a --role=all-in-one --cluster-listen=127.0.0.1:8774\n"
         "          --hypervisor=libvirt --libvirt-uri=qemu:///system\n"
         "          --node-id=<host name>, node capacity detected, Eucalyptus's instance types\n"
         "          --network=off --net-private=10.16.0.0/16 --net-vni=1000-1999 --net-segments=vxlan\n"
         "          --net-metadata-port=8775 --net-reconcile-seconds=5\n";
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
  if (auto missing = actors::ldap::incomplete(c.ldap); !missing.empty()) {
    error = missing;
    return std::nullopt;
  }
  if (c.role == "node" && c.cluster.empty()) {
    error = "--role=node needs --cluster=HOST:PORT (the cloud kumod's --cluster-listen)";
    return std::nullopt;
  }
  return c;
}

}  // namespace kumo::daemon
