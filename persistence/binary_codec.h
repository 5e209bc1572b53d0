// Compact binary encoding helpers: varints and length-prefixed strings.
// Used for event records and for read-model checkpoints, where JSON would
// make a large checkpoint slower to load than replaying the log.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace kumo::persistence {

void put_varint(std::string& out, uint64_t v);
void put_string(std::string& out, std::string_view s);

// A cursor over encoded bytes; a failed read names the field and leaves
// `failed_field` set, so callers report what broke.
struct binary_reader {
  std::string_view in;
  std::string failed_field;

  bool varint(uint64_t& v, const char* field);
  bool str(std::string& s, const char* field);
  bool at_end() const { return in.empty(); }
};

}  // namespace kumo::persistence
