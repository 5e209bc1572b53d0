// First start: create the admin account and hand its keys to the operator.
#pragma once

#include "actors/account/account_actors.h"

#include <string>

namespace kumo::daemon {

// Ensures an admin account exists and that <data dir>/admin-credentials holds
// a working key of it (AWS shared-credentials format, profile "kumo", mode
// 0600). Idempotent and crash-safe: if kumod died between creating the
// account and writing the file, the next start issues a fresh key and writes
// it. Returns false with a message on failure.
bool ensure_admin(actors::account::client& accounts, const std::string& data_dir,
                  std::string& error);

std::string credentials_path(const std::string& data_dir);

}  // namespace kumo::daemon
