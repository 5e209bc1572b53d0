#include "bootstrap.h"

#include "api/request_id.h"
#include "persistence/data_dir.h"

#include <spdlog/spdlog.h>

#include <fstream>
#include <regex>

namespace kumo::daemon {
namespace {

using namespace actors::account;

constexpr const char* bootstrap_principal = "kumo:bootstrap";

std::string key_id_in_file(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::smatch m;
  static const std::regex key_line(R"(^\s*aws_access_key_id\s*=\s*(\S+)\s*$)");
  while (std::getline(in, line))
    if (std::regex_match(line, m, key_line)) return m[1];
  return {};
}

bool write_credentials(const std::string& path, const access_key& key, std::string& error) {
  auto s = persistence::write_file_atomically(
      path,
      "# kumo admin credentials, written by kumod. Use with:\n"
      "#   AWS_SHARED_CREDENTIALS_FILE=" + path + " aws --profile kumo ...\n"
      "[kumo]\naws_access_key_id = " + key.access_key_id +
          "\naws_secret_access_key = " + key.secret_access_key + "\n",
      0600);
  if (!s.ok()) error = s.message;
  return s.ok();
}

}  // namespace

std::string credentials_path(const std::string& data_dir) {
  return data_dir + "/admin-credentials";
}

bool ensure_admin(client& accounts, const std::string& data_dir, std::string& error) {
  const auto path = credentials_path(data_dir);
  actors::request_meta meta{bootstrap_principal, api::new_request_id()};
  auto admin = accounts.admin();
  if (!admin) {
    auto r = accounts.create("admin", true, meta);
    if (r.error) {
      error = "creating the admin account failed: " + r.error->message;
      return false;
    }
    spdlog::info("rid={} bootstrap: created admin account {}", meta.request_id,
                 r.state.account_id);
    return write_credentials(path, r.state.keys.front(), error);
  }
  // The admin exists. Its file must hold one of its live keys.
  auto state = accounts.get(admin->account_id);
  if (state.error) {
    error = "reading the admin account failed: " + state.error->message;
    return false;
  }
  auto in_file = key_id_in_file(path);
  for (const auto& k : state.state.keys)
    if (k.access_key_id == in_file) return true;

  spdlog::warn("rid={} bootstrap: {} is missing or holds no live key of admin {}; issuing a new key",
               meta.request_id, path, admin->account_id);
  if (state.state.keys.size() >= max_access_keys) {
    const auto& oldest = state.state.keys.front().access_key_id;
    auto d = accounts.send(admin->account_id, delete_access_key{oldest}, meta);
    if (d.error) {
      error = "retiring admin key " + oldest + " failed: " + d.error->message;
      return false;
    }
  }
  auto key = new_access_key();
  auto r = accounts.send(admin->account_id, create_access_key{key}, meta);
  if (r.error) {
    error = "issuing an admin key failed: " + r.error->message;
    return false;
  }
  return write_credentials(path, key, error);
}

}  // namespace kumo::daemon
