#include "actors/storage/backing_store.h"

#include "process/child.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>

namespace kumo::actors::storage {
namespace {

namespace fs = std::filesystem;

file_result failure(std::string detail) { return {false, 0, std::move(detail)}; }

// Copying a large volume takes a while; an hour only bounds a hung qemu-img.
constexpr auto tool_timeout = std::chrono::hours(1);

// Runs argv (no shell); `on_output` sees its output as it grows.
file_result run_tool(const std::vector<std::string>& argv,
                     const std::function<void(std::string_view)>& on_output = {}) {
  auto r = process::run(argv, tool_timeout, on_output);
  if (r.ok()) return {true, 0, {}};
  return failure(r.failure(argv));
}

file_result stat_size(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return failure("stat " + path + ": " + std::strerror(errno));
  return {true, static_cast<uint64_t>(st.st_size), {}};
}

// fsync the file and its folder, then rename tmp -> path: a crash leaves
// either no file or the complete one (plus a .tmp the retry overwrites).
file_result finish(const std::string& tmp, const std::string& path) {
  int fd = ::open(tmp.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 || ::fsync(fd) != 0) {
    if (fd >= 0) ::close(fd);
    return failure("fsync " + tmp + ": " + std::strerror(errno));
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return failure("rename " + tmp + ": " + std::strerror(errno));
  auto dir = fs::path(path).parent_path().string();
  if (int d = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); d >= 0) {
    ::fsync(d);
    ::close(d);
  }
  return stat_size(path);
}

file_result prepare(const std::string& path) {
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  if (ec) return failure("cannot create " + fs::path(path).parent_path().string() + ": " + ec.message());
  return remove_file(path);  // a half-done earlier attempt starts over
}

}  // namespace

std::string volumes_dir(const std::string& data_dir) { return (fs::path(data_dir) / "volumes").string(); }
std::string snapshots_dir(const std::string& data_dir) { return (fs::path(data_dir) / "snapshots").string(); }

std::string volume_file(const std::string& data_dir, const std::string& account, const std::string& volume_id) {
  return (fs::path(volumes_dir(data_dir)) / (account + "." + volume_id + ".raw")).string();
}

std::string snapshot_file(const std::string& data_dir, const std::string& account, const std::string& snapshot_id) {
  return (fs::path(snapshots_dir(data_dir)) / (account + "." + snapshot_id + ".raw")).string();
}

std::string aggregate_id_of_file(const std::string& name) {
  auto base = name;
  if (base.size() > 4 && base.compare(base.size() - 4, 4, ".tmp") == 0) base.resize(base.size() - 4);
  if (base.size() < 4 || base.compare(base.size() - 4, 4, ".raw") != 0) return {};
  base.resize(base.size() - 4);
  auto dot = base.find('.');
  if (dot != 12) return {};
  return base.substr(0, 12) + "/" + base.substr(13);
}

file_result create_volume_file(const std::string& path, uint64_t bytes, const std::string& from_snapshot) {
  if (auto r = prepare(path); !r.ok) return r;
  const auto tmp = path + ".tmp";
  const auto size = std::to_string(bytes);
  if (from_snapshot.empty()) {
    if (auto r = run_tool({"qemu-img", "create", "-q", "-f", "raw", tmp, size}); !r.ok) return r;
  } else {
    // -S: zero runs stay holes, so the copy stays sparse.
    if (auto r = run_tool({"qemu-img", "convert", "-q", "-f", "raw", "-O", "raw", "-S", "4k", from_snapshot, tmp});
        !r.ok)
      return r;
    auto have = stat_size(tmp);
    if (!have.ok) return have;
    if (have.bytes < bytes)
      if (auto r = run_tool({"qemu-img", "resize", "-q", "-f", "raw", tmp, size}); !r.ok) return r;
  }
  return finish(tmp, path);
}

file_result copy_to_snapshot(const std::string& source, const std::string& dest,
                             const std::function<void(int)>& progress) {
  if (auto r = prepare(dest); !r.ok) return r;
  const auto tmp = dest + ".tmp";
  // -U: the volume may be attached to a running guest (QEMU holds its lock);
  // -p prints "(NN.NN/100%)" as it goes.
  std::string pending;
  auto r = run_tool({"qemu-img", "convert", "-U", "-p", "-f", "raw", "-O", "raw", "-S", "4k", source, tmp},
                    [&](std::string_view chunk) {
                      pending += chunk;
                      auto close = pending.rfind("/100%)");
                      if (close == std::string::npos) return;
                      auto open = pending.rfind('(', close);
                      if (open != std::string::npos) {
                        try {
                          progress(static_cast<int>(std::stod(pending.substr(open + 1, close - open - 1))));
                        } catch (const std::exception&) {
                        }
                      }
                      pending.erase(0, close + 6);
                    });
  if (!r.ok) return r;
  return finish(tmp, dest);
}

file_result grow_file(const std::string& path, uint64_t bytes) {
  auto have = stat_size(path);
  if (!have.ok) return have;
  if (have.bytes > bytes) return failure(path + " is larger than the size asked for; volumes never shrink");
  if (have.bytes < bytes)
    if (auto r = run_tool({"qemu-img", "resize", "-q", "-f", "raw", path, std::to_string(bytes)}); !r.ok) return r;
  return stat_size(path);
}

file_result remove_file(const std::string& path) {
  for (const auto& p : {path, path + ".tmp"})
    if (::unlink(p.c_str()) != 0 && errno != ENOENT) return failure("remove " + p + ": " + std::strerror(errno));
  return {true, 0, {}};
}

std::vector<std::string> list_files(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    if (it->is_regular_file(ec)) out.push_back(it->path().filename().string());
  return out;
}

}  // namespace kumo::actors::storage
