#include "net/imds.h"

#include "crypto/digest.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <ctime>
#include <map>

namespace kumo::net {
namespace {

constexpr std::string_view token_path = "/latest/api/token";
constexpr std::string_view ttl_header = "X-aws-ec2-metadata-token-ttl-seconds";
constexpr std::string_view token_header = "X-aws-ec2-metadata-token";
constexpr int64_t max_token_ttl_s = 21600;

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// A whole decimal integer (no sign, no spaces), or nullopt.
std::optional<int64_t> parse_int(std::string_view text) {
  int64_t value = 0;
  if (text.empty() || text.front() == '-' || text.front() == '+') return std::nullopt;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::string iso8601_utc(int64_t ms) {
  std::time_t seconds = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

imds_response text(int status, std::string body) {
  imds_response r;
  r.status = status;
  r.content_type = "text/plain";
  r.body = std::move(body);
  return r;
}

std::string joined(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) {
    if (!out.empty()) out += '\n';
    out += l;
  }
  return out;
}

std::string identity_document(const instance_metadata& m) {
  nlohmann::ordered_json doc = {
      {"accountId", m.account_id},
      {"architecture", "x86_64"},
      {"availabilityZone", m.availability_zone},
      {"billingProducts", nullptr},
      {"devpayProductCodes", nullptr},
      {"marketplaceProductCodes", nullptr},
      {"imageId", m.image_id},
      {"instanceId", m.instance_id},
      {"instanceType", m.instance_type},
      {"kernelId", nullptr},
      {"pendingTime", iso8601_utc(m.launch_ms)},
      {"privateIp", m.private_ip},
      {"ramdiskId", nullptr},
      {"region", m.region},
      {"version", "2017-09-30"},
  };
  return doc.dump(2);
}

// "203.0.113.25" under the domain of "ip-10-16-3-10.kumo.internal" ->
// "ec2-203-0-113-25.kumo.internal".
std::string public_hostname(const instance_metadata& m) {
  std::string name = "ec2-" + m.public_ip;
  std::replace(name.begin(), name.end(), '.', '-');
  auto dot = m.hostname.find('.');
  return dot == std::string::npos ? name : name + m.hostname.substr(dot);
}

// The tree one instance sees: directories (key without trailing slash,
// relative to "/") list their entries, leaves hold their values.
struct tree {
  std::map<std::string, std::vector<std::string>> dirs;
  std::map<std::string, std::string> leaves;
};

tree tree_of(const instance_metadata& m) {
  tree t;
  const std::string md = "latest/meta-data/";
  auto leaf = [&](const std::string& name, std::string value) {
    t.leaves[md + name] = std::move(value);
  };

  std::vector<std::string> entries = {"ami-id", "ami-launch-index", "block-device-mapping/",
                                      "hostname", "instance-id", "instance-type",
                                      "local-hostname", "local-ipv4", "mac", "placement/"};
  leaf("ami-id", m.image_id);
  leaf("ami-launch-index", "0");
  leaf("hostname", m.hostname);
  leaf("instance-id", m.instance_id);
  leaf("instance-type", m.instance_type);
  leaf("local-hostname", m.hostname);
  leaf("local-ipv4", m.private_ip);
  leaf("mac", m.mac);

  std::vector<std::string> devices;
  for (const auto& [name, device] : m.block_devices) {
    devices.push_back(name);
    leaf("block-device-mapping/" + name, device);
  }
  t.dirs[md + "block-device-mapping"] = devices;

  t.dirs[md + "placement"] = {"availability-zone", "region"};
  leaf("placement/availability-zone", m.availability_zone);
  leaf("placement/region", m.region);

  if (!m.public_ip.empty()) {
    entries.push_back("public-hostname");
    entries.push_back("public-ipv4");
    leaf("public-hostname", public_hostname(m));
    leaf("public-ipv4", m.public_ip);
  }
  if (!m.key_name.empty()) {
    entries.push_back("public-keys/");
    t.dirs[md + "public-keys"] = {"0=" + m.key_name};
    t.dirs[md + "public-keys/0"] = {"openssh-key"};
    leaf("public-keys/0/openssh-key", m.public_key);
  }
  entries.push_back("reservation-id");
  entries.push_back("security-groups");
  leaf("reservation-id", m.reservation_id);
  leaf("security-groups", joined(m.security_groups));
  t.dirs["latest/meta-data"] = entries;

  t.dirs["latest/dynamic"] = {"instance-identity/"};
  t.dirs["latest/dynamic/instance-identity"] = {"document"};
  t.leaves["latest/dynamic/instance-identity/document"] = identity_document(m);

  std::vector<std::string> latest = {"dynamic", "meta-data"};
  if (!m.user_data.empty()) {
    latest.push_back("user-data");
    t.leaves["latest/user-data"] = m.user_data;
  }
  t.dirs["latest"] = latest;
  t.dirs[""] = {"latest"};
  return t;
}

imds_response serve(const instance_metadata& m, std::string path) {
  if (auto q = path.find('?'); q != std::string::npos) path.resize(q);
  if (path.empty() || path.front() != '/') return text(404, "Not Found");
  path.erase(0, 1);
  const bool slash = !path.empty() && path.back() == '/';
  if (slash) path.pop_back();

  const tree t = tree_of(m);
  if (auto d = t.dirs.find(path); d != t.dirs.end()) return text(200, joined(d->second));
  if (auto l = t.leaves.find(path); !slash && l != t.leaves.end()) {
    if (path == "latest/user-data") {
      imds_response r = text(200, l->second);
      r.content_type = "application/octet-stream";
      return r;
    }
    return text(200, l->second);
  }
  return text(404, "Not Found");
}

imds_response issue_token(const instance_metadata& m, const imds_request& request,
                          const token_signer& signer, int64_t now_ms) {
  if (header_value(request.headers, "X-Forwarded-For")) {
    return text(403, "Forbidden: token requests must not carry X-Forwarded-For");
  }
  auto ttl_text = header_value(request.headers, ttl_header);
  if (!ttl_text) return text(400, "Bad Request: missing " + std::string(ttl_header));
  auto ttl = parse_int(*ttl_text);
  if (!ttl || *ttl < 1 || *ttl > max_token_ttl_s) {
    return text(400, "Bad Request: " + std::string(ttl_header) + " must be 1.." +
                         std::to_string(max_token_ttl_s));
  }
  imds_response r = text(200, signer.issue(request.source_ip, now_ms + *ttl * 1000));
  r.headers.emplace_back(ttl_header, std::to_string(*ttl));
  r.ttl = m.hop_limit;
  return r;
}

}  // namespace

std::optional<std::string> header_value(const http_headers& headers, std::string_view name) {
  for (const auto& [key, value] : headers) {
    if (iequals(key, name)) return value;
  }
  return std::nullopt;
}

token_signer::token_signer(std::string key) : key_(std::move(key)) {}

std::string token_signer::issue(const std::string& source_ip, int64_t expiry_ms) const {
  const std::string payload = source_ip + "|" + std::to_string(expiry_ms);
  return crypto::to_hex(payload) + "." + crypto::hmac_sha256_hex(key_, payload);
}

bool token_signer::valid(const std::string& token, const std::string& source_ip,
                         int64_t now_ms) const {
  auto dot = token.find('.');
  if (dot == std::string::npos) return false;
  auto payload = crypto::from_hex(std::string_view(token).substr(0, dot));
  auto signature = crypto::from_hex(std::string_view(token).substr(dot + 1));
  if (!payload || !signature) return false;
  if (!crypto::constant_time_equal(*signature, crypto::hmac_sha256(key_, *payload))) return false;
  auto bar = payload->rfind('|');
  if (bar == std::string::npos) return false;
  auto expiry = parse_int(std::string_view(*payload).substr(bar + 1));
  return expiry && payload->substr(0, bar) == source_ip && now_ms < *expiry;
}

imds_response handle(const metadata_table& table, const imds_request& request,
                     const token_signer& signer, int64_t now_ms) {
  auto it = table.find(request.source_ip);
  if (it == table.end()) return text(404, "no instance at " + request.source_ip);
  const instance_metadata& m = it->second;
  if (!m.endpoint_enabled) return text(403, "Forbidden: the metadata endpoint is disabled");

  std::string_view path = request.path;
  path = path.substr(0, path.find('?'));
  if (request.method == "PUT" && path == token_path) {
    return issue_token(m, request, signer, now_ms);
  }
  if (request.method != "GET" || path == token_path) {
    imds_response r = text(405, "Method Not Allowed");
    r.headers.emplace_back("Allow", path == token_path ? "PUT" : "GET");
    return r;
  }
  if (auto token = header_value(request.headers, token_header)) {
    if (!signer.valid(*token, request.source_ip, now_ms)) return text(401, "Unauthorized");
  } else if (m.http_tokens_required) {
    return text(401, "Unauthorized");
  }
  return serve(m, request.path);
}

}  // namespace kumo::net
