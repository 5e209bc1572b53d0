#include "actors/ldap/sync_plan.h"

#include <algorithm>
#include <map>
#include <set>

namespace kumo::actors::ldap {

const char* name_of(sync_step::kind k) {
  switch (k) {
    case sync_step::create_user: return "create_user";
    case sync_step::create_group: return "create_group";
    case sync_step::add_member: return "add_member";
    case sync_step::remove_member: return "remove_member";
    case sync_step::delete_group: return "delete_group";
    case sync_step::delete_user: return "delete_user";
  }
  return "?";
}

sync_plan plan_sync(const ldap_snapshot& ldap, const iam::directory& kumo) {
  sync_plan plan;
  std::vector<sync_step> creations, additions, removals, deletions;
  // Users: the LDAP ones kumo may mirror.
  std::set<std::string> ldap_users;
  for (const auto& u : ldap.users) {
    if (!iam::valid_user_name(u.name)) {
      plan.skipped.push_back("LDAP user '" + u.name + "' (" + u.dn + "): not a valid IAM user name");
      continue;
    }
    const auto* have = kumo.user(u.name);
    if (have && have->spec.source != "ldap") {
      plan.skipped.push_back("LDAP user '" + u.name + "': an IAM user of that name exists");
      continue;
    }
    ldap_users.insert(u.name);
    if (!have) creations.push_back({sync_step::create_user, u.name, "", u.dn});
  }
  // Groups and their members.
  std::set<std::string> ldap_groups;
  for (const auto& g : ldap.groups) {
    if (!iam::valid_group_name(g.name)) {
      plan.skipped.push_back("LDAP group '" + g.name + "' (" + g.dn + "): not a valid IAM group name");
      continue;
    }
    const auto* have = kumo.group(g.name);
    if (have && have->spec.source != "ldap") {
      plan.skipped.push_back("LDAP group '" + g.name + "': an IAM group of that name exists");
      continue;
    }
    ldap_groups.insert(g.name);
    if (!have) creations.push_back({sync_step::create_group, g.name, "", g.dn});
    std::set<std::string> current = have ? have->members : std::set<std::string>{};
    for (const auto& m : g.members)
      if (ldap_users.count(m) && !current.count(m)) additions.push_back({sync_step::add_member, g.name, m, ""});
    for (const auto& m : current)
      if (!g.members.count(m) || !ldap_users.count(m)) removals.push_back({sync_step::remove_member, g.name, m, ""});
  }
  // LDAP-sourced entries that left the directory.
  for (const auto& g : kumo.groups)
    if (g.spec.source == "ldap" && !ldap_groups.count(g.group_name))
      deletions.push_back({sync_step::delete_group, g.group_name, "", ""});
  for (const auto& u : kumo.users) {
    if (u.spec.source != "ldap" || ldap_users.count(u.user_name)) continue;
    for (const auto* g : kumo.groups_of(u.user_name))
      if (g->spec.source != "ldap")  // LDAP groups lost the member above
        removals.push_back({sync_step::remove_member, g->group_name, u.user_name, ""});
    deletions.push_back({sync_step::delete_user, u.user_name, "", ""});
  }
  for (auto* part : {&creations, &additions, &removals, &deletions})
    plan.steps.insert(plan.steps.end(), part->begin(), part->end());
  return plan;
}

}  // namespace kumo::actors::ldap
