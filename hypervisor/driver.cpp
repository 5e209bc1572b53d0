#include "hypervisor/driver.h"

namespace kumo::hypervisor {

const char* to_string(domain_state s) {
  switch (s) {
    case domain_state::absent: return "absent";
    case domain_state::running: return "running";
    case domain_state::paused: return "paused";
    case domain_state::shutting_down: return "shutting-down";
    case domain_state::shut_off: return "shut-off";
    case domain_state::crashed: return "crashed";
    case domain_state::other: return "other";
  }
  return "other";
}

}  // namespace kumo::hypervisor
