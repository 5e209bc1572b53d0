// The Volume aggregate: one EBS volume of an account, from CreateVolume to
// deletion. Aggregate id "<account id>/<vol id>", so another account's volume
// id names a stream this account has no events in: InvalidVolume.NotFound by
// construction.
//
// Lifecycle (EC2's names):
//   creating -> available <-> in-use ; available|error -> deleting -> deleted
//   creating -> error (the backing file could not be made, or its size is wrong)
// Attachment: attaching -> attached -> detaching -> (detached: no attachment).
// The storage controller reports what it did to the backing file
// (file_ready, file_removed); the compute controller reports what the node
// did with the disk (attach_done, detach_done). decide() turns each report
// into the transition it implies, and ignores a late or repeated one.
#pragma once

#include "actors/runtime/decision.h"
#include "actors/tags.h"
#include "persistence/event_store.h"

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace kumo::actors::volume {

enum class status { creating, available, in_use, deleting, deleted, error };
const char* name_of(status s);  // "creating", "in-use", ...
enum class attach_status { none, attaching, attached, detaching };
const char* name_of(attach_status s);

constexpr uint64_t max_size_gib = 16384;  // EC2's gp2/gp3 limit
constexpr uint64_t gib = uint64_t{1} << 30;

// Fixed at creation (size grows with ModifyVolume).
struct volume_spec {
  uint64_t size_gib = 1;
  std::string zone;
  std::string volume_type = "gp2";
  uint64_t iops = 0;
  std::string snapshot_id;      // restored from this snapshot ("" = empty volume)
  std::string snapshot_path;    // ... whose data file is this
  std::string file_path;        // the backing file (raw, sparse)
  std::string client_token;
  int64_t created_ms = 0;
  std::vector<resource_tag> tags;
  bool operator==(const volume_spec&) const = default;
};

struct attachment {
  std::string instance_id;
  std::string device;       // what the user asked for: /dev/sdf
  std::string target_dev;   // the virtio disk on the node: vdb
  attach_status state = attach_status::none;
  int64_t at_ms = 0;
  bool delete_on_termination = false;
  bool operator==(const attachment&) const = default;
};

// ModifyVolume: growing a detached volume's file (and recording a new type).
enum class modify_status { none, modifying, completed, failed };
const char* name_of(modify_status s);
struct modification {
  modify_status state = modify_status::none;
  uint64_t original_size_gib = 0;
  uint64_t target_size_gib = 0;
  std::string original_type;
  std::string target_type;
  int64_t start_ms = 0;
  int64_t end_ms = 0;
  std::string detail;
  bool operator==(const modification&) const = default;
};

// ---- Commands
// `attach_to` (instance_id, device, delete_on_termination): a volume of
// RunInstances' BlockDeviceMappings, attached from the start; the node plugs
// it in once its file exists.
struct create {
  volume_spec spec;
  attachment attach_to;
};
// The storage controller made (or failed to make) the backing file;
// `bytes` is what stat() says its size is.
struct file_ready {
  bool ok = false;
  uint64_t bytes = 0;
  std::string detail;
};
struct remove {};
struct file_removed {};
struct attach {
  std::string instance_id;
  std::string instance_zone;
  std::string device;
  bool delete_on_termination = false;
  int64_t at_ms = 0;
};
struct detach {
  std::string instance_id;  // "" = whatever it is attached to
  bool force = false;
};
// The node has the disk (hot-plugged, or in the stopped domain's definition).
struct attach_done {};
// The node no longer has the disk, or the instance is gone (`terminated`:
// then a delete-on-termination volume is deleted too).
struct detach_done {
  bool terminated = false;
};
// ModifyVolume: the new size (never smaller) and type.
struct modify {
  uint64_t size_gib = 0;
  std::string volume_type;
  int64_t at_ms = 0;
};
// The storage controller resized the file; `bytes` is what stat() says.
struct file_resized {
  bool ok = false;
  uint64_t bytes = 0;
  std::string detail;
  int64_t at_ms = 0;
};
using command = std::variant<create, file_ready, remove, file_removed, attach, detach, attach_done,
                             detach_done, change_tags, modify, file_resized>;

// ---- Events
struct created {
  std::string owner_id;
  std::string volume_id;
  volume_spec spec;
  attachment attach;  // state attaching when created for an instance, else none
};
struct became_available {
  uint64_t bytes = 0;
};
struct failed {
  std::string detail;
};
struct deleting {};
struct deleted {};
struct attaching {
  attachment to;
};
struct attached {};
struct detaching {
  bool force = false;
};
struct detached {};
struct modifying {
  modification m;
};
struct modified {
  int64_t at_ms = 0;
};
struct modify_failed {
  std::string detail;
  int64_t at_ms = 0;
};
using event = std::variant<created, became_available, failed, deleting, deleted, attaching, attached,
                           detaching, detached, tags_changed, modifying, modified, modify_failed>;

// ---- State
struct state {
  bool exists = false;
  bool retired = false;  // deleted: the id is never used again
  std::string owner_id;
  std::string volume_id;
  volume_spec spec;
  volume::status status = status::creating;
  std::string status_detail;  // why it is in error
  attachment attach;          // state none = not attached
  volume::modification modification;  // the latest ModifyVolume
  bool operator==(const state&) const = default;
};

struct aggregate {
  using state = volume::state;
  using event = volume::event;
  using command = volume::command;
  static constexpr const char* kind = "volume";
  static constexpr uint32_t state_version = 1;

  static bool valid_id(const std::string& id);
  static decision<aggregate> decide(const std::string& id, const state& s, const command& c);
  static state apply(state s, const event& e);
  static persistence::new_event encode(const event& e);
  static persistence::status decode(const persistence::event_record& r, event& out);
  static std::string save(const state& s);
  static bool load(const std::string& json, state& s);
};

std::string aggregate_id(const std::string& account_id, const std::string& volume_id);
bool valid_volume_id(const std::string& id);  // "vol-" + 17 lower-case hex

// EC2 device names for data volumes and the virtio disk each becomes on the
// node: /dev/sdf../dev/sdp (or /dev/xvdf..p) -> vdb..vdl. vda is the root
// disk. Nullopt when the name is not one of those.
std::optional<std::string> target_dev_of(const std::string& device);

}  // namespace kumo::actors::volume
