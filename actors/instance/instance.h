// The Instance aggregate: one virtual machine of an account, from launch to
// termination. Aggregate id "<account id>/<instance id>", so another account's
// instance id simply names a stream this account has no events in.
//
// Lifecycle (EC2's names and codes):
//   pending(0) -> running(16) -> stopping(64) -> stopped(80) -> pending ...
//   any live state -> shutting-down(32) -> terminated(48)
// Users move it with start/stop/reboot/terminate; what the hypervisor really
// did arrives as `observe` commands from the cluster's controller, and
// decide() turns an observation into the transition it implies.
#pragma once

#include "actors/runtime/decision.h"
#include "actors/tags.h"
#include "persistence/event_store.h"

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

namespace kumo::actors::instance {

enum class lifecycle { pending, running, shutting_down, terminated, stopping, stopped };
const char* name_of(lifecycle s);  // "pending", "shutting-down", ...
int code_of(lifecycle s);          // 0, 16, 32, 48, 64, 80

// The hardware of an instance type.
struct sizing {
  std::string instance_type;
  unsigned vcpus = 1;
  uint64_t memory_mib = 256;
  uint64_t disk_gib = 1;
  bool operator==(const sizing&) const = default;
};

// Fixed at launch (except sizing and user data, which may change while stopped).
// Image files are resolved at launch, so an instance keeps booting even if
// its image is deregistered later, as on EC2.
struct launch_spec {
  std::string instance_id;
  std::string reservation_id;
  std::string account_id;
  std::string image_id;
  std::string kernel_path;   // direct kernel boot when set
  std::string ramdisk_path;
  std::string disk_image_path;  // root disk template when the image is a disk image
  sizing size;
  std::string key_name;
  std::string public_key;       // for the metadata service
  std::vector<std::string> security_group_ids;
  std::vector<std::string> security_group_names;
  std::string user_data;  // base64, as given
  std::string zone;
  std::string node_id;    // where the scheduler reserved capacity
  int launch_index = 0;
  std::string client_token;
  int64_t launch_ms = 0;
  std::vector<resource_tag> tags;
  bool operator==(const launch_spec&) const = default;
};

// ---- Commands
struct launch {
  launch_spec spec;
};
struct start {
  int64_t at_ms = 0;
};
struct stop {
  bool force = false;
  int64_t at_ms = 0;
};
struct reboot {};
struct terminate {
  int64_t at_ms = 0;
};
// What a node saw of the instance's domain.
enum class observed { running, shut_off, absent, failed };
struct observe {
  observed what = observed::running;
  std::string detail;  // for failures: the hypervisor's message
  int64_t at_ms = 0;
  uint64_t rebooted_generation = 0;  // the newest reboot request the node has carried out
  std::string repair;                // a repair the node made (e.g. recreated a vanished domain)
};
struct modify_sizing {
  sizing size;
};
struct modify_user_data {
  std::string user_data;
};
using command = std::variant<launch, start, stop, reboot, terminate, observe, modify_sizing,
                             modify_user_data, change_tags>;

// ---- Events
struct launched {
  launch_spec spec;
};
// Every lifecycle transition, with EC2's state reason.
struct state_changed {
  lifecycle from = lifecycle::pending;
  lifecycle to = lifecycle::pending;
  std::string reason_code;     // e.g. "Client.UserInitiatedShutdown"
  std::string reason_message;
  bool forced = false;         // stop: pull the plug instead of asking the guest
  int64_t at_ms = 0;
};
struct reboot_requested {};
// A node carried out reboot requests up to `generation`. Recorded so that a
// request is never lost, even when the node restarts before acting on it.
struct rebooted {
  uint64_t generation = 0;
};
// A node repaired the instance's domain: the audit trail of reconciliation.
struct repaired {
  std::string what;
  int64_t at_ms = 0;
};
struct sizing_changed {
  sizing size;
};
struct user_data_changed {
  std::string user_data;
};
using event = std::variant<launched, state_changed, reboot_requested, rebooted, repaired, sizing_changed,
                           user_data_changed, tags_changed>;

// ---- State
struct state {
  bool exists = false;
  launch_spec spec;
  lifecycle status = lifecycle::pending;
  std::string reason_code;
  std::string reason_message;
  std::string transition_reason;  // EC2's stateTransitionReason text
  bool stop_forced = false;
  uint64_t reboot_generation = 0;  // reboot requests so far
  uint64_t reboot_done = 0;        // ... of which a node has carried out this many
  int64_t changed_ms = 0;
  bool operator==(const state&) const = default;
};

struct aggregate {
  using state = instance::state;
  using event = instance::event;
  using command = instance::command;
  static constexpr const char* kind = "instance";
  static constexpr uint32_t state_version = 1;

  static bool valid_id(const std::string& id);
  static decision<aggregate> decide(const std::string& id, const state& s, const command& c);
  static state apply(state s, const event& e);
  static persistence::new_event encode(const event& e);
  static persistence::status decode(const persistence::event_record& r, event& out);
  static std::string save(const state& s);
  static bool load(const std::string& json, state& s);
};

std::string aggregate_id(const std::string& account_id, const std::string& instance_id);
bool valid_instance_id(const std::string& id);  // "i-" + 17 lower-case hex

}  // namespace kumo::actors::instance
