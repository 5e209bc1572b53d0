#include "actors/iam/sharing.h"

#include "actors/iam/policy.h"

namespace kumo::actors::iam {
namespace {

bool owns(const directory& d, const caller& who, const std::string& instance_id) {
  if (who.user_name.empty()) return true;
  auto it = d.instance_owners.find(instance_id);
  return it != d.instance_owners.end() && it->second == who.principal;
}

}  // namespace

bool may_see_instance(const directory& d, const caller& who, const std::string& instance_id) {
  if (owns(d, who, instance_id)) return true;
  for (const auto* g : d.groups_of(who.user_name))
    if (g->shared.count(instance_id)) return true;
  return false;
}

bool may_manage_instance(const directory& d, const caller& who, const std::string& instance_id,
                         const std::string& action, const std::string& instance_arn) {
  if (owns(d, who, instance_id)) return true;
  for (const auto* g : d.groups_of(who.user_name)) {
    if (!g->shared.count(instance_id)) continue;
    std::vector<std::string> docs;
    for (const auto& [name, doc] : g->policies) docs.push_back(doc);
    if (evaluate_documents(docs, action, {instance_arn}) == verdict::allow) return true;
  }
  return false;
}

std::optional<api_error> check_share(const directory& d, const caller& who, const std::string& instance_id,
                                     const std::string& group_name) {
  const auto* g = d.group(group_name);
  if (!g) return api_error{"InvalidGroup.NotFound", "The user group '" + group_name + "' does not exist"};
  if (!owns(d, who, instance_id))
    return api_error{"UnauthorizedOperation", "Only the owner of " + instance_id +
                                                  " or the account's root may share or unshare it"};
  if (!who.user_name.empty() && !g->members.count(who.user_name))
    return api_error{"UnauthorizedOperation", "You can share only with a group you belong to; " + who.user_name +
                                                  " is not a member of " + group_name};
  return std::nullopt;
}

}  // namespace kumo::actors::iam
