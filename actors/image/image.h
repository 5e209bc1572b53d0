// The Image aggregate: a kernel (eki-), ramdisk (eri-) or machine image
// (emi-) registered by one account, with its launch permissions.
// The aggregate id is "<owner account id>/<image id>": commands addressed by
// a caller always name the caller's own account, so only the owner can ever
// change an image, by construction. Names are unique per owner; that is
// checked before registration by the images view (see image_actors.h), since
// the name is not part of the id.
//
// The files live in the image store (actors/image/image_store.h) and are
// copied, validated and hashed before image_registered is written, so a
// registered image is always complete.
#pragma once

#include "actors/runtime/decision.h"
#include "actors/tags.h"
#include "persistence/event_store.h"

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace kumo::actors::image {

// What registration records: everything about the image but its identity and
// its launch permissions.
struct image_spec {
  std::string name;         // 3-128 characters, unique per owner
  std::string description;  // at most 255 characters
  std::string kind;         // "machine" | "kernel" | "ramdisk"
  std::string architecture = "x86_64";
  std::string kernel_id;    // machine images booted directly: the eki-/eri- they boot
  std::string ramdisk_id;
  std::string file_path;    // absolute path of the stored file; empty for kernel+ramdisk machine images
  std::string disk_format;  // machine images with a file: "raw" | "qcow2" (what qemu-img found)
  int64_t size_bytes = 0;
  std::string sha256;       // of the stored file, lower-case hex
  std::string root_device_name;  // machine images: "/dev/sda1" unless given
  std::string source;       // the ImageLocation copied from (the audit trail); empty if none
  int64_t created_ms = 0;
  std::vector<resource_tag> tags;
  bool operator==(const image_spec&) const = default;
};

// ---- Commands
struct register_image {
  image_spec spec;
};
// LaunchPermission Add/Remove: accounts and the group "all" (= public).
// Removals are applied before additions.
struct change_launch_permission {
  std::vector<std::string> add_accounts;
  std::vector<std::string> remove_accounts;
  bool add_public = false;
  bool remove_public = false;
  bool operator==(const change_launch_permission&) const = default;
};
struct deregister_image {};
using command = std::variant<register_image, change_launch_permission, deregister_image, change_tags>;

// ---- Events
struct image_registered {
  std::string owner_id;
  std::string image_id;
  image_spec spec;
};
// Only the effective change: accounts really added or removed, public on/off.
struct launch_permission_changed {
  change_launch_permission change;
};
struct image_deregistered {
  std::string image_id;
};
using event = std::variant<image_registered, launch_permission_changed, image_deregistered, tags_changed>;

// ---- State
struct state : image_spec {
  bool exists = false;
  bool retired = false;  // deregistered: the id is never registered again
  std::string owner_id;
  std::string image_id;
  bool is_public = false;
  std::vector<std::string> launch_accounts;  // accounts it is shared with (not the owner)
  bool operator==(const state&) const = default;
};

// What registration refuses before anything is copied: the name, description,
// architecture, tags and the shape of KernelId/RamdiskId of a request.
std::optional<api_error> check_request(const image_spec& spec);

// The one visibility rule: who may see and launch an image (the owner, anyone
// when public, the accounts it is shared with).
bool launchable_by(const state& s, const std::string& account_id);

struct aggregate {
  using state = image::state;
  using event = image::event;
  using command = image::command;
  static constexpr const char* kind = "image";
  static constexpr uint32_t state_version = 1;

  // "<12-digit account>/<eki|eri|emi>-<17 hex>"
  static bool valid_id(const std::string& id);
  static decision<aggregate> decide(const std::string& id, const state& s, const command& c);
  static state apply(state s, const event& e);
  static persistence::new_event encode(const event& e);
  static persistence::status decode(const persistence::event_record& r, event& out);
  static std::string save(const state& s);
  static bool load(const std::string& json, state& s);
};

std::string aggregate_id(const std::string& owner_id, const std::string& image_id);
// "eki-", "eri-" or "emi-" + 17 lower-case hex digits.
bool valid_image_id(const std::string& image_id);
// "kernel" for eki-, "ramdisk" for eri-, "machine" for emi-, "" otherwise.
std::string kind_of_id(const std::string& image_id);
std::string new_image_id(const std::string& kind);
// EC2's rule: 3-128 of letters, digits, ( ) [ ] space . / - ' @ _
bool valid_image_name(const std::string& name);
bool valid_account_id(const std::string& account_id);

}  // namespace kumo::actors::image
