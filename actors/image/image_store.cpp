#include "actors/image/image_store.h"

#include "actors/image/image.h"
#include "crypto/digest.h"
#include "process/child.h"

#include <nlohmann/json.hpp>
#include <openssl/evp.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <memory>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace kumo::actors::image {
namespace fs = std::filesystem;

namespace {

constexpr size_t chunk_bytes = 1 << 20;
constexpr auto qemu_img_timeout = std::chrono::seconds(60);

api_error bad_location(const std::string& location, const std::string& why) {
  return {"InvalidParameterValue", "Value (" + location.substr(0, 256) + ") for parameter ImageLocation is invalid: " + why};
}

std::string errno_text(int err) { return std::strerror(err); }

// An absolute path from an absolute path or a file:// URL (percent-decoded).
std::optional<std::string> local_path(const std::string& location) {
  std::string path = location;
  if (location.rfind("file://", 0) == 0) {
    path = location.substr(7);
    if (path.rfind("localhost/", 0) == 0) path = path.substr(9);
    std::string decoded;
    for (size_t i = 0; i < path.size(); ++i) {
      if (path[i] == '%' && i + 2 < path.size() && std::isxdigit(static_cast<unsigned char>(path[i + 1])) &&
          std::isxdigit(static_cast<unsigned char>(path[i + 2]))) {
        decoded += static_cast<char>(std::stoi(path.substr(i + 1, 2), nullptr, 16));
        i += 2;
      } else {
        decoded += path[i];
      }
    }
    path = decoded;
  }
  if (path.empty() || path[0] != '/' || path.find('\0') != std::string::npos) return std::nullopt;
  return path;
}

struct fd_guard {
  int fd = -1;
  ~fd_guard() {
    if (fd >= 0) ::close(fd);
  }
};

struct sha256_ctx {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx{EVP_MD_CTX_new(), &EVP_MD_CTX_free};
  sha256_ctx() { EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr); }
  void update(const void* data, size_t n) { EVP_DigestUpdate(ctx.get(), data, n); }
  std::string hex() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx.get(), md, &len);
    return crypto::to_hex({reinterpret_cast<const char*>(md), len});
  }
};

bool all_zero(const char* p, size_t n) {
  return n == 0 || (p[0] == 0 && std::memcmp(p, p + 1, n - 1) == 0);
}

// Copies [0, size) of `src` to `dst` (already `size` long and all holes):
// only data is written, holes stay holes, and everything is hashed.
std::string copy_sparse(int src, int dst, int64_t size, sha256_ctx& hash) {
  static const std::vector<char> zeros(chunk_bytes, 0);
  std::vector<char> buf(chunk_bytes);
  auto hash_zeros = [&](int64_t n) {
    for (; n > 0; n -= static_cast<int64_t>(chunk_bytes)) hash.update(zeros.data(), std::min<int64_t>(n, chunk_bytes));
  };
  int64_t off = 0;
  while (off < size) {
    auto data = ::lseek(src, off, SEEK_DATA);
    if (data < 0) data = errno == ENXIO ? size : off;  // ENXIO: only a hole is left; else no hole support
    data = std::min<int64_t>(data, size);
    hash_zeros(data - off);
    auto hole = data < size ? ::lseek(src, data, SEEK_HOLE) : size;
    if (hole < 0) hole = size;
    hole = std::min<int64_t>(hole, size);
    for (off = data; off < hole;) {
      auto want = static_cast<size_t>(std::min<int64_t>(hole - off, chunk_bytes));
      auto got = ::pread(src, buf.data(), want, off);
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) return "reading failed at byte " + std::to_string(off) + ": " + errno_text(errno);
      if (got == 0) return "the file shrank while it was copied; retry when nothing writes to it";
      hash.update(buf.data(), static_cast<size_t>(got));
      if (!all_zero(buf.data(), static_cast<size_t>(got))) {
        for (ssize_t done = 0; done < got;) {
          auto w = ::pwrite(dst, buf.data() + done, static_cast<size_t>(got - done), off + done);
          if (w < 0 && errno == EINTR) continue;
          if (w < 0) return "writing the image store failed: " + errno_text(errno);
          done += w;
        }
      }
      off += got;
    }
    off = std::max(off, hole);
  }
  return "";
}

std::string file_name_for(const std::string& kind) { return kind == "machine" ? "disk" : kind; }

}  // namespace

std::string images_root(const std::string& data_dir) { return (fs::path(data_dir) / "images").string(); }

std::string detect_kind(std::string_view head) {
  auto starts = [&](std::string_view magic) { return head.substr(0, magic.size()) == magic; };
  if (head.size() >= 0x206 && head.substr(0x202, 4) == "HdrS") return "kernel";
  using namespace std::string_view_literals;
  for (auto magic : {"\x1f\x8b"sv, "\xfd" "7zXZ\0"sv, "\x28\xb5\x2f\xfd"sv, "\x02\x21\x4c\x18"sv, "070701"sv, "070702"sv})
    if (starts(magic)) return "ramdisk";
  return "machine";
}

disk_check check_disk_info(const std::string& qemu_img_json) {
  auto j = nlohmann::json::parse(qemu_img_json, nullptr, false);
  if (!j.is_object() || !j.contains("format") || !j["format"].is_string())
    return {"", "qemu-img did not describe it as a disk image"};
  auto format = j["format"].get<std::string>();
  if (format != "raw" && format != "qcow2")
    return {"", "it is a " + format.substr(0, 32) + " disk; kumo takes raw or qcow2 (qemu-img convert -O qcow2 ...)"};
  if (j.contains("backing-filename") || j.contains("full-backing-filename"))
    return {"", "it has a backing file; flatten it first (qemu-img convert -O qcow2 ...)"};
  const auto& specific = j.value("format-specific", nlohmann::json::object());
  if (specific.is_object() && specific.contains("data") && specific["data"].is_object() &&
      specific["data"].contains("data-file"))
    return {"", "it has an external data file; flatten it first (qemu-img convert -O qcow2 ...)"};
  if (j.value("encrypted", false)) return {"", "it is encrypted; kumo cannot boot encrypted images"};
  return {format, ""};
}

import_result import_image(const std::string& location, const std::string& root) {
  import_result r;
  auto fail = [&](api_error e) {
    r.error = std::move(e);
    return r;
  };
  auto path = local_path(location);
  if (!path) return fail(bad_location(location, "use an absolute path on the cloud host or a file:// URL"));
  // O_NONBLOCK: a FIFO must not hang the import; it is refused just below.
  fd_guard src{::open(path->c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC)};
  if (src.fd < 0) return fail(bad_location(location, "it cannot be read (" + errno_text(errno) + ")"));
  struct stat st {};
  if (::fstat(src.fd, &st) != 0 || !S_ISREG(st.st_mode))
    return fail(bad_location(location, "it is not a regular file"));
  if (st.st_size == 0) return fail(bad_location(location, "the file is empty"));
  std::string head(4096, '\0');
  auto n = ::pread(src.fd, head.data(), head.size(), 0);
  if (n < 0) return fail(bad_location(location, "it cannot be read (" + errno_text(errno) + ")"));
  head.resize(static_cast<size_t>(n));
  r.kind = detect_kind(head);

  std::error_code ec;
  fs::create_directories(root, ec);
  if (ec) return fail({"InternalError", "the image store " + root + " cannot be created: " + ec.message()});
  fs::path dir;
  for (int attempt = 0; attempt < 5 && dir.empty(); ++attempt) {  // a taken id: pick another
    r.image_id = new_image_id(r.kind);
    if (::mkdir((fs::path(root) / r.image_id).c_str(), 0700) == 0) dir = fs::path(root) / r.image_id;
    else if (errno != EEXIST)
      return fail({"InternalError", "the image store " + root + " is not writable: " + errno_text(errno)});
  }
  if (dir.empty()) return fail({"InternalError", "no free image id in " + root + "; retry"});
  // From here on, any failure removes the directory again.
  auto fail_clean = [&](api_error e) {
    fs::remove_all(dir, ec);
    return fail(std::move(e));
  };
  auto partial = dir / (file_name_for(r.kind) + ".partial");
  fd_guard dst{::open(partial.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)};
  if (dst.fd < 0 || ::ftruncate(dst.fd, st.st_size) != 0)
    return fail_clean({"InternalError", "cannot create " + partial.string() + ": " + errno_text(errno)});
  sha256_ctx hash;
  if (auto err = copy_sparse(src.fd, dst.fd, st.st_size, hash); !err.empty())
    return fail_clean(bad_location(location, err));
  if (::fsync(dst.fd) != 0)
    return fail_clean({"InternalError", "cannot flush " + partial.string() + ": " + errno_text(errno)});
  r.sha256 = hash.hex();
  r.size_bytes = st.st_size;

  if (r.kind == "machine") {
    const std::vector<std::string> argv{"qemu-img", "info", "--output=json", partial.string()};
    auto info = process::run(argv, qemu_img_timeout);
    if (!info.started)
      return fail_clean({"InternalError", info.error + "; install qemu-utils on the cloud host"});
    if (!info.ok())
      return fail_clean(bad_location(location, "it is not a disk image qemu-img can read (" + info.failure(argv) + ")"));
    auto check = check_disk_info(info.out);
    if (check.format.empty()) return fail_clean(bad_location(location, check.error));
    r.disk_format = check.format;
  }
  auto final_path = dir / file_name_for(r.kind);
  if (::rename(partial.c_str(), final_path.c_str()) != 0)
    return fail_clean({"InternalError", "cannot rename " + partial.string() + ": " + errno_text(errno)});
  // The rename itself must survive a crash before the event says the file is there.
  if (fd_guard d{::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)}; d.fd >= 0) ::fsync(d.fd);
  r.file_path = final_path.string();
  return r;
}

std::string remove_image_files(const std::string& root, const std::string& image_id) {
  if (!valid_image_id(image_id)) return "'" + image_id + "' is not an image id";
  std::error_code ec;
  fs::remove_all(fs::path(root) / image_id, ec);
  return ec ? "cannot remove " + (fs::path(root) / image_id).string() + ": " + ec.message() : "";
}

}  // namespace kumo::actors::image
