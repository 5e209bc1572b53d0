#include "api/lookups.h"
#include "api/instance_access.h"

#include "actors/image/image_actors.h"
#include "actors/keypair/keypair_actors.h"
#include "actors/network/network_actors.h"
#include "actors/securitygroup/security_group_actors.h"
#include "api/instance_access.h"
#include "api/op_requests.h"
#include "persistence/time_format.h"

namespace kumo::api {

void with_key_pairs(const op_ptr& c, std::function<void(std::vector<actors::keypair::state>&)> then) {
  c->self->request(c->cloud->keypairs_view, actor_timeout, actors::list_key_pairs_atom::value,
                   c->account_id, c->read_floor())
      .then([=](std::vector<actors::keypair::state>& keys) { then(keys); },
            [=](caf::error& e) { service_unavailable(c, e); });
}

void with_security_groups(const op_ptr& c,
                          std::function<void(std::vector<actors::security_group::state>&)> then) {
  namespace sg = actors::security_group;
  c->self->request(c->cloud->security_groups, actor_timeout, sg::aggregate_id(c->account_id, "default"),
                   sg::command{sg::create_group{sg::new_group_id(), "default group", persistence::now_ms(), {}}},
                   c->meta())
      .then(
          [=](sg::security_group_reply& r) {
            if (r.error && r.error->code != "InvalidGroup.Duplicate")
              return c->fail(r.error->code, r.error->message);
            if (!r.error) c->wrote(r.global_seq);
            c->self->request(c->cloud->security_groups_view, actor_timeout,
                             actors::list_groups_atom::value, c->account_id, c->read_floor())
                .then([=](std::vector<sg::state>& all) { then(all); },
                      [=](caf::error& e) { service_unavailable(c, e); });
          },
          [=](caf::error& e) { service_unavailable(c, e); });
}

void with_images(const op_ptr& c, std::function<void(std::vector<actors::image::state>&)> then) {
  c->self->request(c->cloud->images_view, actor_timeout, actors::list_images_atom::value,
                   c->account_id, c->read_floor())
      .then([=](std::vector<actors::image::state>& images) { only_visible_images(c, std::move(images), then); },
            [=](caf::error& e) { service_unavailable(c, e); });
}

void with_instances(const op_ptr& c, std::function<void(std::vector<actors::instance_view>&)> then) {
  c->self->request(c->cloud->compute, actor_timeout, actors::list_instances_atom::value, c->account_id,
                   c->read_floor())
      .then([=](std::vector<actors::instance_view>& all) { only_visible(c, std::move(all), then); },
            [=](caf::error& e) { service_unavailable(c, e); });
}

void with_network(const op_ptr& c, std::function<void(const actors::network::account_network&)> then) {
  if (!c->cloud->network_controller) return then({});  // networking off: no addresses at all
  c->self->request(c->cloud->network_controller, actor_timeout, actors::list_network_atom::value, c->account_id,
                   c->read_floor())
      .then([=](actors::network::account_network& n) { then(n); },
            [=](caf::error& e) { service_unavailable(c, e); });
}

}  // namespace kumo::api
