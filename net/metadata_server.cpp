// The metadata service's HTTP server: Boost.Beast around the pure handle()
// of net/imds.h. One io thread; the caller is the TCP peer address; the
// table is swapped whole under a mutex; a token response goes out with the
// instance's hop limit as IP TTL. Guests are untrusted: requests are small
// (header and body limits), idle connections are cut, and open connections
// are capped in all and per source address.
#include "net/imds.h"
#include "net/metadata.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <netinet/in.h>
#include <openssl/rand.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <array>
#include <chrono>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <thread>

namespace kumo::net {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

constexpr size_t header_limit = 8 * 1024;  // EC2's SDKs send a few hundred bytes
constexpr size_t body_limit = 1024;        // no IMDS request has a body
constexpr auto idle_timeout = std::chrono::seconds(10);
constexpr int max_connections = 1024;
constexpr int max_connections_per_source = 16;

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class session;

// What each connection shares with the server; outlives the io_context so a
// session destroyed with it can still count itself out.
struct shared_state {
  explicit shared_state(std::string key) : signer(std::move(key)) {}
  token_signer signer;
  std::mutex mutex;
  std::shared_ptr<const metadata_table> table = std::make_shared<metadata_table>();
  // Touched only on the io thread (and after it has been joined).
  int connections = 0;
  std::map<std::string, int> per_source;
  std::set<session*> sessions;

  std::shared_ptr<const metadata_table> current() {
    std::lock_guard lock(mutex);
    return table;
  }
};

class session : public std::enable_shared_from_this<session> {
 public:
  session(tcp::socket socket, std::string source_ip, shared_state& state)
      : stream_(std::move(socket)), state_(state), source_ip_(std::move(source_ip)) {
    ++state_.connections;
    ++state_.per_source[source_ip_];
    state_.sessions.insert(this);
  }
  ~session() {
    state_.sessions.erase(this);
    --state_.connections;
    if (--state_.per_source[source_ip_] == 0) state_.per_source.erase(source_ip_);
  }

  void run() { read(); }

  // stop(): the io thread is gone, cut the connection now.
  void cut() {
    beast::error_code ignored;
    stream_.socket().close(ignored);
  }

 private:
  void read() {
    parser_.emplace();
    parser_->header_limit(header_limit);
    parser_->body_limit(body_limit);
    stream_.expires_after(idle_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&session::on_read, shared_from_this()));
  }

  void on_read(beast::error_code ec, size_t) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == asio::error::operation_aborted)
      return close();
    if (ec == http::error::header_limit || ec == http::error::body_limit) {
      spdlog::warn("imds: request from {} too large ({})", source_ip_, ec.message());
      return write(plain(11, false, http::status::payload_too_large, "Request Too Large"), 0);
    }
    if (ec) {
      spdlog::debug("imds: bad request from {} ({})", source_ip_, ec.message());
      return write(plain(11, false, http::status::bad_request, "Bad Request"), 0);
    }
    auto req = parser_->release();
    imds_request request{source_ip_, std::string(req.method_string()), std::string(req.target()),
                         {}};
    for (const auto& h : req) request.headers.emplace_back(h.name_string(), h.value());
    imds_response r = handle(*state_.current(), request, state_.signer, now_ms());

    http::response<http::string_body> res{static_cast<http::status>(r.status), req.version()};
    res.keep_alive(req.keep_alive());
    res.set(http::field::server, "EC2ws");
    if (!r.content_type.empty()) res.set(http::field::content_type, r.content_type);
    for (const auto& [name, value] : r.headers) res.set(name, value);
    res.body() = std::move(r.body);
    res.prepare_payload();
    write(std::move(res), r.ttl);
  }

  static http::response<http::string_body> plain(unsigned version, bool keep_alive,
                                                 http::status status, std::string body) {
    http::response<http::string_body> res{status, version};
    res.keep_alive(keep_alive);
    res.set(http::field::server, "EC2ws");
    res.set(http::field::content_type, "text/plain");
    res.body() = std::move(body);
    res.prepare_payload();
    return res;
  }

  // `ttl` > 0: the response's packets carry that IP TTL (the hop limit).
  // The default comes back only with the next response on the connection,
  // not when this write completes: its bytes may still be queued or be
  // retransmitted then, and each packet takes the TTL of the moment.
  void write(http::response<http::string_body> res, int ttl) {
    if (ttl > 0 || ttl_changed_) set_ttl(ttl > 0 ? ttl : -1);  // -1: the route's default
    ttl_changed_ = ttl > 0;
    auto sp = std::make_shared<http::response<http::string_body>>(std::move(res));
    stream_.expires_after(idle_timeout);
    http::async_write(stream_, *sp, [self = shared_from_this(), sp](beast::error_code ec, size_t) {
      if (ec || !sp->keep_alive()) return self->close();
      self->read();
    });
  }

  void set_ttl(int ttl) {
    if (::setsockopt(stream_.socket().native_handle(), IPPROTO_IP, IP_TTL, &ttl, sizeof ttl) != 0)
      spdlog::warn("imds: cannot set IP_TTL {} for {}: {}", ttl, source_ip_, std::strerror(errno));
  }

  // Stop sending, then read and discard the rest of what the client sends
  // (a refused oversized request) for a moment, so it sees the answer
  // instead of a reset.
  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.expires_after(std::chrono::seconds(2));
    drain();
  }

  void drain() {
    stream_.async_read_some(asio::buffer(discard_),
                            [self = shared_from_this()](beast::error_code ec, size_t) {
                              if (!ec) self->drain();
                            });
  }

  beast::tcp_stream stream_;
  shared_state& state_;
  const std::string source_ip_;
  bool ttl_changed_ = false;
  beast::flat_buffer buffer_;
  std::array<char, 4096> discard_;
  std::optional<http::request_parser<http::string_body>> parser_;
};

// The caller's IPv4 address as the table keys it (v4-mapped v6 unwrapped).
std::string source_of(const tcp::socket& s) {
  beast::error_code ec;
  auto peer = s.remote_endpoint(ec).address();
  if (ec) return {};
  if (peer.is_v6() && peer.to_v6().is_v4_mapped())
    peer = asio::ip::make_address_v4(asio::ip::v4_mapped, peer.to_v6());
  return peer.to_string();
}

std::string random_key() {
  std::string key(32, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(key.data()), static_cast<int>(key.size())) != 1)
    throw std::runtime_error("imds: RAND_bytes failed");
  return key;
}

class beast_metadata_server final : public metadata_server {
 public:
  beast_metadata_server() : state_(random_key()), acceptor_(ioc_) {}

  bool bind(const std::string& address, uint16_t port, std::string& error) {
    beast::error_code ec;
    auto addr = asio::ip::make_address(address, ec);
    if (ec) {
      error = "metadata address '" + address + "' is not an IP address";
      return false;
    }
    tcp::endpoint ep{addr, port};
    acceptor_.open(ep.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(ep, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      error = "cannot listen on " + address + ":" + std::to_string(port) + ": " + ec.message();
      return false;
    }
    endpoint_ = {address, acceptor_.local_endpoint().port()};
    accept();
    thread_ = std::thread([this] { ioc_.run(); });
    spdlog::info("imds: listening on {}:{}", endpoint_.first, endpoint_.second);
    return true;
  }

  void update(metadata_table table) override {
    auto next = std::make_shared<const metadata_table>(std::move(table));
    std::lock_guard lock(state_.mutex);
    state_.table = std::move(next);
  }

  std::pair<std::string, uint16_t> endpoint() const override { return endpoint_; }

  // Requests are answered synchronously on the io thread, so there is
  // nothing in flight to wait for: stop it, then close the listener and cut
  // every connection (their pending handlers go with the io_context).
  void stop() override {
    if (!thread_.joinable()) return;
    ioc_.stop();
    thread_.join();
    beast::error_code ignored;
    acceptor_.close(ignored);
    for (auto* s : state_.sessions) s->cut();
  }

  ~beast_metadata_server() override { stop(); }

 private:
  void accept() {
    acceptor_.async_accept(ioc_, [this](beast::error_code ec, tcp::socket s) {
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
      if (ec) {
        // Out of descriptors or similar: keep the listener, retry shortly.
        spdlog::warn("imds: accept failed ({}); retrying", ec.message());
        auto timer = std::make_shared<asio::steady_timer>(ioc_, std::chrono::milliseconds(100));
        timer->async_wait([this, timer](beast::error_code) { accept(); });
        return;
      }
      auto source = source_of(s);
      if (state_.connections >= max_connections ||
          state_.per_source[source] >= max_connections_per_source) {
        spdlog::warn("imds: too many connections ({} open, {} from {}); refusing one",
                     state_.connections, state_.per_source[source], source);
        if (state_.per_source[source] == 0) state_.per_source.erase(source);
        beast::error_code ignored;
        s.close(ignored);
      } else {
        std::make_shared<session>(std::move(s), std::move(source), state_)->run();
      }
      accept();
    });
  }

  shared_state state_;  // before ioc_: sessions destroyed with it still count out
  asio::io_context ioc_{1};
  tcp::acceptor acceptor_;
  std::thread thread_;
  std::pair<std::string, uint16_t> endpoint_;
};

}  // namespace

std::unique_ptr<metadata_server> start_metadata_server(const std::string& address, uint16_t port,
                                                       std::string& error) {
  auto s = std::make_unique<beast_metadata_server>();
  if (!s->bind(address, port, error)) return nullptr;
  return s;
}

}  // namespace kumo::net
