#include "persistence/time_format.h"

#include <chrono>
#include <cstdio>
#include <ctime>

namespace kumo::persistence {

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string format_time(int64_t unix_ms) {
  std::time_t secs = unix_ms / 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(unix_ms % 1000));
  return buf;
}

std::optional<int64_t> parse_time(const std::string& text) {
  if (!text.empty() && text.find_first_not_of("0123456789") == std::string::npos)
    return text.size() <= 12 ? std::optional<int64_t>(std::stoll(text) * 1000) : std::nullopt;
  std::tm tm{};
  int millis = 0, consumed = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &consumed) != 3)
    return std::nullopt;
  std::string rest = text.substr(consumed);
  if (!rest.empty()) {
    int n = 0;
    if (std::sscanf(rest.c_str(), "T%2d:%2d:%2d%n", &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 3)
      return std::nullopt;
    rest = rest.substr(n);
    if (!rest.empty() && rest[0] == '.') {
      size_t digits = rest.find_first_not_of("0123456789", 1);
      if (digits == std::string::npos) digits = rest.size();
      auto frac = (rest.substr(1, digits - 1) + "000").substr(0, 3);
      millis = std::stoi(frac);
      rest = rest.substr(digits);
    }
    if (rest != "Z" && rest != "") return std::nullopt;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  if (tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
      tm.tm_min > 59 || tm.tm_sec > 60)
    return std::nullopt;
  return static_cast<int64_t>(timegm(&tm)) * 1000 + millis;
}

}  // namespace kumo::persistence
