#include "actors/tags.h"

#include <nlohmann/json.hpp>

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
