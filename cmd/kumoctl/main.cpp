// kumoctl: the operator's tool. Reads kumo's event log offline or next to a
// running kumod: events, audit, replay --at, verify.
#include "commands.h"

#include "persistence/data_dir.h"
#include "persistence/time_format.h"

#include <spdlog/spdlog.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <vector>

namespace {

const char* usage =
    "usage: kumoctl [--data-dir=DIR] <command> [options]\n"
    "  events [--stream=S|KIND/] [--type=T] [--since=TIME] [--follow] [--json]\n"
    "  audit <resource-id> [--json]     who did what to a resource, when, in which request\n"
    "  replay --at=TIME [--json]        the state as of TIME, rebuilt from the log\n"
    "  verify                           check the log: sequences, decoding, index\n"
    "Administration of a running kumod (signed with the admin credentials):\n"
    "  account create NAME [--json]     a new account with its first access key\n"
    "  account list [--json]\n"
    "  key create ACCOUNT_ID [--json]   another access key (at most two per account)\n"
    "  ldap sync                        mirror the LDAP directory into users and groups now\n"
    "  instance share|unshare INSTANCE_ID GROUP   share an instance with a user group\n"
    "  login USER [--json]              LDAP password (KUMO_PASSWORD or stdin) -> temporary keys\n"
    "  key delete ACCOUNT_ID ACCESS_KEY_ID\n"
    "  options: --endpoint=http://127.0.0.1:8773 --region=kumo-1\n"
    "           --credentials=FILE (default DIR/admin-credentials) --profile=kumo\n"
    "TIME: 2026-11-25T06:09:52Z (UTC, optional .fff), 2026-11-25, or unix seconds.\n"
    "DIR defaults to $KUMO_DATA_DIR, else /var/lib/kumo.\n";

int usage_error(const std::string& why) {
  std::cerr << "kumoctl: " << why << "\n" << usage;
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace kumo;
  spdlog::set_level(spdlog::level::warn);
  ctl::options o;
  if (const char* env = std::getenv("KUMO_DATA_DIR")) o.data_dir = env;
  if (o.data_dir.empty()) o.data_dir = "/var/lib/kumo";
  std::string command;
  std::vector<std::string> positional;
  ctl::admin_options admin;
  std::vector<std::string> args(argv + 1, argv + argc);
  for (size_t i = 0; i < args.size(); ++i) {
    std::string a = args[i], value;
    if (a.rfind("--", 0) == 0) {
      auto eq = a.find('=');
      bool takes_value = a != "--follow" && a != "--json" && a != "--help";
      if (eq != std::string::npos) {
        value = a.substr(eq + 1);
        a = a.substr(0, eq);
      } else if (takes_value) {
        if (i + 1 >= args.size()) return usage_error(a + " needs a value");
        value = args[++i];
      }
      auto time_of = [&](std::optional<int64_t>& t) {
        t = persistence::parse_time(value);
        return t.has_value();
      };
      if (a == "--help") {
        std::cout << usage;
        return 0;
      } else if (a == "--data-dir") o.data_dir = value;
      else if (a == "--endpoint") admin.endpoint = value;
      else if (a == "--region") admin.region = value;
      else if (a == "--credentials") admin.credentials = value;
      else if (a == "--profile") admin.profile = value;
      else if (a == "--stream") o.stream = value;
      else if (a == "--type") o.type = value;
      else if (a == "--follow") o.follow = true;
      else if (a == "--json") o.json = true;
      else if (a == "--since") {
        if (!time_of(o.since_ms)) return usage_error("--since: cannot read time '" + value + "'");
      } else if (a == "--at") {
        if (!time_of(o.at_ms)) return usage_error("--at: cannot read time '" + value + "'");
      } else return usage_error("unknown option " + a);
    } else if (command.empty()) {
      command = a;
    } else {
      positional.push_back(a);
    }
  }
  if (command.empty()) return usage_error("no command given");
  if (command == "account" || command == "key") {
    if (admin.credentials.empty()) admin.credentials = o.data_dir + "/admin-credentials";
    admin.json = o.json;
    return ctl::administer(command, positional, admin, std::cout, std::cerr);
  }
  if (command == "ldap" || command == "login" || command == "instance") {
    if (admin.credentials.empty()) admin.credentials = o.data_dir + "/admin-credentials";
    admin.json = o.json;
    return ctl::identity(command, positional, admin, std::cin, std::cout, std::cerr);
  }
  if (command == "audit" && positional.size() == 1) o.resource_id = positional[0];
  else if (!positional.empty()) return usage_error("unexpected argument '" + positional.back() + "'");
  if (command != "events" && command != "audit" && command != "replay" && command != "verify")
    return usage_error("unknown command '" + command + "'");
  if (command == "audit" && o.resource_id.empty()) return usage_error("audit needs a resource id");
  if (command == "replay" && !o.at_ms) return usage_error("replay needs --at=TIME");

  auto path = persistence::events_path(o.data_dir);
  if (!std::filesystem::exists(path + "/CURRENT")) {
    std::cerr << "kumoctl: no event store at " << path << " (is --data-dir right?)\n";
    return 1;
  }
  // A private scratch dir for the RocksDB secondary instance.
  std::string scratch_template = (std::filesystem::temp_directory_path() / "kumoctl-XXXXXX").string();
  if (!mkdtemp(scratch_template.data())) {
    std::cerr << "kumoctl: cannot create a scratch directory in /tmp\n";
    return 1;
  }
  int rc = 1;
  {
    persistence::status st;
    auto store = persistence::event_store::open(path, persistence::open_mode::secondary, st,
                                                scratch_template);
    if (!store) {
      std::cerr << "kumoctl: " << st.message << "\n";
    } else if (command == "events") {
      rc = ctl::events(*store, o, std::cout);
    } else if (command == "audit") {
      rc = ctl::audit(*store, o, std::cout);
    } else if (command == "replay") {
      rc = ctl::replay(*store, o, std::cout);
    } else {
      rc = ctl::verify(*store, std::cout);
    }
  }
  std::error_code ec;
  std::filesystem::remove_all(scratch_template, ec);
  return rc;
}
