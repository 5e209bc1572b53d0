// Resource tags, shared by every taggable aggregate.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <string>
#include <vector>

namespace kumo::actors {

struct resource_tag {
  std::string key;
  std::string value;
  bool operator==(const resource_tag&) const = default;
};

nlohmann::json tags_to_json(const std::vector<resource_tag>& tags);
// Throws nlohmann::json::exception on a malformed list (callers report it).
std::vector<resource_tag> tags_from_json(const nlohmann::json& j);

}  // namespace kumo::actors
