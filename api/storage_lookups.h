// Reads of the storage role's views shared by the volume and snapshot
// operations. Each answers the request itself when the storage role is
// missing (UnsupportedOperation) or unreachable (ServiceUnavailable).
#pragma once

#include "actors/storage/snapshot.h"
#include "actors/storage/volume.h"
#include "api/operation.h"

#include <functional>
#include <vector>

namespace kumo::api {

// False (after failing the call) when this kumod runs no storage role.
bool storage_ready(const op_ptr& c);
// The caller's own volumes.
void with_volumes(const op_ptr& c, std::function<void(std::vector<actors::volume::state>&)> then);
// Every snapshot the caller may create volumes from: its own, shared, public.
void with_snapshots(const op_ptr& c, std::function<void(std::vector<actors::snapshot::state>&)> then);

}  // namespace kumo::api
