// The LDAP sync as a pure diff: what the directory says (a complete
// snapshot, read before anything is written) against what kumo has (the IAM
// directory of the account), as the steps that make kumo match. Only users
// and groups that came from LDAP are ever changed or removed; an IAM user or
// group of the same name is left alone (and reported).
// Every step is idempotent, so a sync cut short (a crash) is finished by the
// next one, with no duplicates.
#pragma once

#include "actors/iam/directory.h"
#include "actors/ldap/directory_client.h"

#include <string>
#include <vector>

namespace kumo::actors::ldap {

struct sync_step {
  enum kind { create_user, create_group, add_member, remove_member, delete_group, delete_user };
  kind what;
  std::string name;  // user or group
  std::string user;  // add_member / remove_member: the member
  std::string dn;    // create_*: the LDAP entry
  bool operator==(const sync_step&) const = default;
};

struct sync_plan {
  std::vector<sync_step> steps;      // in this order: creations, additions, removals, deletions
  std::vector<std::string> skipped;  // why entries were left alone
};

sync_plan plan_sync(const ldap_snapshot& ldap, const iam::directory& kumo);

const char* name_of(sync_step::kind k);

}  // namespace kumo::actors::ldap
