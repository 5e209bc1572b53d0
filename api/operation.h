// What an EC2 operation sees: an authenticated caller, typed-ish parameters,
// and one way to answer. Operations are registered once, by botocore name,
// in a table (see operations.cpp).
#pragma once

#include "actors/protocol/messages.h"
#include "actors/tags.h"
#include "api/ec2.h"
#include "api/query.h"
#include "api/filters.h"
#include "api/xml.h"

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>

namespace kumo::api {

// What all requests of one gateway share; each request's context holds it,
// so it lives as long as the last request still running.
struct gateway_shared {
  actors::cloud_actors cloud;
  ec2_config cfg;
  // The newest event any command through this gateway has written. Queries
  // wait until the views have it, so a client reads its own (and everyone's
  // acknowledged) writes.
  std::atomic<uint64_t> last_write{0};
  std::string token_key;       // signs NextToken values
  caf::actor key_generators;   // api/key_generators.h
};

struct op_context {
  caf::event_based_actor* self = nullptr;  // this request's own actor, for requests to aggregates
  std::shared_ptr<gateway_shared> shared;
  const actors::cloud_actors* cloud = nullptr;  // &shared->cloud
  const ec2_config* cfg = nullptr;              // &shared->cfg
  std::string action;
  std::string request_id;
  std::string account_id;
  std::string principal;  // arn:aws:iam::<account>:root, or an IAM user's ARN
  std::string service = "ec2";     // "ec2" | "iam": the API (and XML dialect) of the request
  std::string user_name;           // the IAM user who signed; empty for the account's root
  std::vector<std::string> policies;  // the IAM user's effective policy documents
  query params;
  reply_fn done;  // hands the reply to the HTTP server; called once
  std::chrono::steady_clock::time_point started;
  mutable bool answered = false;
  // Operations derive the ids of what they create from this seed. With a
  // ClientToken it is the token's (so a retry creates the same resources),
  // else random.
  std::string seed;
  // Set when the call carries a ClientToken: records a successful response
  // (durably) before the client sees it, then runs `answer`.
  std::function<void(const std::string& body, std::function<void()> answer)> record_success;
  // Set with record_success: releases the claim of a call refused on its
  // input (4xx) before the client sees the error, then runs `answer`.
  std::function<void(const std::string& error_code, std::function<void()> answer)> release_claim;

  uint64_t read_floor() const { return shared->last_write.load(); }
  void wrote(uint64_t global_seq) const {
    auto seen = shared->last_write.load();
    while (seen < global_seq && !shared->last_write.compare_exchange_weak(seen, global_seq)) {
    }
  }
  actors::request_meta meta() const { return {principal, request_id}; }

  // Exactly one answer per request: a second one is logged and dropped, and
  // a request whose operation forgot to answer gets a 500 when the context goes.
  void respond(const xml_writer& body) const;
  void respond(const std::string& body) const;  // a body recorded earlier (ClientToken replay)
  void fail(const std::string& code, const std::string& message, int status = 400) const;
  void fail(const query_error& e) const { fail(e.code, e.message); }
  void log_reply(int status) const;
  ~op_context();
};

using op_ptr = std::shared_ptr<op_context>;
using op_handler = void (*)(const op_ptr&);

// Marks an operation as supporting DryRun: the gateway answers
// DryRunOperation when DryRun=true, after authentication.
// `client_token`: the operation takes EC2's ClientToken; the gateway makes
// repeats idempotent (same token + same parameters -> same response).
struct operation {
  op_handler handler;
  bool dry_run = true;
  bool client_token = false;
};

using op_table = std::map<std::string, operation>;
const op_table& operations();

// Registration, one function per file of operations.
void register_region_ops(op_table& t);
void register_keypair_ops(op_table& t);
void register_admin_ops(op_table& t);
void register_security_group_ops(op_table& t);
void register_tag_ops(op_table& t);
void register_image_ops(op_table& t);
void register_instance_ops(op_table& t);
void register_volume_ops(op_table& t);
void register_snapshot_ops(op_table& t);
void register_sharing_ops(op_table& t);
void register_ldap_ops(op_table& t);
void register_address_ops(op_table& t);

// ---- Helpers shared by operations. Each fails the call and returns nullopt
// (or false) on bad input.

// Filter.N.* with names checked against `allowed` ("tag:*" allows tag:KEY).
std::optional<std::vector<filter>> checked_filters(const op_ptr& c, const std::set<std::string>& allowed);
// Whether `value` is selected by a Describe's id/name list (empty = all).
bool listed(const std::vector<std::string>& wanted, const std::string& value);
// Runs `then` only when the caller is the cloud's admin account; otherwise
// answers UnauthorizedOperation.
void as_admin(const op_ptr& c, std::function<void()> then);
// A required, non-empty string parameter.
std::optional<std::string> required(const op_ptr& c, const std::string& name);
// Tags from TagSpecification.N for `resource_type` ("key-pair", "security-group", ...).
std::optional<std::vector<actors::resource_tag>> tags_for(const op_ptr& c, const std::string& resource_type);
// Tag.N.Key / Tag.N.Value (CreateTags, DeleteTags). With `value_required`
// false, a missing Value means "any value" (any_value = true).
std::optional<std::vector<actors::tag_removal>> tag_params(const op_ptr& c, bool value_required);
// Checks one tag against EC2's limits; false after failing the call.
bool valid_tag(const op_ptr& c, const std::string& key, const std::string& value);

// MaxResults / NextToken with EC2's rules per action (ops_common.cpp): a
// MaxResults above the action's ceiling gives a page of the ceiling, below 5
// or with the action's id list is an error. NextToken is opaque and signed
// (HMAC, with the key kept in the data dir) over the action, the account,
// the call's other parameters and the position, so it cannot be forged or
// used with other filters, and it survives a kumod restart.
struct page {
  size_t begin = 0;
  size_t end = 0;
  std::string next_token;  // empty on the last page
};
std::optional<page> paginate(const op_ptr& c, size_t total);

// <tagSet><item><key/><value/></item>...</tagSet>
void write_tag_set(xml_writer& w, const std::vector<actors::resource_tag>& tags);
// Values of a tag filter name for a resource: "tag-key" -> keys, "tag:K" -> value of K.
std::vector<std::string> tag_filter_values(const std::string& filter_name,
                                           const std::vector<actors::resource_tag>& tags);
// "<prefix>-" + 17 hex digits derived from the call's seed: a ClientToken
// retry gets the same ids; `what` tells the ids of one call apart.
std::string derived_id(const op_ptr& c, const std::string& prefix, const std::string& what);
// The AWS timestamp format of responses: 2026-11-25T06:09:52.123Z
std::string iso_time(int64_t unix_ms);

}  // namespace kumo::api
