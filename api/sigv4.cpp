#include "api/sigv4.h"

#include "api/query.h"
#include "crypto/digest.h"


#include <algorithm>
#include <ctime>
#include <vector>

namespace kumo::api {
namespace {

constexpr int64_t max_clock_skew_seconds = 15 * 60;
constexpr int64_t max_presigned_expiry = 7 * 24 * 3600;

std::string path_of(const std::string& target) { return target.substr(0, target.find('?')); }

std::string query_of(const std::string& target) {
  auto q = target.find('?');
  return q == std::string::npos ? "" : target.substr(q + 1);
}

// The raw query's parameters, decoded (for reading X-Amz-* values).
std::map<std::string, std::string> decoded_query(const std::string& target) {
  std::map<std::string, std::string> out;
  query_error ignored;
  if (auto q = query::parse(query_of(target), ignored)) out = q->all();
  return out;
}

std::string trim_and_collapse(const std::string& v) {
  std::string out;
  bool space = false;
  for (char c : v) {
    if (c == ' ' || c == '\t') {
      space = !out.empty();
      continue;
    }
    if (space) out.push_back(' ');
    space = false;
    out.push_back(c);
  }
  return out;
}

std::optional<int64_t> parse_amz_date(const std::string& s) {
  std::tm tm{};
  if (s.size() != 16 || s[8] != 'T' || s[15] != 'Z') return std::nullopt;
  if (s.find_first_not_of("0123456789", 0) != 8) return std::nullopt;
  try {
    tm.tm_year = std::stoi(s.substr(0, 4)) - 1900;
    tm.tm_mon = std::stoi(s.substr(4, 2)) - 1;
    tm.tm_mday = std::stoi(s.substr(6, 2));
    tm.tm_hour = std::stoi(s.substr(9, 2));
    tm.tm_min = std::stoi(s.substr(11, 2));
    tm.tm_sec = std::stoi(s.substr(13, 2));
  } catch (const std::exception&) {
    return std::nullopt;
  }
  return static_cast<int64_t>(timegm(&tm));
}

// "AKID/20260101/kumo-1/ec2/aws4_request"
bool parse_credential(const std::string& cred, sigv4_claim& c) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (;;) {
    auto slash = cred.find('/', start);
    parts.push_back(cred.substr(start, slash - start));
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  if (parts.size() != 5 || parts[4] != "aws4_request" || parts[0].empty() || parts[1].size() != 8)
    return false;
  c.access_key_id = parts[0];
  c.date = parts[1];
  c.region = parts[2];
  c.service = parts[3];
  return true;
}

auth_error incomplete(const std::string& why) { return {400, "IncompleteSignature", why}; }

}  // namespace

std::string uri_encode(const std::string& s, bool keep_slash) {
  static const char digits[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size() * 3);
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/')) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(digits[c >> 4]);
      out.push_back(digits[c & 0xf]);
    }
  }
  return out;
}

std::optional<sigv4_claim> parse_claim(const http_parts& req, auth_error& err) {
  sigv4_claim c;
  if (auto it = req.headers.find("authorization"); it != req.headers.end()) {
    const std::string scheme = "AWS4-HMAC-SHA256 ";
    if (it->second.rfind(scheme, 0) != 0) {
      err = incomplete("Authorization header must use AWS4-HMAC-SHA256 (SigV4)");
      return std::nullopt;
    }
    std::map<std::string, std::string> fields;
    auto rest = it->second.substr(scheme.size());
    size_t start = 0;
    while (start < rest.size()) {
      auto comma = rest.find(',', start);
      auto part = trim_and_collapse(rest.substr(start, comma - start));
      auto eq = part.find('=');
      if (eq != std::string::npos) fields[part.substr(0, eq)] = part.substr(eq + 1);
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    if (!fields.count("Credential") || !fields.count("SignedHeaders") || !fields.count("Signature")) {
      err = incomplete("Authorization header needs Credential, SignedHeaders and Signature");
      return std::nullopt;
    }
    if (!parse_credential(fields["Credential"], c)) {
      err = incomplete("malformed Credential '" + fields["Credential"] + "'");
      return std::nullopt;
    }
    c.signed_headers = fields["SignedHeaders"];
    c.signature = fields["Signature"];
    auto date = req.headers.find("x-amz-date");
    if (date == req.headers.end()) {
      err = incomplete("the X-Amz-Date header is required");
      return std::nullopt;
    }
    c.amz_date = date->second;
  } else {
    auto q = decoded_query(req.target);
    if (!q.count("X-Amz-Algorithm") && !q.count("X-Amz-Signature")) {
      err = {401, "MissingAuthenticationToken",
             "the request is not signed: kumo needs AWS Signature Version 4"};
      return std::nullopt;
    }
    if (q["X-Amz-Algorithm"] != "AWS4-HMAC-SHA256") {
      err = incomplete("X-Amz-Algorithm must be AWS4-HMAC-SHA256");
      return std::nullopt;
    }
    for (const char* p : {"X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
                          "X-Amz-SignedHeaders", "X-Amz-Signature"})
      if (!q.count(p)) {
        err = incomplete(std::string("presigned request lacks ") + p);
        return std::nullopt;
      }
    if (!parse_credential(q["X-Amz-Credential"], c)) {
      err = incomplete("malformed X-Amz-Credential");
      return std::nullopt;
    }
    c.presigned = true;
    c.amz_date = q["X-Amz-Date"];
    c.signed_headers = q["X-Amz-SignedHeaders"];
    c.signature = q["X-Amz-Signature"];
    const auto& exp = q["X-Amz-Expires"];
    if (exp.empty() || exp.size() > 7 || exp.find_first_not_of("0123456789") != std::string::npos) {
      err = incomplete("X-Amz-Expires must be a number of seconds");
      return std::nullopt;
    }
    c.expires_seconds = std::stoll(exp);
  }
  return c;
}

std::string canonical_request(const http_parts& req, const sigv4_claim& claim) {
  std::string out = req.method + "\n";
  out += uri_encode(path_of(req.target), true) + "\n";

  std::vector<std::pair<std::string, std::string>> params;
  auto raw = query_of(req.target);
  size_t start = 0;
  while (start < raw.size()) {
    auto amp = raw.find('&', start);
    auto pair = raw.substr(start, amp == std::string::npos ? std::string::npos : amp - start);
    start = amp == std::string::npos ? raw.size() : amp + 1;
    if (pair.empty()) continue;
    auto eq = pair.find('=');
    auto k = url_decode(pair.substr(0, eq)).value_or("");
    auto v = url_decode(eq == std::string::npos ? "" : pair.substr(eq + 1)).value_or("");
    if (claim.presigned && k == "X-Amz-Signature") continue;
    params.emplace_back(uri_encode(k, false), uri_encode(v, false));
  }
  std::sort(params.begin(), params.end());
  for (size_t i = 0; i < params.size(); ++i)
    out += (i ? "&" : "") + params[i].first + "=" + params[i].second;
  out += "\n";

  size_t s = 0;
  const auto& names = claim.signed_headers;
  while (s <= names.size()) {
    auto semi = names.find(';', s);
    auto name = names.substr(s, semi == std::string::npos ? std::string::npos : semi - s);
    auto it = req.headers.find(name);
    out += name + ":" + (it == req.headers.end() ? "" : trim_and_collapse(it->second)) + "\n";
    if (semi == std::string::npos) break;
    s = semi + 1;
  }
  out += "\n" + claim.signed_headers + "\n";
  // botocore hashes the (empty) body for presigned EC2 URLs too; only S3
  // presigns with UNSIGNED-PAYLOAD.
  if (auto it = req.headers.find("x-amz-content-sha256"); it != req.headers.end()) {
    out += it->second;
  } else {
    out += crypto::sha256_hex(req.body);
  }
  return out;
}

std::string string_to_sign(const sigv4_claim& claim, const std::string& canonical) {
  return "AWS4-HMAC-SHA256\n" + claim.amz_date + "\n" + claim.date + "/" + claim.region + "/" +
         claim.service + "/aws4_request\n" + crypto::sha256_hex(canonical);
}

std::string signature(const std::string& secret, const sigv4_claim& claim,
                      const std::string& sts) {
  auto k = crypto::hmac_sha256("AWS4" + secret, claim.date);
  k = crypto::hmac_sha256(k, claim.region);
  k = crypto::hmac_sha256(k, claim.service);
  k = crypto::hmac_sha256(k, "aws4_request");
  return crypto::hmac_sha256_hex(k, sts);
}

std::optional<auth_error> verify(const http_parts& req, const sigv4_claim& claim,
                                 const std::string& secret, const std::string& expected_region,
                                 const std::string& expected_service, int64_t now_unix) {
  if (claim.region != expected_region)
    return auth_error{401, "AuthFailure",
                      "credential scope region '" + claim.region + "' is not this cloud's region '" +
                          expected_region + "'"};
  if (claim.service != expected_service)
    return auth_error{401, "AuthFailure", "credential scope service '" + claim.service +
                                              "' is not '" + expected_service + "'"};
  auto when = parse_amz_date(claim.amz_date);
  if (!when || claim.amz_date.substr(0, 8) != claim.date)
    return incomplete("X-Amz-Date '" + claim.amz_date +
                      "' is not yyyymmddThhmmssZ matching the credential scope date");
  // Every signed request must name the host it was sent to and its date.
  auto names = ";" + claim.signed_headers + ";";
  if (names.find(";host;") == std::string::npos)
    return incomplete("SignedHeaders must include host");
  if (claim.presigned) {
    if (claim.expires_seconds < 1 || claim.expires_seconds > max_presigned_expiry)
      return incomplete("X-Amz-Expires must be between 1 and 604800 seconds");
    if (now_unix > *when + claim.expires_seconds)
      return auth_error{400, "RequestExpired", "the presigned request expired at " +
                                                   std::to_string(*when + claim.expires_seconds) +
                                                   " (unix); sign a new one"};
    if (*when - now_unix > max_clock_skew_seconds)
      return auth_error{400, "RequestExpired", "the request is dated in the future"};
  } else {
    if (names.find(";x-amz-date;") == std::string::npos)
      return incomplete("SignedHeaders must include x-amz-date");
    if (std::llabs(now_unix - *when) > max_clock_skew_seconds)
      return auth_error{400, "RequestExpired",
                        "request timestamp " + claim.amz_date +
                            " is more than 15 minutes from the server's time; check the client's clock"};
  }
  if (auto it = req.headers.find("x-amz-content-sha256"); it != req.headers.end()) {
    // The body carries the parameters: it must be covered by the signature
    // (no UNSIGNED-PAYLOAD here).
    if (it->second != crypto::sha256_hex(req.body))
      return auth_error{403, "SignatureDoesNotMatch",
                        "X-Amz-Content-SHA256 does not match the request body"};
  }
  auto expected = signature(secret, claim, string_to_sign(claim, canonical_request(req, claim)));
  if (!crypto::constant_time_equal(expected, claim.signature))
    return auth_error{403, "SignatureDoesNotMatch",
                      "the request signature we calculated does not match the signature you "
                      "provided; check your secret access key and signing method"};
  return std::nullopt;
}

}  // namespace kumo::api
