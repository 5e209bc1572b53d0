// kumod's HTTP endpoint (Boost.Beast): HTTP/1.1 keep-alive, a request size
// limit, per-connection timeouts and graceful shutdown. The EC2 Query API is
// mounted here by the API issue; today it serves the readiness probe
// GET /healthz and answers every other request with an AWS-shaped error.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace kumo::api {

struct http_config {
  std::string address = "127.0.0.1";
  uint16_t port = 8773;  // Eucalyptus's port; 0 picks a free one
  std::string region = "kumo-1";
  size_t max_request_bytes = 1 << 20;
  std::chrono::seconds idle_timeout{60};
};

class http_server {
 public:
  // Binds and starts serving on background threads; on failure returns null
  // and says why in `error`.
  static std::unique_ptr<http_server> start(const http_config& cfg, std::string& error);
  virtual ~http_server() = default;
  virtual uint16_t port() const = 0;
  // Stops accepting, lets in-flight requests finish, joins the threads.
  virtual void stop() = 0;
};

}  // namespace kumo::api
