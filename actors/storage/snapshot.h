// The Snapshot aggregate: a point-in-time copy of a volume's data, owned by
// one account and shareable with others (createVolumePermission).
// Aggregate id "<owner account id>/<snap id>". Lifecycle:
//   pending (progress 0..100%) -> completed | error ; completed|error -> deleting -> deleted
// The storage controller copies the volume's file and reports progress and
// the result (copy_progress, copy_done, file_removed).
#pragma once

#include "actors/runtime/decision.h"
#include "actors/tags.h"
#include "persistence/event_store.h"

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

namespace kumo::actors::snapshot {

enum class status { pending, completed, error, deleting };
const char* name_of(status s);

struct snapshot_spec {
  std::string volume_id;
  uint64_t volume_size_gib = 0;
  std::string source_path;  // the volume's backing file when the snapshot was asked for
  std::string file_path;    // the snapshot's own data file
  std::string description;
  std::string client_token;
  int64_t start_ms = 0;
  std::vector<resource_tag> tags;
  bool operator==(const snapshot_spec&) const = default;
};

// createVolumePermission Add/Remove: accounts and the group "all".
struct permission_change {
  std::vector<std::string> add_accounts;
  std::vector<std::string> remove_accounts;
  bool add_public = false;
  bool remove_public = false;
  bool operator==(const permission_change&) const = default;
};

// ---- Commands
struct create {
  snapshot_spec spec;
};
struct copy_progress {
  int percent = 0;
};
struct copy_done {
  bool ok = false;
  uint64_t bytes = 0;
  std::string detail;
};
struct remove {};
struct file_removed {};
using command = std::variant<create, copy_progress, copy_done, remove, file_removed, permission_change, change_tags>;

// ---- Events
struct created {
  std::string owner_id;
  std::string snapshot_id;
  snapshot_spec spec;
};
struct progressed {
  int percent = 0;
};
struct completed {
  uint64_t bytes = 0;
};
struct failed {
  std::string detail;
};
struct deleting {};
struct deleted {};
struct permission_changed {
  permission_change change;  // only the effective change
};
using event = std::variant<created, progressed, completed, failed, deleting, deleted, permission_changed, tags_changed>;

// ---- State
struct state {
  bool exists = false;
  bool retired = false;
  std::string owner_id;
  std::string snapshot_id;
  snapshot_spec spec;
  snapshot::status status = status::pending;
  int progress = 0;
  std::string status_detail;
  std::vector<std::string> shared_with;  // accounts that may create volumes from it
  bool is_public = false;
  bool operator==(const state&) const = default;
};

// The one visibility rule: the owner, anyone when public, the accounts it is shared with.
bool restorable_by(const state& s, const std::string& account_id);

struct aggregate {
  using state = snapshot::state;
  using event = snapshot::event;
  using command = snapshot::command;
  static constexpr const char* kind = "snapshot";
  static constexpr uint32_t state_version = 1;

  static bool valid_id(const std::string& id);
  static decision<aggregate> decide(const std::string& id, const state& s, const command& c);
  static state apply(state s, const event& e);
  static persistence::new_event encode(const event& e);
  static persistence::status decode(const persistence::event_record& r, event& out);
  static std::string save(const state& s);
  static bool load(const std::string& json, state& s);
};

std::string aggregate_id(const std::string& account_id, const std::string& snapshot_id);
bool valid_snapshot_id(const std::string& id);  // "snap-" + 17 lower-case hex

}  // namespace kumo::actors::snapshot
