// The files behind volumes and snapshots: sparse raw files under the data
// directory, made with qemu-img and measured with stat() afterwards.
//   <data dir>/volumes/<account>.<vol id>.raw
//   <data dir>/snapshots/<account>.<snap id>.raw
// Every operation is idempotent (a crashed attempt is simply done again):
// files are written as "<name>.tmp" and renamed into place when complete.
// Blocking: call from a detached worker actor.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace kumo::actors::storage {

struct file_result {
  bool ok = false;
  uint64_t bytes = 0;   // stat() size of the finished file
  std::string detail;   // what failed
};

std::string volumes_dir(const std::string& data_dir);
std::string snapshots_dir(const std::string& data_dir);
std::string volume_file(const std::string& data_dir, const std::string& account, const std::string& volume_id);
std::string snapshot_file(const std::string& data_dir, const std::string& account, const std::string& snapshot_id);
// "<account>/<id>" of a file in one of those folders (".tmp" or not); "" if the name is not ours.
std::string aggregate_id_of_file(const std::string& file_name);

// A sparse raw file of exactly `bytes`, empty or holding `from_snapshot`'s data.
file_result create_volume_file(const std::string& path, uint64_t bytes, const std::string& from_snapshot);
// A copy of `source` (which a running guest may have open) at `dest`;
// `progress(percent)` is called as qemu-img reports it.
file_result copy_to_snapshot(const std::string& source, const std::string& dest,
                             const std::function<void(int)>& progress);
// Grows the file to exactly `bytes` (idempotent: a repeat after a crash is harmless).
file_result grow_file(const std::string& path, uint64_t bytes);
// Removes the file and any leftover "<path>.tmp". A missing file is success.
file_result remove_file(const std::string& path);
// The names of the regular files in `dir` (none if it does not exist).
std::vector<std::string> list_files(const std::string& dir);

}  // namespace kumo::actors::storage
