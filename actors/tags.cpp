#include "actors/tags.h"

#include <nlohmann/json.hpp>

#include <algorithm>

namespace kumo::actors {

nlohmann::json tags_to_json(const std::vector<resource_tag>& tags) {
  auto out = nlohmann::json::array();
  for (const auto& t : tags) out.push_back({{"key", t.key}, {"value", t.value}});
  return out;
}

std::vector<resource_tag> tags_from_json(const nlohmann::json& j) {
  std::vector<resource_tag> out;
  for (const auto& t : j) out.push_back({t.at("key").get<std::string>(), t.at("value").get<std::string>()});
  return out;
}

}  // namespace kumo::actors

namespace kumo::actors {

std::vector<resource_tag> apply_tag_change(std::vector<resource_tag> tags, const tags_changed& change) {
  for (const auto& r : change.remove)
    std::erase_if(tags, [&](const resource_tag& t) {
      return t.key == r.key && (r.any_value || t.value == r.value);
    });
  for (const auto& s : change.set) {
    auto it = std::find_if(tags.begin(), tags.end(), [&](const resource_tag& t) { return t.key == s.key; });
    if (it != tags.end())
      it->value = s.value;
    else
      tags.push_back(s);
  }
  return tags;
}

std::optional<api_error> check_tag_change(const std::vector<resource_tag>& current,
                                          const change_tags& change) {
  if (apply_tag_change(current, {change.set, change.remove}).size() > max_tags_per_resource)
    return api_error{"TagLimitExceeded", "a resource can have at most " +
                                             std::to_string(max_tags_per_resource) + " tags"};
  return std::nullopt;
}

nlohmann::json tag_change_to_json(const tags_changed& change) {
  auto removed = nlohmann::json::array();
  for (const auto& r : change.remove)
    removed.push_back({{"key", r.key}, {"any_value", r.any_value}, {"value", r.value}});
  return {{"set", tags_to_json(change.set)}, {"remove", removed}};
}

tags_changed tag_change_from_json(const nlohmann::json& j) {
  tags_changed out;
  out.set = tags_from_json(j.at("set"));
  for (const auto& r : j.at("remove"))
    out.remove.push_back({r.at("key").get<std::string>(), r.at("any_value").get<bool>(),
                          r.at("value").get<std::string>()});
  return out;
}

}  // namespace kumo::actors
