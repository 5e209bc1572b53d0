#include "commands.h"

#include "api/client.h"

#include <nlohmann/json.hpp>

#include <iostream>

namespace kumo::ctl {
namespace {

using json = nlohmann::json;

std::string first(const std::string& xml, const std::string& tag) {
  auto v = api::xml_texts(xml, tag);
  return v.empty() ? "" : v.front();
}

int usage(std::ostream& err, const std::string& why) {
  err << "kumoctl: " << why << " (see kumoctl --help)\n";
  return 2;
}

}  // namespace

int administer(const std::string& command, const std::vector<std::string>& args,
               const admin_options& o, std::ostream& out, std::ostream& err) {
  std::string why;
  auto ep = api::parse_endpoint(o.endpoint, why);
  auto creds = ep ? api::read_credentials(o.credentials, o.profile, why) : std::nullopt;
  if (!creds) {
    err << "kumoctl: " << why << "\n";
    return 1;
  }
  std::map<std::string, std::string> params;
  const std::string verb = args.empty() ? "" : args[0];
  if (command == "account" && verb == "create" && args.size() == 2)
    params = {{"Action", "KumoCreateAccount"}, {"AccountName", args[1]}};
  else if (command == "account" && verb == "list" && args.size() == 1)
    params = {{"Action", "KumoListAccounts"}};
  else if (command == "key" && verb == "create" && args.size() == 2)
    params = {{"Action", "KumoCreateAccessKey"}, {"AccountId", args[1]}};
  else if (command == "key" && verb == "delete" && args.size() == 3)
    params = {{"Action", "KumoDeleteAccessKey"}, {"AccountId", args[1]}, {"AccessKeyId", args[2]}};
  else
    return usage(err, "unknown or incomplete '" + command + "' command");

  api::signed_client client(*ep, *creds, o.region);
  auto reply = client.call(params, why);
  if (!reply) {
    err << "kumoctl: " << why << " (is kumod running at " << o.endpoint << "?)\n";
    return 1;
  }
  const auto& body = reply->body;
  if (reply->status != 200) {
    err << "kumoctl: " << first(body, "Code") << ": " << first(body, "Message")
        << " (request " << first(body, "RequestID") << ")\n";
    return 1;
  }
  if (params["Action"] == "KumoListAccounts") {
    auto ids = api::xml_texts(body, "accountId"), names = api::xml_texts(body, "accountName");
    auto admins = api::xml_texts(body, "admin");
    json list = json::array();
    for (size_t i = 0; i < ids.size(); ++i) {
      list.push_back({{"account_id", ids[i]}, {"account_name", names[i]}, {"admin", admins[i] == "true"}});
      if (!o.json) out << ids[i] << "  " << names[i] << (admins[i] == "true" ? "  [admin]" : "") << "\n";
    }
    if (o.json) out << list.dump(2) << "\n";
    return 0;
  }
  if (params["Action"] == "KumoDeleteAccessKey") {
    out << "deleted access key " << args[2] << " of account " << args[1] << "\n";
    return 0;
  }
  json created{{"account_id", first(body, "accountId")},
               {"access_key_id", first(body, "accessKeyId")},
               {"secret_access_key", first(body, "secretAccessKey")}};
  if (o.json) {
    out << created.dump(2) << "\n";
    return 0;
  }
  auto profile = command == "account" ? args[1] : "account-" + args[1];
  out << "# account " << created["account_id"].get<std::string>()
      << ": keep this secret key, it is not shown again\n[" << profile
      << "]\naws_access_key_id = " << created["access_key_id"].get<std::string>()
      << "\naws_secret_access_key = " << created["secret_access_key"].get<std::string>() << "\n";
  return 0;
}

}  // namespace kumo::ctl
