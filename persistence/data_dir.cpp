#include "persistence/data_dir.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

namespace kumo::persistence {

std::string events_path(const std::string& data_dir) { return data_dir + "/events"; }

std::unique_ptr<data_dir_lock> data_dir_lock::acquire(const std::string& data_dir,
                                                      status& result) {
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  if (ec) {
    result = status::error(status_code::io_error,
                           "cannot create data dir " + data_dir + ": " + ec.message());
    return nullptr;
  }
  // Secrets live here: owner only, also for a dir created by someone else.
  std::filesystem::permissions(data_dir, std::filesystem::perms::owner_all,
                               std::filesystem::perm_options::replace, ec);
  if (ec) {
    result = status::error(status_code::io_error,
                           "cannot restrict data dir " + data_dir + " to its owner: " + ec.message());
    return nullptr;
  }
  auto path = data_dir + "/kumod.lock";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    result = status::error(status_code::io_error,
                           "cannot open " + path + ": " + std::strerror(errno));
    return nullptr;
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    char pid[32] = {};
    ssize_t n = ::pread(fd, pid, sizeof(pid) - 1, 0);
    ::close(fd);
    std::string holder = n > 0 ? std::string(pid, std::strcspn(pid, "\n")) : "unknown";
    result = status::error(
        status_code::conflict,
        err == EWOULDBLOCK
            ? "data dir " + data_dir + " is already in use by another kumod (pid " + holder +
                  "); stop it first or pass a different --data-dir"
            : "cannot lock " + path + ": " + std::strerror(err));
    return nullptr;
  }
  auto pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) < 0) {
    // The lock itself holds; the pid is only a courtesy for the error message.
  }
  result = status::success();
  return std::unique_ptr<data_dir_lock>(new data_dir_lock(fd));
}

data_dir_lock::~data_dir_lock() { ::close(fd_); }

status write_file_atomically(const std::string& path, const std::string& content,
                             unsigned mode) {
  auto tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  auto fail = [&](const char* step) {
    auto msg = std::string(step) + " " + tmp + ": " + std::strerror(errno);
    if (fd >= 0) ::close(fd);
    ::unlink(tmp.c_str());
    return status::error(status_code::io_error, msg);
  };
  if (fd < 0) return fail("cannot create");
  if (::fchmod(fd, mode) != 0) return fail("cannot chmod");
  if (::write(fd, content.data(), content.size()) != static_cast<ssize_t>(content.size()))
    return fail("cannot write");
  if (::fsync(fd) != 0) return fail("cannot fsync");
  ::close(fd);
  fd = -1;
  if (::rename(tmp.c_str(), path.c_str()) != 0) return fail("cannot rename onto");
  auto dir = std::filesystem::path(path).parent_path().string();
  int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return status::success();
}

}  // namespace kumo::persistence
