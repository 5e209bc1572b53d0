// Random identifiers from the kernel's CSPRNG (getrandom). Resource ids are
// random and, being in the log, never reused: a fresh id that already has a
// stream is refused by the aggregate (its stream version is not 0).
#pragma once

#include <string>
#include <string_view>

namespace kumo::actors {

std::string random_chars(size_t n, std::string_view alphabet);
// "<prefix>-" + 17 lower-case hex digits, the shape of current EC2 ids.
std::string new_resource_id(std::string_view prefix);
// A name kumo chose itself (zone, region): 1-64 of a-z, 0-9 and '-'.
bool valid_plain_name(const std::string& name);

}  // namespace kumo::actors
