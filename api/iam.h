// IAM on the EC2 endpoint: requests signed for service "iam" (Version
// 2010-05-08) are answered from their own operation table in IAM's XML; and
// every request signed by an IAM user's key is checked against that user's
// effective policies before its operation runs.
#pragma once

#include "api/operation.h"

#include <string>
#include <string_view>

namespace kumo::api {

constexpr const char* iam_version = "2010-05-08";

// <{Action}Response xmlns=...><{Action}Result>{body}</...><ResponseMetadata><RequestId/>...
std::string iam_response(std::string_view action, std::string_view request_id, std::string_view body);
// <ErrorResponse><Error><Type>Sender</Type><Code/><Message/></Error><RequestId/></ErrorResponse>
std::string iam_error(std::string_view code, std::string_view message, std::string_view request_id);

const op_table& iam_operations();
void register_iam_ops(op_table& t);

// Whether the caller may run c->action: the account's root always may; an
// IAM user when its policies allow "<service>:<Action>" on the request's
// resources (and nothing denies it). Fails the call (UnauthorizedOperation /
// AccessDenied) and returns false otherwise.
bool authorized(const op_ptr& c);
// The ARNs a request acts on, from its parameters ("*" when none are named).
std::vector<std::string> request_resources(const std::string& service, const std::string& region,
                                           const std::string& account_id, const query& params);

// Checks an IAM user's access key (active, not expired, session token) and
// the signature, fills c->account_id/principal/user_name/policies and runs
// `then`; otherwise fails the call with AuthFailure.
// The region a request must be signed for: this cloud's, or us-east-1 for IAM.
std::string signing_region(const op_ptr& c, const sigv4_claim& claim);
void authenticate_user(const op_ptr& c, const http_parts& req, const sigv4_claim& claim,
                       std::function<void()> then);

// KumoLogin: the one unsigned action. Proves an LDAP password (simple bind
// as the user's DN) and answers temporary credentials.
bool is_login_request(const http_parts& req);
void login(const op_ptr& c);

}  // namespace kumo::api
