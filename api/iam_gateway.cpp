// What the gateway does for IAM: IAM's XML dialect, IAM users' keys, and
// policy evaluation before every operation.
#include "api/iam.h"
#include "api/op_requests.h"
#include "crypto/digest.h"

#include "actors/iam/iam_actors.h"
#include "actors/iam/policy.h"
#include "persistence/time_format.h"

#include <spdlog/spdlog.h>

#include <ctime>

namespace kumo::api {

namespace {
constexpr const char* iam_namespace = "https://iam.amazonaws.com/doc/2010-05-08/";
constexpr const char* xml_declaration = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
}  // namespace

std::string iam_response(std::string_view action, std::string_view request_id, std::string_view body) {
  std::string a(action);
  std::string out = xml_declaration;
  out += "<" + a + "Response xmlns=\"" + iam_namespace + "\">";
  if (!body.empty()) out += "<" + a + "Result>" + std::string(body) + "</" + a + "Result>";
  out += "<ResponseMetadata><RequestId>" + xml_escape(request_id) + "</RequestId></ResponseMetadata>";
  out += "</" + a + "Response>";
  return out;
}

std::string iam_error(std::string_view code, std::string_view message, std::string_view request_id) {
  xml_writer w;
  w.open("Error").leaf("Type", "Sender").leaf("Code", code).leaf("Message", message).close("Error");
  w.leaf("RequestId", request_id);
  return std::string(xml_declaration) + "<ErrorResponse xmlns=\"" + iam_namespace + "\">" + w.str() +
         "</ErrorResponse>";
}

std::vector<std::string> request_resources(const std::string& service, const std::string& region,
                                           const std::string& account_id, const query& params) {
  std::vector<std::string> out;
  if (service == "iam") {
    if (auto u = params.get("UserName")) out.push_back("arn:aws:iam::" + account_id + ":user/" + *u);
    if (auto g = params.get("GroupName")) out.push_back("arn:aws:iam::" + account_id + ":group/" + *g);
  } else {
    for (const auto& [key, value] : params.all())
      if (key == "InstanceId" || key.rfind("InstanceId.", 0) == 0)
        out.push_back("arn:aws:ec2:" + region + ":" + account_id + ":instance/" + value);
  }
  if (out.empty()) out.push_back("*");
  return out;
}

bool authorized(const op_ptr& c) {
  if (c->user_name.empty()) return true;  // the account's root
  const auto action = c->service + ":" + c->action;
  auto v = actors::iam::evaluate_documents(c->policies, action,
                                           request_resources(c->service, c->cfg->region, c->account_id, c->params));
  if (v == actors::iam::verdict::allow) return true;
  spdlog::info("rid={} {} denied to {} ({})", c->request_id, action, c->principal,
               v == actors::iam::verdict::explicit_deny ? "explicit deny" : "no statement allows it");
  const auto why = "User: " + c->principal + " is not authorized to perform: " + action +
                   (v == actors::iam::verdict::explicit_deny ? " with an explicit deny" : "");
  if (c->service == "iam")
    c->fail("AccessDenied", why, 403);
  else
    c->fail("UnauthorizedOperation", "You are not authorized to perform this operation. " + why, 403);
  return false;
}

namespace {

// X-Amz-Security-Token: a header, or a query parameter of a presigned URL.
std::string session_token(const http_parts& req) {
  if (auto h = req.headers.find("x-amz-security-token"); h != req.headers.end()) return h->second;
  auto qpos = req.target.find('?');
  query_error err;
  auto q = qpos == std::string::npos ? std::nullopt : query::parse(req.target.substr(qpos + 1), err);
  return q ? q->get("X-Amz-Security-Token").value_or("") : "";
}

}  // namespace

void authenticate_user(const op_ptr& c, const http_parts& req, const sigv4_claim& claim,
                       std::function<void()> then) {
  auto parts = std::make_shared<http_parts>(req);
  auto refuse = [c, key = claim.access_key_id](const std::string& why) {
    c->fail("AuthFailure", "AWS was not able to validate the provided access credentials (" + why + ")", 401);
  };
  c->self->request(c->cloud->iam_view, actor_timeout, actors::iam_key_atom::value, claim.access_key_id,
                   c->read_floor())
      .then(
          [=](std::optional<actors::iam::caller_identity>& who) {
            if (!who) return refuse("unknown access key " + claim.access_key_id);
            if (who->key.status != "Active") return refuse("access key " + claim.access_key_id + " is inactive");
            if (who->key.expires_ms && who->key.expires_ms <= persistence::now_ms())
              return refuse("the temporary access key " + claim.access_key_id + " expired at " +
                            iso_time(who->key.expires_ms) + "; log in again");
            if (!who->key.secret_session_token.empty() &&
                !crypto::constant_time_equal(session_token(*parts), who->key.secret_session_token))
              return refuse("a temporary key needs its session token (X-Amz-Security-Token)");
            if (auto bad = verify(*parts, claim, who->key.secret_access_key, signing_region(c, claim), c->service,
                                  std::time(nullptr)))
              return c->fail(bad->code, bad->message, bad->http_status);
            c->account_id = who->account_id;
            c->principal = who->user_arn;
            c->user_name = who->user_name;
            c->policies = std::move(who->policies);
            then();
          },
          [=](caf::error& e) {
            c->fail("ServiceUnavailable", "credentials could not be checked: " + c->self->system().render(e), 503);
          });
}

}  // namespace kumo::api
