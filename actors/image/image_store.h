// The image store: the files of registered images, one directory per image
// under <data dir>/images/<image id>/. Registration copies a file from the
// cloud host into it, detects what it is, validates and hashes it, all before
// any event is written; a failed import leaves nothing behind.
// Everything here blocks on disk I/O (and qemu-img): call it from a detached
// actor (see image_actors.h), never from the gateway.
#pragma once

#include "actors/runtime/decision.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace kumo::actors::image {

std::string images_root(const std::string& data_dir);

// What a file's first bytes say it is: "kernel" for a Linux bzImage ("HdrS"
// at 0x202), "ramdisk" for a gzip/xz/zstd/lz4 stream or a newc cpio archive
// (what initramfs files are), else "machine" (a disk image). Pure.
std::string detect_kind(std::string_view head);

// Judges `qemu-img info --output=json` of a machine image. Pure.
struct disk_check {
  std::string format;  // "raw" | "qcow2" when acceptable
  std::string error;   // why not, when format is empty
};
disk_check check_disk_info(const std::string& qemu_img_json);

struct import_result {
  std::optional<api_error> error;  // InvalidParameterValue naming ImageLocation, or InternalError
  std::string kind;                // "machine" | "kernel" | "ramdisk"
  std::string image_id;            // a fresh id of that kind; its directory now exists
  std::string file_path;           // absolute
  std::string disk_format;         // machine images: "raw" | "qcow2"
  int64_t size_bytes = 0;
  std::string sha256;              // lower-case hex of the whole file
};

// Copies `location` (an absolute path or file:// URL on this host) into a new
// <images_root>/<image id>/, keeping holes sparse and hashing as it goes;
// a machine image must be a raw or qcow2 disk qemu-img can read, without a
// backing or external data file (those would let a guest read host files).
import_result import_image(const std::string& location, const std::string& images_root);

// Removes <images_root>/<image id>/ with its files. Empty on success, else why.
std::string remove_image_files(const std::string& images_root, const std::string& image_id);

}  // namespace kumo::actors::image
