// kumod's HTTP endpoint (Boost.Beast): HTTP/1.1 keep-alive, a request size
// limit, a connection limit, `Expect: 100-continue`, per-connection timeouts
// and graceful shutdown. GET /healthz is the
// unsigned readiness probe; every other request goes to `handler` (the EC2
// gateway), whose reply may come back on any thread.
#pragma once

#include "api/ec2.h"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace kumo::api {

using request_handler = std::function<void(http_parts, std::string request_id, reply_fn)>;

struct http_config {
  std::string address = "127.0.0.1";
  uint16_t port = 8773;  // Eucalyptus's port; 0 picks a free one
  std::string region = "kumo-1";
  size_t max_request_bytes = 1 << 20;
  // Open connections at most; one more is answered 503 RequestLimitExceeded
  // and closed (never a crash for want of file descriptors).
  unsigned max_connections = 1024;
  std::chrono::seconds idle_timeout{60};
  request_handler handler;
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
