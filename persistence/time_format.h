// Event timestamps as people read and type them (ISO 8601, UTC).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace kumo::persistence {

int64_t now_ms();
// "2026-11-25T06:09:52.123Z"
std::string format_time(int64_t unix_ms);
// Accepts "2026-11-25T06:09:52Z", with optional ".fff", a bare date
// "2026-11-25" (midnight UTC), or unix seconds "1764050992".
std::optional<int64_t> parse_time(const std::string& text);

}  // namespace kumo::persistence
