#include "commands.h"

#include "api/client.h"

#include <nlohmann/json.hpp>

#include <cstdlib>
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

// One call to kumod; the body of a 200 answer, or nullopt after saying why.
std::optional<std::string> call(const api::endpoint& ep, const api::credentials& creds,
                                const std::map<std::string, std::string>& params, const admin_options& o,
                                std::ostream& err) {
  std::string why;
  api::signed_client client(ep, creds, o.region);
  auto reply = client.call(params, why);
  if (!reply) {
    err << "kumoctl: " << why << " (is kumod running at " << o.endpoint << "?)\n";
    return std::nullopt;
  }
  if (reply->status != 200) {
    auto rid = first(reply->body, "RequestID");  // EC2's errors; IAM's say RequestId
    err << "kumoctl: " << first(reply->body, "Code") << ": " << first(reply->body, "Message") << " (request "
        << (rid.empty() ? first(reply->body, "RequestId") : rid) << ")\n";
    return std::nullopt;
  }
  return reply->body;
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

  auto reply = call(*ep, *creds, params, o, err);
  if (!reply) return 1;
  const auto& body = *reply;
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


namespace {

std::string password_from(std::istream& in) {
  if (const char* env = std::getenv("KUMO_PASSWORD")) return env;
  std::string line;
  std::getline(in, line);
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

}  // namespace

// kumoctl's identity commands: ldap sync (admin credentials), login USER
// (LDAP password from KUMO_PASSWORD or stdin -> temporary keys, unsigned),
// instance share|unshare ID GROUP.
int identity(const std::string& command, const std::vector<std::string>& args, const admin_options& o,
             std::istream& in, std::ostream& out, std::ostream& err) {
  const std::string verb = args.empty() ? "" : args[0];
  std::map<std::string, std::string> params;
  bool signed_call = true;
  if (command == "ldap" && verb == "sync" && args.size() == 1) {
    params = {{"Action", "KumoLdapSync"}};
  } else if (command == "login" && args.size() == 1) {
    params = {{"Action", "KumoLogin"}, {"Version", "2010-05-08"}, {"UserName", args[0]}, {"Password", password_from(in)}};
    signed_call = false;
  } else if (command == "instance" && (verb == "share" || verb == "unshare") && args.size() == 3) {
    params = {{"Action", verb == "share" ? "KumoShareInstance" : "KumoUnshareInstance"},
              {"InstanceId", args[1]},
              {"GroupName", args[2]}};
  } else {
    err << "kumoctl: unknown or incomplete '" << command << "' command (see kumoctl --help)\n";
    return 2;
  }
  std::string why;
  auto ep = api::parse_endpoint(o.endpoint, why);
  std::optional<api::credentials> creds = api::credentials{};
  if (ep && signed_call) creds = api::read_credentials(o.credentials, o.profile, why);
  if (!ep || !creds) {
    err << "kumoctl: " << why << "\n";
    return 1;
  }
  auto reply = call(*ep, *creds, params, o, err);
  if (!reply) return 1;
  const auto& body = *reply;
  if (command == "login") {
    json creds_json{{"user_name", first(body, "UserName")},         {"arn", first(body, "Arn")},
                    {"access_key_id", first(body, "AccessKeyId")},   {"secret_access_key", first(body, "SecretAccessKey")},
                    {"session_token", first(body, "SessionToken")}, {"expiration", first(body, "Expiration")}};
    if (o.json) {
      out << creds_json.dump(2) << "\n";
      return 0;
    }
    out << "# " << creds_json["arn"].get<std::string>() << ", valid until " << creds_json["expiration"].get<std::string>()
        << "\n[" << args[0] << "]\naws_access_key_id = " << creds_json["access_key_id"].get<std::string>()
        << "\naws_secret_access_key = " << creds_json["secret_access_key"].get<std::string>()
        << "\naws_session_token = " << creds_json["session_token"].get<std::string>() << "\n";
    return 0;
  }
  if (command == "ldap") {
    auto changes = api::xml_texts(body, "change"), names = api::xml_texts(body, "name"), users = api::xml_texts(body, "user");
    for (size_t i = 0; i < changes.size(); ++i)
      out << changes[i] << " " << names[i] << (users[i].empty() ? "" : " " + users[i]) << "\n";
    auto skipped = body.substr(std::min(body.size(), body.find("<skippedSet>")));
    for (const auto& s : api::xml_texts(skipped, "item")) out << "skipped: " << s << "\n";
    out << "ldap sync: " << changes.size() << " change(s)\n";
    return 0;
  }
  out << (verb == "share" ? "shared " : "unshared ") << args[1] << " with group " << args[2] << "\n";
  return 0;
}

}  // namespace kumo::ctl
