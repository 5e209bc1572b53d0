// CreateTags, DeleteTags, DescribeTags over every taggable resource kind
// (key pairs "key-", security groups "sg-", volumes "vol-", snapshots "snap-"). Tags live in each resource's own
// aggregate; these operations find the aggregate from the id, scoped to the
// caller's account, and send it a change_tags command.
#include "api/op_requests.h"

#include "actors/keypair/keypair_actors.h"
#include "actors/securitygroup/security_group_actors.h"
#include "actors/storage/storage_actors.h"
#include "api/storage_lookups.h"


namespace kumo::api {
namespace {

// One taggable resource of the caller's account.
struct taggable {
  std::string resource_id;    // key-..., sg-...
  std::string resource_type;  // as DescribeTags reports it
  std::string aggregate_id;   // "<account>/<name>"
  std::vector<actors::resource_tag> tags;
};

// Adds the account's volumes and own snapshots (when this kumod has storage), then `then`.
template <class Then>
void add_storage(const op_ptr& c, std::shared_ptr<std::vector<taggable>> out, Then then) {
  if (!c->cloud->storage) return then();
  with_volumes(c, [=](std::vector<actors::volume::state>& volumes) {
    for (const auto& v : volumes)
      out->push_back({v.volume_id, "volume", actors::volume::aggregate_id(v.owner_id, v.volume_id), v.spec.tags});
    with_snapshots(c, [=](std::vector<actors::snapshot::state>& snapshots) {
      for (const auto& s : snapshots)
        if (s.owner_id == c->account_id && s.status != actors::snapshot::status::deleting)
          out->push_back({s.snapshot_id, "snapshot", actors::snapshot::aggregate_id(s.owner_id, s.snapshot_id),
                          s.spec.tags});
      then();
    });
  });
}

// Loads every taggable resource of the account, then `then(resources)`.
template <class Then>
void with_taggables(const op_ptr& c, Then then) {
  c->self->request(c->cloud->keypairs_view, actor_timeout, actors::list_key_pairs_atom::value,
                   c->account_id, c->read_floor())
      .then(
          [=](std::vector<actors::keypair::state>& keys) {
            auto out = std::make_shared<std::vector<taggable>>();
            for (const auto& k : keys)
              out->push_back({k.key.key_pair_id, "key-pair",
                              actors::keypair::aggregate_id(k.account_id, k.key_name), k.key.tags});
            c->self->request(c->cloud->security_groups_view, actor_timeout,
                             actors::list_groups_atom::value, c->account_id, c->read_floor())
                .then(
                    [=](std::vector<actors::security_group::state>& groups) {
                      for (const auto& g : groups)
                        out->push_back({g.group_id, "security-group",
                                        actors::security_group::aggregate_id(g.account_id, g.group_name), g.tags});
                      add_storage(c, out, [=] {
                        std::sort(out->begin(), out->end(), [](const taggable& a, const taggable& b) {
                          return a.resource_id < b.resource_id;
                        });
                        then(*out);
                      });
                    },
                    [=](caf::error& e) { service_unavailable(c, e); });
          },
          [=](caf::error& e) { service_unavailable(c, e); });
}

// Sends the change to every resource; answers once all have replied.
void change_all(const op_ptr& c, const std::vector<taggable>& targets, const actors::change_tags& change) {
  auto left = std::make_shared<size_t>(targets.size());
  auto failed = std::make_shared<bool>(false);
  auto on_reply = [=](const std::optional<actors::api_error>& err, uint64_t gseq) {
    if (*failed) return;
    if (err) {
      *failed = true;
      return c->fail(err->code, err->message);
    }
    c->wrote(gseq);
    if (--*left == 0) {
      xml_writer w;
      w.leaf("return", "true");
      c->respond(w);
    }
  };
  for (const auto& t : targets) {
    if (t.resource_type == "key-pair")
      c->self->request(c->cloud->keypairs, actor_timeout, t.aggregate_id,
                       actors::keypair::command{change}, c->meta())
          .then([=](actors::keypair::keypair_reply& r) { on_reply(r.error, r.global_seq); },
                [=](caf::error& e) { service_unavailable(c, e); });
    else if (t.resource_type == "volume")
      c->self->request(c->cloud->volumes, actor_timeout, t.aggregate_id, actors::volume::command{change}, c->meta())
          .then([=](actors::volume_reply& r) { on_reply(r.error, r.global_seq); },
                [=](caf::error& e) { service_unavailable(c, e); });
    else if (t.resource_type == "snapshot")
      c->self->request(c->cloud->snapshots, actor_timeout, t.aggregate_id, actors::snapshot::command{change},
                       c->meta())
          .then([=](actors::snapshot_reply& r) { on_reply(r.error, r.global_seq); },
                [=](caf::error& e) { service_unavailable(c, e); });
    else
      c->self->request(c->cloud->security_groups, actor_timeout, t.aggregate_id,
                       actors::security_group::command{change}, c->meta())
          .then([=](actors::security_group::security_group_reply& r) { on_reply(r.error, r.global_seq); },
                [=](caf::error& e) { service_unavailable(c, e); });
  }
}

void change_tags_op(const op_ptr& c, bool create) {
  query_error err;
  auto ids = c->params.list("ResourceId", err);
  if (!ids) return c->fail(err);
  if (ids->empty()) return c->fail("MissingParameter", "The request must contain the parameter ResourceId.1");
  auto tags = tag_params(c, create);
  if (!tags) return;
  if (create && tags->empty()) return c->fail("MissingParameter", "The request must contain the parameter Tag.1");
  actors::change_tags change;
  for (const auto& t : *tags) {
    if (create)
      change.set.push_back({t.key, t.value});
    else
      change.remove.push_back(t);
  }
  with_taggables(c, [=](const std::vector<taggable>& all) {
    std::vector<taggable> targets;
    for (const auto& id : *ids) {
      auto it = std::find_if(all.begin(), all.end(), [&](const taggable& t) { return t.resource_id == id; });
      if (it != all.end()) {
        targets.push_back(*it);
        continue;
      }
      if (id.rfind("key-", 0) == 0) return c->fail("InvalidKeyPair.NotFound", "The key pair ID '" + id + "' does not exist");
      if (id.rfind("sg-", 0) == 0) return c->fail("InvalidGroup.NotFound", "The security group '" + id + "' does not exist");
      if (id.rfind("vol-", 0) == 0) return c->fail("InvalidVolume.NotFound", "The volume '" + id + "' does not exist.");
      if (id.rfind("snap-", 0) == 0)
        return c->fail("InvalidSnapshot.NotFound", "The snapshot '" + id + "' does not exist.");
      return c->fail("InvalidID", "The ID '" + id + "' is not valid");
    }
    auto effective = change;
    if (!create && tags->empty()) {
      // DeleteTags without Tag.N deletes every tag of the resource.
      effective.remove.clear();
      for (const auto& t : targets)
        for (const auto& tag : t.tags) effective.remove.push_back({tag.key, true, ""});
    }
    change_all(c, targets, effective);
  });
}

void describe_tags(const op_ptr& c) {
  auto filters = checked_filters(c, {"key", "value", "resource-id", "resource-type", "tag:*"});
  if (!filters) return;
  with_taggables(c, [=](const std::vector<taggable>& all) {
    std::vector<std::pair<const taggable*, actors::resource_tag>> rows;
    for (const auto& t : all)
      for (const auto& tag : t.tags)
        if (matches(*filters, [&](const std::string& f) -> std::vector<std::string> {
              if (f == "key") return {tag.key};
              if (f == "value") return {tag.value};
              if (f == "resource-id") return {t.resource_id};
              if (f == "resource-type") return {t.resource_type};
              return tag_filter_values(f, t.tags);
            }))
          rows.emplace_back(&t, tag);
    auto p = paginate(c, rows.size());
    if (!p) return;
    xml_writer w;
    w.open("tagSet");
    for (size_t i = p->begin; i < p->end; ++i) {
      const auto& [t, tag] = rows[i];
      w.open("item").leaf("resourceId", t->resource_id).leaf("resourceType", t->resource_type);
      w.leaf("key", tag.key).leaf("value", tag.value).close("item");
    }
    w.close("tagSet");
    if (!p->next_token.empty()) w.leaf("nextToken", p->next_token);
    c->respond(w);
  });
}

}  // namespace

void register_tag_ops(op_table& t) {
  t["CreateTags"] = {[](const op_ptr& c) { change_tags_op(c, true); }};
  t["DeleteTags"] = {[](const op_ptr& c) { change_tags_op(c, false); }};
  t["DescribeTags"] = {describe_tags};
}

}  // namespace kumo::api
