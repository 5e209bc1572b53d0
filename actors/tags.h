// Resource tags, shared by every taggable aggregate.
#pragma once

#include "actors/runtime/decision.h"

#include <nlohmann/json_fwd.hpp>

#include <optional>

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

namespace kumo::actors {

// What CreateTags/DeleteTags ask of one resource.
struct tag_removal {
  std::string key;
  bool any_value = true;  // false: remove only if the value equals `value`
  std::string value;
  bool operator==(const tag_removal&) const = default;
};

struct change_tags {
  std::vector<resource_tag> set;      // added or overwritten
  std::vector<tag_removal> remove;
};

// The event recording such a change (each aggregate lists it among its events).
struct tags_changed {
  std::vector<resource_tag> set;
  std::vector<tag_removal> remove;
};

constexpr size_t max_tags_per_resource = 50;

// The tags after a change; pure, shared by every taggable aggregate.
std::vector<resource_tag> apply_tag_change(std::vector<resource_tag> tags, const tags_changed& change);
// Refuses a change that would leave more than max_tags_per_resource tags.
std::optional<api_error> check_tag_change(const std::vector<resource_tag>& current,
                                          const change_tags& change);
nlohmann::json tag_change_to_json(const tags_changed& change);
tags_changed tag_change_from_json(const nlohmann::json& j);

}  // namespace kumo::actors
