// Load generator shared by the journal test and bench/event_append: N writer
// actors, each appending to its own stream one request at a time and waiting
// for durability before the next, as aggregates do.
#pragma once

#include <caf/fwd.hpp>

#include <cstdint>
#include <string>

namespace kumo::test {

struct writers_result {
  uint64_t acknowledged = 0;  // appends answered ok
  uint64_t failed = 0;
  double seconds = 0;
};

// A typical small event payload.
inline const std::string default_payload = "{\"volume_id\":\"vol-0123456789abcdef0\",\"size_gib\":8}";

writers_result run_writers(caf::actor_system& sys, const caf::actor& journal, int writers,
                           int appends_each, const std::string& stream_prefix,
                           const std::string& payload = default_payload);

}  // namespace kumo::test
