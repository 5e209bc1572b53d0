// Group sharing: KumoShareInstance / KumoUnshareInstance (InstanceId,
// GroupName) and KumoShareImage / KumoUnshareImage (ImageId, GroupName)
// record resource_shared / resource_unshared on the Group aggregate;
// KumoDescribeInstanceShares lists the shares the caller can see. And the
// visibility filters the instance and image operations use.
#include "api/instance_access.h"
#include "api/lookups.h"
#include "api/op_requests.h"

#include "actors/iam/iam_actors.h"
#include "actors/iam/sharing.h"

namespace kumo::api {

namespace {

using namespace actors;

iam::caller caller_of(const op_ptr& c) { return {c->principal, c->user_name}; }

std::string instance_arn(const op_ptr& c, const std::string& id) {
  return "arn:aws:ec2:" + c->cfg->region + ":" + c->account_id + ":instance/" + id;
}

void with_directory(const op_ptr& c, std::function<void(iam::directory&)> then) {
  c->self->request(c->cloud->iam_view, actor_timeout, iam_dir_atom::value, c->account_id, c->read_floor())
      .then([=](iam::directory& d) { then(d); }, [=](caf::error& e) { service_unavailable(c, e); });
}

// Enough of the directory to decide what the calling user sees and manages.
void with_my_directory(const op_ptr& c, std::function<void(iam::directory&)> then) {
  c->self->request(c->cloud->iam_view, actor_timeout, iam_user_atom::value, c->account_id, c->user_name,
                   c->read_floor())
      .then([=](iam::directory& d) { then(d); }, [=](caf::error& e) { service_unavailable(c, e); });
}

// Records the (un)sharing of a resource the caller can see with a group,
// after the sharing rule (owner or root; a group the user belongs to).
void change_share(const op_ptr& c, bool share, const std::string& id, const std::string& group) {
  with_directory(c, [=](iam::directory& d) {
    if (auto err = iam::check_share(d, caller_of(c), id, group))
      return c->fail(err->code, err->message, err->code == "UnauthorizedOperation" ? 403 : 400);
    auto owner = d.resource_owners.count(id) ? d.resource_owners.at(id) : c->principal;
    iam::group_command cmd = share ? iam::group_command{iam::share_resource{id, owner}}
                                   : iam::group_command{iam::unshare_resource{id}};
    c->self->request(c->cloud->groups, actor_timeout, iam::member_id(c->account_id, group), cmd, c->meta())
        .then(
            [=](iam::group_reply& r) {
              if (r.error) return c->fail(r.error->code, r.error->message);
              if (r.global_seq) c->wrote(r.global_seq);
              xml_writer w;
              w.leaf("return", "true");
              c->respond(w);
            },
            [=](caf::error& e) { service_unavailable(c, e); });
  });
}

void change_instance_share(const op_ptr& c, bool share) {
  auto id = required(c, "InstanceId");
  if (!id) return;
  auto group = required(c, "GroupName");
  if (!group) return;
  c->self->request(c->cloud->compute, actor_timeout, list_instances_atom::value, c->account_id, c->read_floor())
      .then(
          [=](std::vector<instance_view>& all) {
            only_visible(c, std::move(all), [=](std::vector<instance_view>& visible) {
              bool found = std::any_of(visible.begin(), visible.end(),
                                       [&](const instance_view& v) { return v.state.spec.instance_id == *id; });
              if (!found) return c->fail("InvalidInstanceID.NotFound", "The instance ID '" + *id + "' does not exist");
              change_share(c, share, *id, *group);
            });
          },
          [=](caf::error& e) { service_unavailable(c, e); });
}

// Images: only the account's own (other accounts share by launch permission).
void change_image_share(const op_ptr& c, bool share) {
  auto id = required(c, "ImageId");
  if (!id) return;
  auto group = required(c, "GroupName");
  if (!group) return;
  with_images(c, [=](std::vector<image::state>& visible) {
    bool own = std::any_of(visible.begin(), visible.end(), [&](const image::state& s) {
      return s.image_id == *id && s.owner_id == c->account_id;
    });
    if (!own) return c->fail("InvalidAMIID.NotFound", "The image id '[" + id->substr(0, 64) + "]' does not exist");
    change_share(c, share, *id, *group);
  });
}

void share_instance(const op_ptr& c) { change_instance_share(c, true); }
void unshare_instance(const op_ptr& c) { change_instance_share(c, false); }
void share_image(const op_ptr& c) { change_image_share(c, true); }
void unshare_image(const op_ptr& c) { change_image_share(c, false); }

void describe_instance_shares(const op_ptr& c) {
  with_directory(c, [=](iam::directory& d) {
    xml_writer w;
    w.open("shareSet");
    for (const auto& g : d.groups) {
      if (!c->user_name.empty() && !g.members.count(c->user_name)) continue;
      for (const auto& [resource, owner] : g.shared)
        w.open("item").leaf(resource.rfind("i-", 0) == 0 ? "instanceId" : "imageId", resource).leaf("groupName", g.group_name).leaf("ownerArn", owner).close("item");
    }
    w.close("shareSet");
    c->respond(w);
  });
}

}  // namespace

void only_visible(const op_ptr& c, std::vector<instance_view> all, std::function<void(std::vector<instance_view>&)> then) {
  if (c->user_name.empty()) return then(all);
  auto shared_all = std::make_shared<std::vector<instance_view>>(std::move(all));
  with_my_directory(c, [=](iam::directory& d) {
    std::vector<instance_view> visible;
    for (auto& v : *shared_all)
      if (iam::may_see_resource(d, caller_of(c), v.state.spec.instance_id)) visible.push_back(std::move(v));
    then(visible);
  });
}

void only_visible_images(const op_ptr& c, std::vector<image::state> all,
                         std::function<void(std::vector<image::state>&)> then) {
  if (c->user_name.empty()) return then(all);
  auto shared_all = std::make_shared<std::vector<image::state>>(std::move(all));
  with_my_directory(c, [=](iam::directory& d) {
    std::vector<image::state> visible;
    for (auto& s : *shared_all)
      if (s.owner_id != c->account_id || iam::may_see_image(d, caller_of(c), s.image_id)) visible.push_back(std::move(s));
    then(visible);
  });
}

void image_owner_only(const op_ptr& c, const std::string& image_id, std::function<void()> then) {
  if (c->user_name.empty()) return then();
  with_my_directory(c, [=](iam::directory& d) {
    auto arn = "arn:aws:ec2:" + c->cfg->region + "::image/" + image_id;
    if (!iam::may_manage_resource(d, caller_of(c), image_id, "ec2:" + c->action, arn))
      return c->fail("UnauthorizedOperation", "You are not authorized to perform this operation. Only the user who "
                                              "registered " + image_id + " or the account's root may " + c->action +
                                              " it, unless a policy of a group that shares it allows it",
                     403);
    then();
  });
}

void owner_only(const op_ptr& c, std::function<void()> then) {
  if (c->user_name.empty()) return then();
  with_my_directory(c, [=](iam::directory& d) {
    for (const auto& [key, value] : c->params.all()) {
      if (key != "InstanceId" && key.rfind("InstanceId.", 0) != 0) continue;
      if (!iam::may_see_resource(d, caller_of(c), value)) continue;  // the operation answers NotFound
      if (!iam::may_manage_resource(d, caller_of(c), value, "ec2:" + c->action, instance_arn(c, value)))
        return c->fail("UnauthorizedOperation", "You are not authorized to perform this operation. " + value +
                                                    " is shared with you; only its owner or the account's root may " +
                                                    c->action + " it, unless a policy of the sharing group allows it",
                       403);
    }
    then();
  });
}

void register_sharing_ops(op_table& t) {
  t["KumoShareInstance"] = {share_instance};
  t["KumoUnshareInstance"] = {unshare_instance};
  t["KumoDescribeInstanceShares"] = {describe_instance_shares};
  t["KumoShareImage"] = {share_image};
  t["KumoUnshareImage"] = {unshare_image};
}

}  // namespace kumo::api
