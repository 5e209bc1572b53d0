// kumoctl's commands. Each reads the event store (opened as a RocksDB
// secondary, so it works while kumod runs and never takes its lock), writes to
// `out`, and returns the process exit code: 0 ok, 1 problem found, 2 usage.
#pragma once

#include "persistence/event_store.h"

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

namespace kumo::ctl {

struct options {
  std::string data_dir;
  std::string stream;  // exact stream id, or a "kind/" prefix
  std::string type;
  std::optional<int64_t> since_ms;
  std::optional<int64_t> at_ms;
  bool follow = false;
  bool json = false;
  std::string resource_id;
};

int events(persistence::event_store& store, const options& o, std::ostream& out);
int audit(persistence::event_store& store, const options& o, std::ostream& out);
int replay(persistence::event_store& store, const options& o, std::ostream& out);
int verify(persistence::event_store& store, std::ostream& out);

// `account ...` and `key ...`: signed calls to a running kumod's admin actions.
struct admin_options {
  std::string endpoint = "http://127.0.0.1:8773";
  std::string region = "kumo-1";
  std::string credentials;  // an AWS shared-credentials file
  std::string profile = "kumo";
  bool json = false;
};
int administer(const std::string& command, const std::vector<std::string>& args,
               const admin_options& o, std::ostream& out, std::ostream& err);
// ldap sync, login USER, instance share|unshare ID GROUP (see admin.cpp).
int identity(const std::string& command, const std::vector<std::string>& args, const admin_options& o,
             std::istream& in, std::ostream& out, std::ostream& err);

}  // namespace kumo::ctl
