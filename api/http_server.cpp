#include "api/http_server.h"

#include "api/request_id.h"
#include "api/xml.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <spdlog/spdlog.h>

#include <atomic>
#include <thread>
#include <vector>

namespace kumo::api {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

constexpr int io_threads = 2;

http::response<http::string_body> make_response(unsigned version, bool keep_alive, int status,
                                                const std::string& content_type,
                                                std::string body, const std::string& rid) {
  http::response<http::string_body> res{static_cast<http::status>(status), version};
  res.keep_alive(keep_alive);
  res.set(http::field::server, "kumo");
  res.set(http::field::content_type, content_type);
  res.set("x-amzn-RequestId", rid);
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

http_parts parts_of(http::request<http::string_body>& req) {
  http_parts p;
  p.method = std::string(req.method_string());
  p.target = std::string(req.target());
  for (const auto& h : req) {
    std::string name(h.name_string());
    for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    auto& v = p.headers[name];
    v = v.empty() ? std::string(h.value()) : v + "," + std::string(h.value());
  }
  p.body = std::move(req.body());
  return p;
}

class session : public std::enable_shared_from_this<session> {
 public:
  // `connections` counts open sessions; this one leaves it when it goes.
  session(tcp::socket socket, const http_config& cfg, std::atomic<int>& in_flight, std::atomic<unsigned>& connections)
      : stream_(std::move(socket)), cfg_(cfg), in_flight_(in_flight), connections_(connections) {
    ++connections_;
  }
  ~session() { --connections_; }

  void run() {
    if (connections_ <= cfg_.max_connections) return read();
    auto rid = new_request_id();
    spdlog::warn("rid={} http: {} connections are open (--max-connections); refused one", rid,
                 connections_.load());
    write(make_response(11, false, 503, "text/xml;charset=UTF-8",
                        ec2_error("RequestLimitExceeded",
                                  "kumod serves at most " + std::to_string(cfg_.max_connections) +
                                      " connections at once; retry with backoff",
                                  rid),
                        rid));
  }

 private:
  void read() {
    parser_.emplace();
    parser_->body_limit(cfg_.max_request_bytes);
    parser_->header_limit(16 * 1024);
    stream_.expires_after(cfg_.idle_timeout);
    http::async_read_header(stream_, buffer_, *parser_,
                            beast::bind_front_handler(&session::on_header, shared_from_this()));
  }

  // A client that sent `Expect: 100-continue` waits for our go before it
  // sends the body (the aws CLI and curl do for larger bodies).
  void on_header(beast::error_code ec, size_t) {
    if (ec) return on_read(ec, 0);
    auto read_body = [self = shared_from_this()] {
      http::async_read(self->stream_, self->buffer_, *self->parser_,
                       beast::bind_front_handler(&session::on_read, self));
    };
    if (!beast::iequals(parser_->get()[http::field::expect], "100-continue")) return read_body();
    auto go = std::make_shared<http::response<http::empty_body>>(http::status::continue_, 11);
    http::async_write(stream_, *go, [self = shared_from_this(), go, read_body](beast::error_code ec, size_t) {
      if (ec) return self->close();
      read_body();
    });
  }

  void on_read(beast::error_code ec, size_t) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout) return close();
    auto rid = new_request_id();
    if (ec == http::error::body_limit || ec == http::error::header_limit) {
      spdlog::warn("rid={} http: request too large ({})", rid, ec.message());
      return write(make_response(11, false, 413, "text/xml;charset=UTF-8",
                                 ec2_error("RequestEntityTooLarge",
                                           "request exceeds " +
                                               std::to_string(cfg_.max_request_bytes) + " bytes",
                                           rid),
                                 rid));
    }
    if (ec) {
      // Malformed HTTP: say so once, then drop the connection.
      spdlog::warn("rid={} http: bad request ({})", rid, ec.message());
      return write(make_response(11, false, 400, "text/xml;charset=UTF-8",
                                 ec2_error("MalformedHTTPRequest", ec.message(), rid), rid));
    }
    auto req = parser_->release();
    auto version = req.version();
    bool keep_alive = req.keep_alive();
    if (req.target() == "/healthz" && req.method() == http::verb::get)
      return write(make_response(version, keep_alive, 200, "application/json",
                                 "{\"status\":\"ok\",\"region\":\"" + cfg_.region + "\"}", rid));
    // The handler answers from an actor thread; the write goes back onto this
    // connection's strand. The request counts as in flight until its answer
    // is written, so a graceful stop waits for it.
    ++in_flight_;
    std::shared_ptr<void> pending(nullptr, [&count = in_flight_](void*) { --count; });
    cfg_.handler(parts_of(req), rid,
                 [self = shared_from_this(), version, keep_alive, rid, pending](http_reply r) {
                   asio::post(self->stream_.get_executor(), [self, version, keep_alive, rid, pending,
                                                             r = std::move(r)]() mutable {
                     self->write(make_response(version, keep_alive, r.status, r.content_type,
                                               std::move(r.body), rid),
                                 pending);
                   });
                 });
  }

  void write(http::response<http::string_body> res, std::shared_ptr<void> pending = nullptr) {
    auto sp = std::make_shared<http::response<http::string_body>>(std::move(res));
    stream_.expires_after(cfg_.idle_timeout);
    http::async_write(stream_, *sp,
                      [self = shared_from_this(), sp, pending](beast::error_code ec, size_t) {
                        if (ec || !sp->keep_alive()) return self->close();
                        self->read();
                      });
  }

  // A lingering close: stop sending, then read and discard what the client is
  // still sending (say, the rest of a body we refused) for a few seconds.
  // Closing with unread input would reset the connection and the client
  // would never see our answer.
  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.expires_after(std::chrono::seconds(5));
    drain();
  }

  void drain() {
    stream_.async_read_some(asio::buffer(discard_),
                            [self = shared_from_this()](beast::error_code ec, size_t) {
                              if (!ec) self->drain();
                            });
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::array<char, 16384> discard_;
  std::optional<http::request_parser<http::string_body>> parser_;
  const http_config& cfg_;
  std::atomic<int>& in_flight_;
  std::atomic<unsigned>& connections_;
};

class beast_server final : public http_server {
 public:
  explicit beast_server(const http_config& cfg) : cfg_(cfg), acceptor_(ioc_) {}

  bool bind(std::string& error) {
    beast::error_code ec;
    auto addr = asio::ip::make_address(cfg_.address, ec);
    if (ec) {
      error = "listen address '" + cfg_.address + "' is not an IP address";
      return false;
    }
    tcp::endpoint ep{addr, cfg_.port};
    acceptor_.open(ep.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(ep, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      error = "cannot listen on " + cfg_.address + ":" + std::to_string(cfg_.port) + ": " +
              ec.message();
      return false;
    }
    port_ = acceptor_.local_endpoint().port();
    accept();
    for (int i = 0; i < io_threads; ++i) threads_.emplace_back([this] { ioc_.run(); });
    return true;
  }

  uint16_t port() const override { return port_; }

  void stop() override {
    if (stopped_) return;
    stopped_ = true;
    asio::post(ioc_, [this] {
      beast::error_code ignored;
      acceptor_.close(ignored);
    });
    // Answer what is in flight (bounded), then cut idle keep-alive connections.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (in_flight_ > 0 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    if (in_flight_ > 0) spdlog::warn("http: stopping with {} requests unanswered", in_flight_.load());
    ioc_.stop();
    for (auto& t : threads_) t.join();
  }

  ~beast_server() override { stop(); }

 private:
  void accept() {
    acceptor_.async_accept(asio::make_strand(ioc_), [this](beast::error_code ec, tcp::socket s) {
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;  // stop()
      if (ec) {
        // Out of file descriptors (or similar): keep the listener alive and
        // try again shortly instead of never accepting again.
        spdlog::warn("http: accept failed ({}); retrying", ec.message());
        auto timer = std::make_shared<asio::steady_timer>(ioc_, std::chrono::milliseconds(100));
        timer->async_wait([this, timer](beast::error_code) { accept(); });
        return;
      }
      std::make_shared<session>(std::move(s), cfg_, in_flight_, connections_)->run();
      accept();
    });
  }

  http_config cfg_;
  std::atomic<int> in_flight_{0};
  std::atomic<unsigned> connections_{0};
  asio::io_context ioc_{io_threads};
  tcp::acceptor acceptor_;
  std::vector<std::thread> threads_;
  uint16_t port_ = 0;
  bool stopped_ = false;
};

}  // namespace

std::unique_ptr<http_server> http_server::start(const http_config& cfg, std::string& error) {
  auto s = std::make_unique<beast_server>(cfg);
  if (!s->bind(error)) return nullptr;
  return s;
}

}  // namespace kumo::api
