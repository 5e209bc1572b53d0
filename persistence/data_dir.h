// The data directory: one kumod owns it at a time.
//
//   <data dir>/kumod.lock         flock()ed by the owning kumod, holds its pid
//   <data dir>/events/            the RocksDB event store
//   <data dir>/admin-credentials  the admin's keys (AWS shared-credentials format)
#pragma once

#include "persistence/event_store.h"

#include <string>

namespace kumo::persistence {

std::string events_path(const std::string& data_dir);

// An exclusive, process-lifetime claim on a data dir. The kernel drops the
// flock when the process dies (even by SIGKILL), so a crash never leaves a
// stale lock behind.
class data_dir_lock {
 public:
  // On failure `result` says who holds the lock (pid) and what to do.
  static std::unique_ptr<data_dir_lock> acquire(const std::string& data_dir, status& result);
  ~data_dir_lock();
  data_dir_lock(const data_dir_lock&) = delete;
  data_dir_lock& operator=(const data_dir_lock&) = delete;

 private:
  explicit data_dir_lock(int fd) : fd_(fd) {}
  int fd_;
};

// Writes `content` to `path` atomically (temp file, fsync, rename) with `mode`.
status write_file_atomically(const std::string& path, const std::string& content, unsigned mode);

}  // namespace kumo::persistence
