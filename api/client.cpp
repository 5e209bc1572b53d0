#include "api/client.h"

#include "api/sigv4.h"

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

namespace kumo::api {
namespace {

std::string trim(const std::string& s) {
  auto b = s.find_first_not_of(" \t\r");
  auto e = s.find_last_not_of(" \t\r");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

std::string amz_date_now() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[20];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

std::string unescape(std::string s) {
  static const std::pair<const char*, const char*> entities[] = {
      {"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""}, {"&apos;", "'"}, {"&amp;", "&"}};
  for (const auto& [from, to] : entities)
    for (size_t p = 0; (p = s.find(from, p)) != std::string::npos; p += std::strlen(to))
      s.replace(p, std::strlen(from), to);
  return s;
}

}  // namespace

std::optional<endpoint> parse_endpoint(const std::string& url, std::string& why) {
  const std::string scheme = "http://";
  if (url.rfind(scheme, 0) != 0) {
    why = "endpoint must start with http:// (got '" + url + "')";
    return std::nullopt;
  }
  auto rest = url.substr(scheme.size());
  if (!rest.empty() && rest.back() == '/') rest.pop_back();
  auto colon = rest.rfind(':');
  endpoint ep;
  ep.host = rest.substr(0, colon);
  if (colon != std::string::npos) {
    auto port = rest.substr(colon + 1);
    if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos) {
      why = "bad port in endpoint '" + url + "'";
      return std::nullopt;
    }
    ep.port = static_cast<uint16_t>(std::stoul(port));
  }
  in_addr addr{};
  if (inet_pton(AF_INET, ep.host.c_str(), &addr) != 1) {
    why = "endpoint host must be an IPv4 address (got '" + ep.host + "')";
    return std::nullopt;
  }
  return ep;
}

std::optional<credentials> read_credentials(const std::string& path, const std::string& profile,
                                            std::string& why) {
  std::ifstream in(path);
  if (!in) {
    why = "cannot read credentials file " + path;
    return std::nullopt;
  }
  credentials c;
  bool in_profile = false;
  for (std::string line; std::getline(in, line);) {
    line = trim(line);
    if (line.empty() || line[0] == '#') continue;
    if (line.front() == '[') {
      in_profile = line == "[" + profile + "]";
      continue;
    }
    auto eq = line.find('=');
    if (!in_profile || eq == std::string::npos) continue;
    auto key = trim(line.substr(0, eq)), value = trim(line.substr(eq + 1));
    if (key == "aws_access_key_id") c.access_key_id = value;
    if (key == "aws_secret_access_key") c.secret_access_key = value;
  }
  if (c.access_key_id.empty() || c.secret_access_key.empty()) {
    why = "profile [" + profile + "] in " + path + " lacks aws_access_key_id/aws_secret_access_key";
    return std::nullopt;
  }
  return c;
}

namespace {
// Generous: kumoctl's longest calls (an LDAP sync) take seconds.
constexpr long answer_timeout_seconds = 120;
}  // namespace

signed_client::signed_client(endpoint ep, credentials creds, std::string region)
    : ep_(std::move(ep)), creds_(std::move(creds)), region_(std::move(region)) {}

signed_client::~signed_client() {
  if (fd_ >= 0) close(fd_);
}

bool signed_client::connect_once(std::string& why) {
  if (fd_ >= 0) return true;
  fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(ep_.port);
  inet_pton(AF_INET, ep_.host.c_str(), &addr.sin_addr);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    why = "cannot connect to " + ep_.host + ":" + std::to_string(ep_.port) + ": " + std::strerror(errno);
    close(fd_);
    fd_ = -1;
    return false;
  }
  int one = 1;
  setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  // A server that never answers fails the call instead of hanging the caller.
  timeval limit{answer_timeout_seconds, 0};
  setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
  return true;
}

std::optional<http_reply> signed_client::call(const std::map<std::string, std::string>& params,
                                              std::string& why) {
  http_parts req;
  req.method = "POST";
  req.target = "/";
  for (const auto& [k, v] : params) req.body += (req.body.empty() ? "" : "&") + uri_encode(k, false) + "=" + uri_encode(v, false);
  if (!params.count("Version")) req.body += "&Version=2016-11-15";
  sigv4_claim claim;
  claim.access_key_id = creds_.access_key_id;
  claim.amz_date = amz_date_now();
  claim.date = claim.amz_date.substr(0, 8);
  claim.region = region_;
  claim.service = "ec2";
  claim.signed_headers = "content-type;host;x-amz-date";
  req.headers = {{"host", ep_.host + ":" + std::to_string(ep_.port)},
                 {"content-type", "application/x-www-form-urlencoded; charset=utf-8"},
                 {"x-amz-date", claim.amz_date}};
  auto sig = signature(creds_.secret_access_key, claim, string_to_sign(claim, canonical_request(req, claim)));
  // No access key: an unsigned request (only KumoLogin accepts one).
  std::string authorization = creds_.access_key_id.empty()
                                  ? ""
                                  : "\r\nAuthorization: AWS4-HMAC-SHA256 Credential=" + creds_.access_key_id + "/" +
                                        claim.date + "/" + region_ + "/ec2/aws4_request, SignedHeaders=" +
                                        claim.signed_headers + ", Signature=" + sig;
  std::string wire = "POST / HTTP/1.1\r\nHost: " + req.headers["host"] +
                     "\r\nContent-Type: " + req.headers["content-type"] +
                     "\r\nX-Amz-Date: " + claim.amz_date + authorization +
                     "\r\nContent-Length: " + std::to_string(req.body.size()) + "\r\n\r\n" + req.body;
  for (int attempt = 0; attempt < 2; ++attempt) {  // one retry: a kept-alive socket may have closed
    if (!connect_once(why)) return std::nullopt;
    if (::send(fd_, wire.data(), wire.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(wire.size())) {
      close(fd_);
      fd_ = -1;
      continue;
    }
    std::string in;
    char buf[16384];
    size_t header_end = std::string::npos, length = 0;
    bool failed = false;
    while (header_end == std::string::npos || in.size() < header_end + 4 + length) {
      auto n = ::recv(fd_, buf, sizeof buf, 0);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        close(fd_);
        fd_ = -1;
        why = "no answer from " + ep_.host + ":" + std::to_string(ep_.port) + " within " +
              std::to_string(answer_timeout_seconds) + " s";
        return std::nullopt;
      }
      if (n <= 0) {
        failed = true;
        break;
      }
      in.append(buf, static_cast<size_t>(n));
      if (header_end == std::string::npos && (header_end = in.find("\r\n\r\n")) != std::string::npos) {
        auto cl = in.find("Content-Length: ");
        if (cl == std::string::npos || cl > header_end) cl = in.find("content-length: ");
        length = cl < header_end ? std::stoul(in.substr(cl + 16)) : 0;
      }
    }
    if (failed) {
      close(fd_);
      fd_ = -1;
      if (in.empty()) continue;
      why = "connection closed mid-response";
      return std::nullopt;
    }
    http_reply r;
    r.status = std::stoi(in.substr(9, 3));
    r.body = in.substr(header_end + 4, length);
    return r;
  }
  why = "the server closed the connection";
  return std::nullopt;
}

std::vector<std::string> xml_texts(const std::string& xml, const std::string& tag) {
  std::vector<std::string> out;
  const std::string open = "<" + tag + ">", close = "</" + tag + ">";
  for (size_t p = 0; (p = xml.find(open, p)) != std::string::npos;) {
    auto start = p + open.size();
    auto end = xml.find(close, start);
    if (end == std::string::npos) break;
    out.push_back(unescape(xml.substr(start, end - start)));
    p = end + close.size();
  }
  return out;
}

}  // namespace kumo::api
