// The IAM subset: users, groups, access keys and inline policies. Commands go
// to the User aggregate "<account>/<user>" and the Group aggregate
// "<account>/<group>"; reads come from the IAM directory view, scoped to the
// caller's account.
#include "api/iam.h"
#include "api/op_requests.h"

#include "actors/iam/iam_actors.h"
#include "api/sigv4.h"
#include "persistence/time_format.h"

namespace kumo::api {
namespace {

using namespace actors::iam;

int status_of(const std::string& code) {
  if (code == "NoSuchEntity") return 404;
  if (code == "EntityAlreadyExists" || code == "LimitExceeded" || code == "DeleteConflict") return 409;
  if (code == "ServiceUnavailable") return 503;
  if (code == "InternalError") return 500;
  return 400;
}

void fail_with(const op_ptr& c, const actors::api_error& e) { c->fail(e.code, e.message, status_of(e.code)); }

void with_directory(const op_ptr& c, std::function<void(directory&)> then) {
  c->self->request(c->cloud->iam_view, actor_timeout, actors::iam_dir_atom::value, c->account_id, c->read_floor())
      .then([=](directory& d) { then(d); }, [=](caf::error& e) { service_unavailable(c, e); });
}

template <class Reply, class Command, class Write>
void command(const op_ptr& c, const caf::actor& registry, const std::string& name, Command cmd, Write write) {
  c->self->request(registry, actor_timeout, member_id(c->account_id, name), std::move(cmd), c->meta())
      .then(
          [=](Reply& r) {
            if (r.error) return fail_with(c, *r.error);
            if (r.global_seq) c->wrote(r.global_seq);
            xml_writer w;
            write(w, r);
            c->respond(w);
          },
          [=](caf::error& e) { service_unavailable(c, e); });
}

template <class Write>
void command_user(const op_ptr& c, const std::string& user, user_command cmd, Write write) {
  command<user_reply>(c, c->cloud->users, user, std::move(cmd), write);
}
template <class Write>
void command_group(const op_ptr& c, const std::string& group, group_command cmd, Write write) {
  command<group_reply>(c, c->cloud->groups, group, std::move(cmd), write);
}
auto nothing = [](xml_writer&, const auto&) {};

// A required name parameter, checked like IAM does (ValidationError).
std::optional<std::string> name_param(const op_ptr& c, const std::string& param, bool (*valid)(const std::string&)) {
  auto v = c->params.get(param);
  if (!v || v->empty()) {
    c->fail("ValidationError", "1 validation error detected: Value null at '" + param +
                                   "' failed to satisfy constraint: Member must not be null", 400);
    return std::nullopt;
  }
  if (!valid(*v)) {
    c->fail("ValidationError", "The specified value for " + param + " is invalid: '" + v->substr(0, 140) +
                                   "'. It must contain only alphanumeric characters and/or +=,.@_-", 400);
    return std::nullopt;
  }
  return v;
}

// UserName, or the calling user when it is left out (IAM's rule for key and
// user calls); the account's root must name a user.
std::optional<std::string> user_param(const op_ptr& c) {
  if (c->params.has("UserName") || c->user_name.empty()) return name_param(c, "UserName", valid_user_name);
  return c->user_name;
}

std::optional<std::string> path_param(const op_ptr& c, const std::string& param) {
  auto p = c->params.get(param).value_or("/");
  if (!valid_path(p)) {
    c->fail("ValidationError", "The specified value for " + param + " is invalid: a path starts and ends with '/'", 400);
    return std::nullopt;
  }
  return p;
}

void write_user(xml_writer& w, const user_state& u, const char* element = "User") {
  w.open(element).leaf("Path", u.spec.path).leaf("UserName", u.user_name).leaf("UserId", u.spec.user_id);
  w.leaf("Arn", user_arn(u.account_id, u.spec.path, u.user_name)).leaf("CreateDate", iso_time(u.spec.created_ms));
  w.close(element);
}

void write_group(xml_writer& w, const group_state& g, const char* element = "Group") {
  w.open(element).leaf("Path", g.spec.path).leaf("GroupName", g.group_name).leaf("GroupId", g.spec.group_id);
  w.leaf("Arn", group_arn(g.account_id, g.spec.path, g.group_name)).leaf("CreateDate", iso_time(g.spec.created_ms));
  w.close(element);
}

void not_truncated(xml_writer& w) { w.leaf("IsTruncated", "false"); }

void no_such_user(const op_ptr& c, const std::string& name) {
  c->fail("NoSuchEntity", "The user with name " + name + " cannot be found.", 404);
}
void no_such_group(const op_ptr& c, const std::string& name) {
  c->fail("NoSuchEntity", "The group with name " + name + " cannot be found.", 404);
}

// ---- Users

void create_user_op(const op_ptr& c) {
  auto name = name_param(c, "UserName", valid_user_name);
  if (!name) return;
  auto path = path_param(c, "Path");
  if (!path) return;
  create_user cmd{new_user_id(), *path, persistence::now_ms(), "iam", ""};
  command_user(c, *name, cmd, [](xml_writer& w, const user_reply& r) { write_user(w, r.state); });
}

void get_user_op(const op_ptr& c) {
  auto name = user_param(c);
  if (!name) return;
  with_directory(c, [=](directory& d) {
    const auto* u = d.user(*name);
    if (!u) return no_such_user(c, *name);
    xml_writer w;
    write_user(w, *u);
    c->respond(w);
  });
}

// ListUsers / ListGroups: the account's users or groups under PathPrefix.
template <class State>
void list_by_path(const op_ptr& c, const char* element, std::vector<State> directory::*all,
                  void (*write)(xml_writer&, const State&, const char*)) {
  auto prefix = c->params.get("PathPrefix").value_or("/");
  with_directory(c, [=](directory& d) {
    xml_writer w;
    w.open(element);
    for (const auto& x : d.*all)
      if (x.spec.path.rfind(prefix, 0) == 0) write(w, x, "member");
    w.close(element);
    not_truncated(w);
    c->respond(w);
  });
}

void list_users_op(const op_ptr& c) { list_by_path(c, "Users", &directory::users, write_user); }

void delete_user_op(const op_ptr& c) {
  auto name = name_param(c, "UserName", valid_user_name);
  if (!name) return;
  with_directory(c, [=](directory& d) {
    if (!d.user(*name)) return no_such_user(c, *name);
    if (!d.groups_of(*name).empty())
      return c->fail("DeleteConflict", "Cannot delete entity, must remove user " + *name + " from groups first.", 409);
    command_user(c, *name, delete_user{}, nothing);
  });
}

// ---- Groups

void create_group_op(const op_ptr& c) {
  auto name = name_param(c, "GroupName", valid_group_name);
  if (!name) return;
  auto path = path_param(c, "Path");
  if (!path) return;
  create_group cmd{new_group_id(), *path, persistence::now_ms(), "iam", ""};
  command_group(c, *name, cmd, [](xml_writer& w, const group_reply& r) { write_group(w, r.state); });
}

void get_group_op(const op_ptr& c) {
  auto name = name_param(c, "GroupName", valid_group_name);
  if (!name) return;
  with_directory(c, [=](directory& d) {
    const auto* g = d.group(*name);
    if (!g) return no_such_group(c, *name);
    xml_writer w;
    write_group(w, *g);
    w.open("Users");
    for (const auto& m : g->members)
      if (const auto* u = d.user(m)) write_user(w, *u, "member");
    w.close("Users");
    not_truncated(w);
    c->respond(w);
  });
}

void list_groups_op(const op_ptr& c) { list_by_path(c, "Groups", &directory::groups, write_group); }

void delete_group_op(const op_ptr& c) {
  auto name = name_param(c, "GroupName", valid_group_name);
  if (!name) return;
  command_group(c, *name, delete_group{}, nothing);
}

void add_user_to_group_op(const op_ptr& c) {
  auto group = name_param(c, "GroupName", valid_group_name);
  if (!group) return;
  auto user = name_param(c, "UserName", valid_user_name);
  if (!user) return;
  with_directory(c, [=](directory& d) {
    if (!d.user(*user)) return no_such_user(c, *user);
    command_group(c, *group, add_member{*user}, nothing);
  });
}

void remove_user_from_group_op(const op_ptr& c) {
  auto group = name_param(c, "GroupName", valid_group_name);
  if (!group) return;
  auto user = name_param(c, "UserName", valid_user_name);
  if (!user) return;
  command_group(c, *group, remove_member{*user}, nothing);
}

void list_groups_for_user_op(const op_ptr& c) {
  auto name = name_param(c, "UserName", valid_user_name);
  if (!name) return;
  with_directory(c, [=](directory& d) {
    if (!d.user(*name)) return no_such_user(c, *name);
    xml_writer w;
    w.open("Groups");
    for (const auto* g : d.groups_of(*name)) write_group(w, *g, "member");
    w.close("Groups");
    not_truncated(w);
    c->respond(w);
  });
}

// ---- Access keys

void create_access_key_op(const op_ptr& c) {
  auto name = user_param(c);
  if (!name) return;
  auto key = new_access_key(persistence::now_ms());
  command_user(c, *name, create_access_key{key}, [key, n = *name](xml_writer& w, const user_reply&) {
    w.open("AccessKey").leaf("UserName", n).leaf("AccessKeyId", key.access_key_id).leaf("Status", key.status);
    w.leaf("SecretAccessKey", key.secret_access_key).leaf("CreateDate", iso_time(key.created_ms)).close("AccessKey");
  });
}

void list_access_keys_op(const op_ptr& c) {
  auto name = user_param(c);
  if (!name) return;
  with_directory(c, [=](directory& d) {
    const auto* u = d.user(*name);
    if (!u) return no_such_user(c, *name);
    xml_writer w;
    w.open("AccessKeyMetadata");
    for (const auto& k : u->keys) {
      if (k.expires_ms) continue;  // temporary login keys are not the user's access keys
      w.open("member").leaf("UserName", *name).leaf("AccessKeyId", k.access_key_id).leaf("Status", k.status);
      w.leaf("CreateDate", iso_time(k.created_ms)).close("member");
    }
    w.close("AccessKeyMetadata");
    not_truncated(w);
    c->respond(w);
  });
}

void update_access_key_op(const op_ptr& c) {
  auto name = user_param(c);
  if (!name) return;
  auto id = name_param(c, "AccessKeyId", [](const std::string& s) { return s.size() >= 16 && s.size() <= 128; });
  if (!id) return;
  auto status = c->params.get("Status").value_or("");
  if (status != "Active" && status != "Inactive")
    return c->fail("ValidationError", "Status must be Active or Inactive, not '" + status.substr(0, 32) + "'", 400);
  command_user(c, *name, update_access_key{*id, status}, nothing);
}

void delete_access_key_op(const op_ptr& c) {
  auto name = user_param(c);
  if (!name) return;
  auto id = name_param(c, "AccessKeyId", [](const std::string& s) { return s.size() >= 16 && s.size() <= 128; });
  if (!id) return;
  command_user(c, *name, delete_access_key{*id}, nothing);
}

// ---- Inline policies

// IAM returns policy documents URL-encoded (botocore decodes them).
std::string encoded(const std::string& document) { return uri_encode(document, false); }

std::optional<std::pair<std::string, std::string>> policy_params(const op_ptr& c, bool with_document) {
  auto name = name_param(c, "PolicyName", valid_policy_name);
  if (!name) return std::nullopt;
  if (!with_document) return std::pair{*name, std::string()};
  auto doc = c->params.get("PolicyDocument");
  if (!doc || doc->empty()) {
    c->fail("ValidationError", "1 validation error detected: Value null at 'policyDocument'", 400);
    return std::nullopt;
  }
  return std::pair{*name, *doc};
}

void write_policy_names(const op_ptr& c, const std::map<std::string, std::string>& policies) {
  xml_writer w;
  w.open("PolicyNames");
  for (const auto& [n, doc] : policies) w.leaf("member", n);
  w.close("PolicyNames");
  not_truncated(w);
  c->respond(w);
}

// Inline policies of users and of groups work alike: `group` says which.
std::optional<std::string> owner_param(const op_ptr& c, bool group) {
  return group ? name_param(c, "GroupName", valid_group_name) : name_param(c, "UserName", valid_user_name);
}

// The policies of the named user or group, or nullptr after answering NoSuchEntity.
const std::map<std::string, std::string>* policies_of(const op_ptr& c, const directory& d, const std::string& name,
                                                      bool group) {
  if (group) {
    if (const auto* g = d.group(name)) return &g->policies;
    no_such_group(c, name);
  } else {
    if (const auto* u = d.user(name)) return &u->policies;
    no_such_user(c, name);
  }
  return nullptr;
}

void put_policy_op(const op_ptr& c, bool group) {
  auto owner = owner_param(c, group);
  if (!owner) return;
  auto p = policy_params(c, true);
  if (!p) return;
  if (group)
    command_group(c, *owner, put_group_policy{p->first, p->second}, nothing);
  else
    command_user(c, *owner, put_user_policy{p->first, p->second}, nothing);
}

void get_policy_op(const op_ptr& c, bool group) {
  auto owner = owner_param(c, group);
  if (!owner) return;
  auto p = policy_params(c, false);
  if (!p) return;
  with_directory(c, [=](directory& d) {
    const auto* policies = policies_of(c, d, *owner, group);
    if (!policies) return;
    auto it = policies->find(p->first);
    if (it == policies->end())
      return c->fail("NoSuchEntity", std::string("The ") + (group ? "group" : "user") + " policy with name " +
                                         p->first + " cannot be found.", 404);
    xml_writer w;
    w.leaf(group ? "GroupName" : "UserName", *owner).leaf("PolicyName", p->first);
    w.leaf("PolicyDocument", encoded(it->second));
    c->respond(w);
  });
}

void delete_policy_op(const op_ptr& c, bool group) {
  auto owner = owner_param(c, group);
  if (!owner) return;
  auto p = policy_params(c, false);
  if (!p) return;
  if (group)
    command_group(c, *owner, delete_group_policy{p->first}, nothing);
  else
    command_user(c, *owner, delete_user_policy{p->first}, nothing);
}

void list_policies_op(const op_ptr& c, bool group) {
  auto owner = owner_param(c, group);
  if (!owner) return;
  with_directory(c, [=](directory& d) {
    if (const auto* policies = policies_of(c, d, *owner, group)) write_policy_names(c, *policies);
  });
}

}  // namespace

void register_iam_ops(op_table& t) {
  t["CreateUser"] = {create_user_op, false};
  t["GetUser"] = {get_user_op, false};
  t["ListUsers"] = {list_users_op, false};
  t["DeleteUser"] = {delete_user_op, false};
  t["CreateGroup"] = {create_group_op, false};
  t["GetGroup"] = {get_group_op, false};
  t["ListGroups"] = {list_groups_op, false};
  t["DeleteGroup"] = {delete_group_op, false};
  t["AddUserToGroup"] = {add_user_to_group_op, false};
  t["RemoveUserFromGroup"] = {remove_user_from_group_op, false};
  t["ListGroupsForUser"] = {list_groups_for_user_op, false};
  t["CreateAccessKey"] = {create_access_key_op, false};
  t["ListAccessKeys"] = {list_access_keys_op, false};
  t["UpdateAccessKey"] = {update_access_key_op, false};
  t["DeleteAccessKey"] = {delete_access_key_op, false};
  t["PutUserPolicy"] = {[](const op_ptr& c) { put_policy_op(c, false); }, false};
  t["GetUserPolicy"] = {[](const op_ptr& c) { get_policy_op(c, false); }, false};
  t["DeleteUserPolicy"] = {[](const op_ptr& c) { delete_policy_op(c, false); }, false};
  t["ListUserPolicies"] = {[](const op_ptr& c) { list_policies_op(c, false); }, false};
  t["PutGroupPolicy"] = {[](const op_ptr& c) { put_policy_op(c, true); }, false};
  t["GetGroupPolicy"] = {[](const op_ptr& c) { get_policy_op(c, true); }, false};
  t["DeleteGroupPolicy"] = {[](const op_ptr& c) { delete_policy_op(c, true); }, false};
  t["ListGroupPolicies"] = {[](const op_ptr& c) { list_policies_op(c, true); }, false};
}

const op_table& iam_operations() {
  static const op_table table = [] {
    op_table t;
    register_iam_ops(t);
    return t;
  }();
  return table;
}

}  // namespace kumo::api
