#include "api/permissions.h"

#include <algorithm>

namespace kumo::api {
namespace {

bool account_id(const std::string& s) {
  return s.size() == 12 && std::all_of(s.begin(), s.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
}

// Adds one permission (a UserId or the Group "all") to the add or remove lists.
bool add_permission(const op_ptr& c, permission_lists& change, bool adding, const std::optional<std::string>& user,
                    const std::optional<std::string>& group, const std::string& where, const std::string& item_error) {
  if (user.has_value() == group.has_value()) {
    c->fail("InvalidParameterCombination", where + " needs exactly one of UserId and Group");
    return false;
  }
  if (group) {
    if (*group != "all") {
      c->fail(item_error, "Invalid attribute item value \"" + group->substr(0, 32) + "\" for group: the only group is all");
      return false;
    }
    (adding ? change.add_public : change.remove_public) = true;
    return true;
  }
  if (!account_id(*user)) {
    c->fail(item_error, "Invalid attribute item value \"" + user->substr(0, 32) +
                            "\" for userId: use a 12-digit account id");
    return false;
  }
  (adding ? change.add_accounts : change.remove_accounts).push_back(*user);
  return true;
}

}  // namespace

std::optional<permission_lists> permission_params(const op_ptr& c, const std::string& prefix,
                                                  const std::string& item_error) {
  permission_lists change;
  query_error err;
  bool any = false;
  for (bool adding : {true, false}) {
    auto list = prefix + (adding ? ".Add" : ".Remove");
    auto idx = c->params.indexes(list, err);
    if (!idx) {
      c->fail(err);
      return std::nullopt;
    }
    for (int n : *idx) {
      auto base = list + "." + std::to_string(n);
      for (const char* org : {".OrganizationArn", ".OrganizationalUnitArn"})
        if (c->params.has(base + org)) {
          c->fail("InvalidParameterValue", "kumo has no organizations: share with UserId or Group=all");
          return std::nullopt;
        }
      if (!add_permission(c, change, adding, c->params.get(base + ".UserId"), c->params.get(base + ".Group"), base,
                          item_error))
        return std::nullopt;
      any = true;
    }
  }
  auto users = c->params.list("UserId", err);
  auto groups = users ? c->params.list("UserGroup", err) : std::nullopt;
  if (!groups) {
    c->fail(err);
    return std::nullopt;
  }
  if (!users->empty() || !groups->empty()) {
    auto op = c->params.get("OperationType");
    if (!op || (*op != "add" && *op != "remove")) {
      c->fail(op ? "InvalidParameterValue" : "MissingParameter",
              "UserId.N and UserGroup.N need OperationType add or remove");
      return std::nullopt;
    }
    for (const auto& u : *users)
      if (!add_permission(c, change, *op == "add", u, std::nullopt, "UserId", item_error)) return std::nullopt;
    for (const auto& g : *groups)
      if (!add_permission(c, change, *op == "add", std::nullopt, g, "UserGroup", item_error)) return std::nullopt;
    any = true;
  }
  if (!any) {
    c->fail("MissingParameter", c->action + " needs " + prefix + ".Add/Remove, or OperationType with "
                                "UserId.N or UserGroup.N");
    return std::nullopt;
  }
  return change;
}

}  // namespace kumo::api
