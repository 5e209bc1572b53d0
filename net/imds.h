// Request handling of the instance metadata service as one pure function:
// the table, a request and the clock in, a response out. No sockets, no
// threads; the server around it (metadata_server in net/metadata.h) only
// parses HTTP, calls handle() and writes the response with its IP TTL.
//
// EC2 behaviour, IMDSv1 and IMDSv2:
//  - the caller is its source address: an address not in the table gets 404,
//    never another instance's data; endpoint_enabled=false gets 403;
//  - PUT /latest/api/token with X-aws-ec2-metadata-token-ttl-seconds 1..21600
//    issues a session token bound to the source address, sent with the
//    instance's hop limit as IP TTL so it does not leave the host through
//    extra hops; a PUT carrying X-Forwarded-For is refused (403);
//  - GET with X-aws-ec2-metadata-token must carry a valid token (401
//    otherwise); without one it is served unless http_tokens_required.
#pragma once

#include "net/metadata.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kumo::net {

using http_headers = std::vector<std::pair<std::string, std::string>>;

// The value of the first header called `name`, compared case-insensitively.
std::optional<std::string> header_value(const http_headers& headers, std::string_view name);

struct imds_request {
  std::string source_ip;
  std::string method;   // "GET", "PUT", ...
  std::string path;     // as sent, e.g. "/latest/meta-data/"; a query is ignored
  http_headers headers;
};

struct imds_response {
  int status = 200;
  std::string content_type;
  std::string body;
  http_headers headers;
  int ttl = 0;  // IP TTL to send the response with; 0 = the socket's default
};

// Issues and checks IMDSv2 tokens: hex(source ip "|" expiry ms) "." hex(
// HMAC-SHA256(key, that payload)). The key is the signer's only state; the
// server makes one random key at start (tokens do not survive a restart, as
// on EC2), tests pass fixed bytes.
class token_signer {
 public:
  explicit token_signer(std::string key);
  std::string issue(const std::string& source_ip, int64_t expiry_ms) const;
  // True when the signature matches, the token was issued to `source_ip`
  // and now_ms is before its expiry.
  bool valid(const std::string& token, const std::string& source_ip, int64_t now_ms) const;

 private:
  std::string key_;
};

imds_response handle(const metadata_table& table, const imds_request& request,
                     const token_signer& signer, int64_t now_ms);

}  // namespace kumo::net
