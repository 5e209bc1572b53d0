#include "actors/compute/instance_types.h"

#include <sstream>

namespace kumo::actors {

std::vector<instance::sizing> default_instance_types() {
  return {{"t1.micro", 1, 256, 5},   {"m1.small", 1, 256, 5},   {"m1.medium", 1, 512, 10},
          {"c1.medium", 2, 512, 10}, {"m1.large", 2, 512, 10},  {"m1.xlarge", 2, 1024, 10},
          {"c1.xlarge", 2, 2048, 10}};
}

std::optional<instance::sizing> parse_instance_type(const std::string& text, std::string& error) {
  std::vector<std::string> parts;
  std::stringstream in(text);
  for (std::string p; std::getline(in, p, ':');) parts.push_back(p);
  auto number = [](const std::string& s) -> uint64_t {
    if (s.empty() || s.size() > 9 || s.find_first_not_of("0123456789") != std::string::npos) return 0;
    return std::stoull(s);
  };
  if (parts.size() != 4 || parts[0].empty() || parts[0].size() > 64) {
    error = "instance type '" + text + "' must look like name:vcpus:memory_mib:disk_gib";
    return std::nullopt;
  }
  instance::sizing s{parts[0], static_cast<unsigned>(number(parts[1])), number(parts[2]), number(parts[3])};
  if (!s.vcpus || s.vcpus > 256 || s.memory_mib < 64 || !s.disk_gib) {
    error = "instance type '" + text + "' needs 1-256 vCPUs, at least 64 MiB and 1 GiB";
    return std::nullopt;
  }
  return s;
}

}  // namespace kumo::actors
