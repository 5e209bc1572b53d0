#include "api/storage_lookups.h"

#include "actors/storage/storage_actors.h"
#include "api/op_requests.h"

namespace kumo::api {

bool storage_ready(const op_ptr& c) {
  if (c->cloud->storage) return true;
  c->fail("UnsupportedOperation", c->action + " needs the storage role, which this kumod does not run "
                                              "(start it with --role=all-in-one or include storage in --role)");
  return false;
}

void with_volumes(const op_ptr& c, std::function<void(std::vector<actors::volume::state>&)> then) {
  c->self->request(c->cloud->storage, actor_timeout, actors::list_volumes_atom::value, c->account_id, c->read_floor())
      .then([=](std::vector<actors::volume::state>& all) { then(all); },
            [=](caf::error& e) { service_unavailable(c, e); });
}

void with_snapshots(const op_ptr& c, std::function<void(std::vector<actors::snapshot::state>&)> then) {
  c->self->request(c->cloud->storage, actor_timeout, actors::list_snapshots_atom::value, c->account_id,
                   c->read_floor())
      .then([=](std::vector<actors::snapshot::state>& all) { then(all); },
            [=](caf::error& e) { service_unavailable(c, e); });
}

}  // namespace kumo::api
