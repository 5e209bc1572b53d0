// LDAP on the endpoint. KumoLdapSync (admin account, signed): mirror the
// directory now; answers what changed.
//
// KumoLogin: an LDAP user trades its password for temporary credentials.
//
// It is the only unsigned action (a person with only a password has no key
// to sign with), like STS's AssumeRoleWithWebIdentity: POST
//   Action=KumoLogin&Version=2010-05-08&UserName=alice&Password=...
// The password goes to the directory in a simple bind as the user's DN and
// is never stored. The answer is an ASIA... access key, its secret, a
// session token (send it as X-Amz-Security-Token, as every SDK does with
// AWS_SESSION_TOKEN) and the expiry, in IAM's XML. Serve the endpoint over
// TLS (a reverse proxy) wherever passwords cross a network.
#include "api/iam.h"
#include "api/op_requests.h"

#include "actors/ldap/ldap_actors.h"

#include <spdlog/spdlog.h>

namespace kumo::api {

bool is_login_request(const http_parts& req) {
  if (req.headers.count("authorization") || req.target.find("X-Amz-Signature=") != std::string::npos) return false;
  auto qpos = req.target.find('?');
  query_error err;
  for (const auto& text : {qpos == std::string::npos ? std::string() : req.target.substr(qpos + 1), req.body}) {
    auto q = query::parse(text, err);
    if (q && q->get("Action") == std::optional<std::string>("KumoLogin")) return true;
  }
  return false;
}

void login(const op_ptr& c) {
  if (c->params.get("Version") != std::optional<std::string>(iam_version))
    return c->fail("NoSuchVersion", std::string("KumoLogin takes Version=") + iam_version);
  auto user = required(c, "UserName");
  if (!user) return;
  auto password = c->params.get("Password").value_or("");
  if (!c->cloud->ldap)
    return c->fail("InvalidAction", "no LDAP directory is configured on this cloud (kumod --ldap-uri=...)", 400);
  c->principal = "kumo:ldap-login/" + user->substr(0, 64);
  c->self->request(c->cloud->ldap, std::chrono::seconds(60), actors::ldap_login_atom::value, *user, password, c->meta())
      .then(
          [=](actors::ldap::login_reply& r) {
            if (r.error)
              return c->fail(r.error->code, r.error->message,
                             r.error->code == "AuthFailure" ? 403 : r.error->code == "ServiceUnavailable" ? 503 : 400);
            c->account_id = r.account_id;
            c->wrote(r.global_seq);
            xml_writer w;
            w.open("Credentials").leaf("AccessKeyId", r.key.access_key_id).leaf("SecretAccessKey", r.key.secret_access_key);
            w.leaf("SessionToken", r.key.secret_session_token).leaf("Expiration", iso_time(r.key.expires_ms));
            w.close("Credentials");
            w.leaf("UserName", r.user_name).leaf("Arn", r.user_arn).leaf("AccountId", r.account_id);
            c->respond(w);
          },
          [=](caf::error& e) { service_unavailable(c, e); });
}

namespace {

void ldap_sync(const op_ptr& c) {
  if (!c->cloud->ldap)
    return c->fail("InvalidAction", "no LDAP directory is configured on this cloud (kumod --ldap-uri=...)", 400);
  as_admin(c, [=] {
    c->self->request(c->cloud->ldap, std::chrono::seconds(300), actors::ldap_sync_atom::value, c->meta())
        .then(
            [=](actors::ldap::sync_report& r) {
              if (r.global_seq) c->wrote(r.global_seq);
              if (r.error) return c->fail(r.error->code, r.error->message, r.error->code == "ServiceUnavailable" ? 503 : 500);
              xml_writer w;
              w.open("changeSet");
              for (const auto& s : r.applied)
                w.open("item").leaf("change", actors::ldap::name_of(s.what)).leaf("name", s.name).leaf("user", s.user).close("item");
              w.close("changeSet").open("skippedSet");
              for (const auto& why : r.skipped) w.leaf("item", why);
              w.close("skippedSet");
              c->respond(w);
            },
            [=](caf::error& e) { service_unavailable(c, e); });
  });
}

}  // namespace

void register_ldap_ops(op_table& t) { t["KumoLdapSync"] = {ldap_sync, false}; }

}  // namespace kumo::api
