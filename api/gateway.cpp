// The EC2 gateway: each request runs in an actor of its own, from bytes to reply.
//   route -> SigV4 claim -> parameters -> secret lookup (accounts view)
//   -> signature check -> Action/Version -> DryRun -> the operation.
#include "api/ec2_params.h"
#include "api/iam.h"
#include "api/key_generators.h"
#include "api/operation.h"
#include "crypto/digest.h"

#include "actors/account/account_actors.h"
#include "actors/clienttoken/client_token_actors.h"
#include "persistence/time_format.h"
#include "actors/ids.h"

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <fstream>
#include <thread>

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kumo::api::http_parts)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kumo::api::reply_fn)

namespace kumo::api {
namespace {

constexpr auto lookup_timeout = std::chrono::seconds(10);
const std::string api_version = "2016-11-15";

bool is_ec2_path(const std::string& target) {
  auto path = target.substr(0, target.find('?'));
  return path == "/" || path == "/services/compute" || path == "/services/compute/";
}

// The operation's parameters: the query string (without the presigning
// X-Amz-* fields) plus a form-encoded POST body.
std::optional<query> parameters_of(const http_parts& req, query_error& err) {
  auto qpos = req.target.find('?');
  auto params = query::parse(qpos == std::string::npos ? "" : req.target.substr(qpos + 1), err);
  if (!params) return std::nullopt;
  params->erase_prefixed("X-Amz-");
  if (req.method == "POST" && !req.body.empty()) {
    auto ct = req.headers.count("content-type") ? req.headers.at("content-type") : "";
    if (ct.rfind("application/x-www-form-urlencoded", 0) != 0) {
      err = {"InvalidParameterValue",
             "POST bodies must be application/x-www-form-urlencoded, not '" + ct.substr(0, 64) + "'"};
      return std::nullopt;
    }
    auto body = query::parse(req.body, err);
    if (!body || !params->merge(*body, err)) return std::nullopt;
  }
  return params;
}

// What makes two calls "the same": the caller and every parameter but the
// token itself. The caller is part of it because tokens are scoped to the
// account: another user of the account repeating a token must not be handed
// the first caller's recorded response (IdempotentParameterMismatch instead).
std::string parameters_hash(const std::string& principal, const query& params) {
  return crypto::sha256_hex(principal + "\n" + params.canonical({"ClientToken"}));
}

// EC2 idempotency: the first call with a token runs; a repeat gets the
// recorded response, or runs again with the same seed if the first never
// finished (then it creates the same resources, which their aggregates
// accept as repeats).
void run_idempotent(const op_ptr& c, op_handler handler) {
  namespace ct = actors::client_token;
  auto token = *c->params.get("ClientToken");
  if (!ct::valid_token(token))
    return c->fail("InvalidParameterValue",
                   "Value for parameter ClientToken is invalid: use 1-64 printable ASCII characters");
  const auto id = ct::aggregate_id(c->account_id, token);
  ct::claim claim{c->action, parameters_hash(c->principal, c->params), actors::random_chars(32, "0123456789abcdef"),
                  persistence::now_ms()};
  const auto& registry = c->cloud->client_tokens;
  c->self->request(registry, lookup_timeout, id, ct::command{claim}, c->meta())
      .then(
          [=](ct::client_token_reply& r) {
            if (r.error) return c->fail(r.error->code, r.error->message);
            if (r.global_seq) c->wrote(r.global_seq);
            if (r.state.done) {
              spdlog::info("rid={} {}: ClientToken {} repeats a completed call; replaying its response",
                           c->request_id, c->action, token);
              return c->respond(r.state.response_body);
            }
            c->seed = r.state.seed;
            // Captures no reference to the context: it may be gone when the record is durable.
            c->record_success = [self = c->self, meta = c->meta(), registry, id, token](
                                    const std::string& body, std::function<void()> answer) {
              auto not_recorded = [=](const std::string& why) {
                // The call itself succeeded; a retry re-runs it with the same seed.
                spdlog::warn("rid={} ClientToken {}: response not recorded: {}", meta.request_id, token, why);
                answer();
              };
              self->request(registry, lookup_timeout, id, ct::command{ct::complete{body}}, meta)
                  .then(
                      [=](ct::client_token_reply& done) {
                        if (done.error) return not_recorded(done.error->message);
                        answer();
                      },
                      [=](caf::error& e) { not_recorded(self->system().render(e)); });
            };
            c->release_claim = [self = c->self, meta = c->meta(), registry, id, token, hash = claim.params_hash](
                                   const std::string& code, std::function<void()> answer) {
              self->request(registry, lookup_timeout, id, ct::command{ct::release{hash, code}}, meta)
                  .then(
                      [=](ct::client_token_reply& r) {
                        if (r.error)
                          spdlog::warn("rid={} ClientToken {}: claim not released: {}", meta.request_id, token,
                                       r.error->message);
                        answer();
                      },
                      [=](caf::error& e) {
                        spdlog::warn("rid={} ClientToken {}: claim not released: {}", meta.request_id, token,
                                     self->system().render(e));
                        answer();
                      });
            };
            handler(c);
          },
          [=](caf::error& e) {
            c->fail("ServiceUnavailable", "the ClientToken could not be checked: " + c->self->system().render(e) +
                                              "; retry with the same token",
                    503);
          });
}

void dispatch(const op_ptr& c);

// The key that signs NextToken values: made once and kept in the data dir
// (mode 0600), so a token handed out before a kumod restart still works
// after it. Without a data dir (tests of the gateway alone): per process.
std::string paging_token_key(const std::string& data_dir) {
  const auto alphabet = "0123456789abcdef";
  if (data_dir.empty()) return actors::random_chars(64, alphabet);
  const auto path = data_dir + "/api-token.key";
  auto read_key = [&] {
    std::ifstream in(path);
    std::string key;
    in >> key;
    return key.size() == 64 ? key : std::string();
  };
  if (auto key = read_key(); !key.empty()) return key;
  const auto key = actors::random_chars(64, alphabet);
  const auto tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  const bool written = fd >= 0 && ::write(fd, key.data(), key.size()) == static_cast<ssize_t>(key.size()) &&
                       ::fsync(fd) == 0;
  if (fd >= 0) ::close(fd);
  if (!written || ::rename(tmp.c_str(), path.c_str()) != 0) {
    spdlog::warn("api: cannot keep the paging key in {} ({}); NextToken values will not survive a restart", path,
                 std::strerror(errno));
    return key;
  }
  return key;
}

}  // namespace

// IAM is a global service: clients may sign its requests for us-east-1.
std::string signing_region(const op_ptr& c, const sigv4_claim& claim) {
  if (c->service == "iam" && claim.region == "us-east-1") return claim.region;
  return c->cfg->region;
}

namespace {

void dispatch(const op_ptr& c) {
  auto action = c->params.get("Action");
  if (!action || action->empty())
    return c->fail("MissingParameter", "The request must contain the parameter Action");
  c->action = *action;
  auto version = c->params.get("Version");
  if (!version) return c->fail("MissingParameter", "The request must contain the parameter Version");
  const bool iam = c->service == "iam";
  const std::string wanted_version = iam ? iam_version : api_version;
  if (*version != wanted_version)
    return c->fail("NoSuchVersion", "The requested version (" + version->substr(0, 32) + ") of service " +
                                        (iam ? "IAM" : "AmazonEC2") + " is not served by kumo; use " +
                                        wanted_version);
  const auto& ops = iam ? iam_operations() : operations();
  auto op = ops.find(*action);
  if (op == ops.end())
    return c->fail("InvalidAction", "The action " + action->substr(0, 64) + " is not valid for this web service.");
  if (!authorized(c)) return;
  if (const auto* known = iam ? nullptr : model_parameters(*action)) {
    for (const auto& [key, value] : c->params.all()) {
      auto top = key.substr(0, key.find('.'));
      if (top != "Action" && top != "Version" && !known->count(top))
        return c->fail("UnknownParameter", "The parameter " + top.substr(0, 64) + " is not recognized");
    }
  }
  query_error err;
  auto dry = c->params.boolean("DryRun", err);
  if (!err.code.empty()) return c->fail(err);
  if (dry.value_or(false)) {
    if (!op->second.dry_run) return c->fail("UnsupportedOperation", *action + " does not support DryRun");
    return c->fail("DryRunOperation", "Request would have succeeded, but DryRun flag is set.", 412);
  }
  if (op->second.client_token && c->params.has("ClientToken"))
    return run_idempotent(c, op->second.handler);
  c->seed = actors::random_chars(32, "0123456789abcdef");
  op->second.handler(c);
}

// One request, from bytes to reply, in an actor of its own: SigV4, the
// operation and XML rendering of one request never hold up another. The
// actor ends once its last reply came back (no behavior, nothing pending).
void serve(caf::event_based_actor* self, std::shared_ptr<gateway_shared> shared, http_parts req, std::string rid,
           reply_fn done) {
  auto c = std::make_shared<op_context>();
  c->self = self;
  c->shared = shared;
  c->cloud = &shared->cloud;
  c->cfg = &shared->cfg;
  c->request_id = rid;
  c->started = std::chrono::steady_clock::now();
  c->done = std::move(done);
  if (!is_ec2_path(req.target))
    return c->fail("InvalidAction", "no EC2 endpoint at this path; use / or /services/compute", 404);
  if (req.method != "GET" && req.method != "POST")
    return c->fail("InvalidAction", "the EC2 Query API takes GET or POST, not " + req.method, 405);
  if (is_login_request(req)) {  // the one unsigned action (see api/iam.h)
    query_error qerr;
    auto params = parameters_of(req, qerr);
    if (!params) return c->fail(qerr);
    c->params = std::move(*params);
    c->action = "KumoLogin";
    c->service = "iam";
    return login(c);
  }
  auth_error aerr;
  auto claim = parse_claim(req, aerr);
  if (!claim) return c->fail(aerr.code, aerr.message, aerr.http_status);
  query_error qerr;
  auto params = parameters_of(req, qerr);
  if (!params) return c->fail(qerr);
  c->params = std::move(*params);
  if (claim->service == "iam") c->service = "iam";
  auto parts = std::make_shared<http_parts>(std::move(req));
  // The key is looked up no older than the last write through here, so
  // a revoked key stops working for the very next request.
  self->request(shared->cloud.accounts_view, lookup_timeout, actors::find_key_atom::value, claim->access_key_id,
                c->read_floor())
      .then(
          [=](std::optional<actors::account::key_owner>& owner) {
            if (!owner)  // not an account's root key: an IAM user's?
              return authenticate_user(c, *parts, *claim, [c] { dispatch(c); });
            if (auto bad = verify(*parts, *claim, owner->secret_access_key, signing_region(c, *claim), c->service,
                                  std::time(nullptr)))
              return c->fail(bad->code, bad->message, bad->http_status);
            c->account_id = owner->account_id;
            c->principal = "arn:aws:iam::" + owner->account_id + ":root";
            dispatch(c);
          },
          [=](caf::error& e) {
            c->fail("ServiceUnavailable", "credentials could not be checked: " + self->system().render(e), 503);
          });
}

// The gateway only hands each request to an actor of its own.
caf::behavior gateway(caf::event_based_actor* self, std::shared_ptr<gateway_shared> shared) {
  return {
      [=](http_parts& req, std::string& rid, reply_fn& done) {
        self->spawn(serve, shared, std::move(req), std::move(rid), std::move(done));
      },
  };
}

}  // namespace

void op_context::respond(const xml_writer& body) const { respond(body.str()); }

// Every reply is logged once, with the request id, action and caller.
void op_context::log_reply(int status) const {
  auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  spdlog::info("rid={} {} {} account={} -> {} ({:.1f} ms)", request_id, service, action.empty() ? "-" : action,
               account_id.empty() ? "-" : account_id, status, ms);
}

void op_context::respond(const std::string& body) const {
  if (answered) return spdlog::error("rid={} {}: second answer dropped", request_id, action);
  answered = true;
  log_reply(200);
  http_reply reply{200, "text/xml;charset=UTF-8",
                   service == "iam" ? iam_response(action, request_id, body) : ec2_response(action, request_id, body)};
  if (!record_success) return done(std::move(reply));
  // The answer goes out once the response is recorded; this context may be
  // gone by then, so the continuation owns what it needs.
  record_success(body, [done = done, reply = std::move(reply)]() mutable { done(std::move(reply)); });
}

void op_context::fail(const std::string& code, const std::string& message, int status) const {
  if (answered) return spdlog::error("rid={} {}: second answer ({}) dropped", request_id, action, code);
  answered = true;
  log_reply(status);
  http_reply reply{status, "text/xml;charset=UTF-8",
                   service == "iam" ? iam_error(code, message, request_id) : ec2_error(code, message, request_id)};
  // A call refused on its input never used its ClientToken (EC2): a retry,
  // also with other parameters, runs afresh. After a server error the claim
  // stays, so a retry repeats the call with the same seed and ids.
  if (!release_claim || status >= 500) return done(std::move(reply));
  release_claim(code, [done = done, reply = std::move(reply)]() mutable { done(std::move(reply)); });
}

op_context::~op_context() {
  if (!answered && done)
    fail("InternalError", "kumo did not finish " + action + " (request " + request_id +
                              "); check the resource's state before retrying",
         500);
}

const op_table& operations() {
  static const op_table table = [] {
    op_table t;
    register_region_ops(t);
    register_keypair_ops(t);
    register_admin_ops(t);
    register_security_group_ops(t);
    register_tag_ops(t);
    register_image_ops(t);
    register_instance_ops(t);
    register_volume_ops(t);
    register_address_ops(t);
    register_snapshot_ops(t);
    register_sharing_ops(t);
    register_ldap_ops(t);
    return t;
  }();
  return table;
}

caf::actor spawn_ec2_gateway(caf::actor_system& sys, const actors::cloud_actors& cloud,
                             const ec2_config& cfg) {
  auto shared = std::make_shared<gateway_shared>();
  shared->cloud = cloud;
  shared->cfg = cfg;
  shared->token_key = paging_token_key(cfg.data_dir);
  // Half the cores (at least one) may generate keys; the rest stay for requests.
  shared->key_generators = spawn_key_generators(sys, std::thread::hardware_concurrency() / 2);
  return sys.spawn(gateway, std::move(shared));
}

void submit(const caf::actor& gateway, http_parts req, std::string request_id, reply_fn done) {
  caf::anon_send(gateway, std::move(req), std::move(request_id), std::move(done));
}

}  // namespace kumo::api
