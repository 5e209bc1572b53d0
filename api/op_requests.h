// What operations that talk to actors share: the timeout of a request to an
// aggregate or view, and the answer when none comes. Include from .cpp files
// of operations only (pulls in CAF).
#pragma once

#include "api/operation.h"

#include <caf/all.hpp>

#include <chrono>

namespace kumo::api {

constexpr auto actor_timeout = std::chrono::seconds(30);

inline void service_unavailable(const op_ptr& c, const caf::error& e) {
  c->fail("ServiceUnavailable",
          c->action + " could not be completed: " + c->self->system().render(e) +
              "; retry the request",
          503);
}

}  // namespace kumo::api
