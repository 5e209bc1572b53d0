// AWS Signature Version 4 verification, as botocore signs: the Authorization
// header form and the presigned query-string form. Pure functions over a
// request's parts, so every rule is unit-tested without a server.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace kumo::api {

struct http_parts {
  std::string method;                         // "POST"
  std::string target;                         // raw path + "?" + raw query, as received
  std::map<std::string, std::string> headers;  // lower-case names, values as received
  std::string body;
};

// An AWS-shaped refusal: `code` for the client, HTTP status per EC2.
struct auth_error {
  int http_status;
  std::string code;
  std::string message;
};

// What the client claims; parsed before the secret is looked up.
struct sigv4_claim {
  std::string access_key_id;
  std::string date;     // yyyymmdd from the credential scope
  std::string region;
  std::string service;
  std::string amz_date;  // yyyymmddThhmmssZ
  std::string signed_headers;  // "content-type;host;x-amz-date"
  std::string signature;       // lower-case hex
  bool presigned = false;
  int64_t expires_seconds = 0;  // presigned only
};

// Parses the Authorization header or the X-Amz-* query parameters. A request
// with neither is refused: nothing unsigned is ever served.
std::optional<sigv4_claim> parse_claim(const http_parts& req, auth_error& err);

// Checks scope (region, service "ec2"), clock skew (±15 min, else
// RequestExpired; presigned: not yet expired) and the signature itself, in
// constant time. `now_unix` is the server's clock.
std::optional<auth_error> verify(const http_parts& req, const sigv4_claim& claim,
                                 const std::string& secret_access_key,
                                 const std::string& expected_region,
                                 const std::string& expected_service, int64_t now_unix);

// Building blocks, exposed for tests and for the signing load generator.
std::string uri_encode(const std::string& s, bool keep_slash);
std::string canonical_request(const http_parts& req, const sigv4_claim& claim);
std::string string_to_sign(const sigv4_claim& claim, const std::string& canonical);
std::string signature(const std::string& secret, const sigv4_claim& claim,
                      const std::string& string_to_sign);

}  // namespace kumo::api
