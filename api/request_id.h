// Request ids: one per API request (and per internal job), logged on every
// line about it and stored in every event it causes.
#pragma once

#include <string>

namespace kumo::api {

// A random UUID (version 4), the shape EC2 uses for requestId.
std::string new_request_id();

}  // namespace kumo::api
