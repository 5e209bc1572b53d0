#include "actors/node/volumes.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>

namespace kumo::actors {
namespace {

constexpr const char* root_dev = "vda";

// "vol-..." from a backing file "<account>.<vol id>.raw" (see actors/storage/backing_store.h).
std::string volume_of_path(const std::string& path) {
  auto name = std::filesystem::path(path).filename().string();
  auto dot = name.find('.');
  auto end = name.rfind(".raw");
  if (dot == std::string::npos || end == std::string::npos || end <= dot) return {};
  auto id = name.substr(dot + 1, end - dot - 1);
  return id.rfind("vol-", 0) == 0 ? id : std::string{};
}

hypervisor::disk_spec disk_of(const desired_volume& v) { return {v.path, v.target_dev, "raw", false}; }

}  // namespace

void add_volume_disks(const desired_instance& d, std::vector<hypervisor::disk_spec>& disks) {
  for (const auto& v : d.volumes) disks.push_back(disk_of(v));
}

void reconcile_volumes(hypervisor::driver& driver, const std::string& node_id, const desired_instance& d,
                       observed_instance& seen) {
  auto have = driver.disks(d.instance_id);
  if (!have) return;
  if (have->empty()) {  // no domain (yet): nothing is plugged in
    seen.volumes_seen = true;
    return;
  }
  auto wanted = [&](const hypervisor::disk_spec& disk) {
    return std::any_of(d.volumes.begin(), d.volumes.end(), [&](const desired_volume& v) {
      return v.target_dev == disk.target_dev && v.path == disk.path;
    });
  };
  bool changed = false;
  for (const auto& disk : *have) {
    if (disk.target_dev == root_dev || wanted(disk)) continue;
    if (auto r = driver.detach_disk(d.instance_id, disk.target_dev); !r)
      spdlog::warn("node {}: unplugging {} ({}) from {}: {}", node_id, disk.target_dev, disk.path, d.instance_id,
                   r.message);
    else
      spdlog::info("node {}: unplugged {} ({}) from {}", node_id, disk.target_dev, disk.path, d.instance_id);
    changed = true;
  }
  for (const auto& v : d.volumes) {
    bool target_used = std::any_of(have->begin(), have->end(),
                                   [&](const hypervisor::disk_spec& x) { return x.target_dev == v.target_dev; });
    if (target_used) continue;  // ours already, or freed by the unplug above (next round)
    if (auto r = driver.attach_disk(d.instance_id, disk_of(v)); !r)
      spdlog::warn("node {}: plugging {} into {} as {}: {}", node_id, v.volume_id, d.instance_id, v.target_dev,
                   r.message);
    else
      spdlog::info("node {}: plugged {} into {} as {}", node_id, v.volume_id, d.instance_id, v.target_dev);
    changed = true;
  }
  if (changed) have = driver.disks(d.instance_id);
  if (!have) return;
  seen.volumes_seen = true;
  for (const auto& disk : *have)
    if (disk.target_dev != root_dev)
      if (auto id = volume_of_path(disk.path); !id.empty()) seen.volumes.push_back(id);
}

}  // namespace kumo::actors
