#include "actors/iam/sharing.h"

#include "actors/iam/policy.h"

namespace kumo::actors::iam {
namespace {

bool owns(const directory& d, const caller& who, const std::string& resource_id) {
  if (who.user_name.empty()) return true;
  auto it = d.resource_owners.find(resource_id);
  return it != d.resource_owners.end() && it->second == who.principal;
}

}  // namespace

bool may_see_resource(const directory& d, const caller& who, const std::string& resource_id) {
  if (owns(d, who, resource_id)) return true;
  for (const auto* g : d.groups_of(who.user_name))
    if (g->shared.count(resource_id)) return true;
  return false;
}

bool may_see_image(const directory& d, const caller& who, const std::string& image_id) {
  auto it = d.resource_owners.find(image_id);
  const bool by_root = it == d.resource_owners.end() || it->second.size() < 5 ||
                       it->second.compare(it->second.size() - 5, 5, ":root") == 0;
  return by_root || may_see_resource(d, who, image_id);
}

bool may_manage_resource(const directory& d, const caller& who, const std::string& resource_id,
                         const std::string& action, const std::string& arn) {
  if (owns(d, who, resource_id)) return true;
  for (const auto* g : d.groups_of(who.user_name)) {
    if (!g->shared.count(resource_id)) continue;
    std::vector<std::string> docs;
    for (const auto& [name, doc] : g->policies) docs.push_back(doc);
    if (evaluate_documents(docs, action, {arn}) == verdict::allow) return true;
  }
  return false;
}

std::optional<api_error> check_share(const directory& d, const caller& who, const std::string& resource_id,
                                     const std::string& group_name) {
  const auto* g = d.group(group_name);
  if (!g) return api_error{"InvalidGroup.NotFound", "The user group '" + group_name + "' does not exist"};
  if (!owns(d, who, resource_id))
    return api_error{"UnauthorizedOperation", "Only the owner of " + resource_id +
                                                  " or the account's root may share or unshare it"};
  if (!who.user_name.empty() && !g->members.count(who.user_name))
    return api_error{"UnauthorizedOperation", "You can share only with a group you belong to; " + who.user_name +
                                                  " is not a member of " + group_name};
  return std::nullopt;
}

}  // namespace kumo::actors::iam
