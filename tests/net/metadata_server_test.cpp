// The metadata server over real sockets on 127.0.0.1: the caller is the
// peer address, so the table is keyed by "127.0.0.1". The hop-limit test
// watches the server's packets on lo with a packet socket (root only).
#include "net/metadata.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <gtest/gtest.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <vector>

namespace kumo::net {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

instance_metadata instance(const std::string& id) {
  instance_metadata m;
  m.instance_id = id;
  m.private_ip = "127.0.0.1";
  m.availability_zone = "kumo-1a";
  m.region = "kumo-1";
  return m;
}

metadata_table table_with(instance_metadata m) { return {{"127.0.0.1", std::move(m)}}; }

class MetadataServer : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    server = start_metadata_server("127.0.0.1", 0, error);
    ASSERT_TRUE(server) << error;
    port = server->endpoint().second;
    ASSERT_NE(port, 0);
  }

  tcp::socket connect() {
    tcp::socket s(ioc);
    s.connect({asio::ip::make_address("127.0.0.1"), port});
    return s;
  }

  http::response<http::string_body> send(tcp::socket& s, http::verb verb, const std::string& target,
                                         std::vector<std::pair<std::string, std::string>> headers = {}) {
    http::request<http::string_body> req{verb, target, 11};
    req.set(http::field::host, "169.254.169.254");
    for (auto& [k, v] : headers) req.set(k, v);
    req.prepare_payload();
    http::write(s, req);
    beast::flat_buffer buf;
    http::response<http::string_body> res;
    http::read(s, buf, res);
    return res;
  }

  http::response<http::string_body> request(http::verb verb, const std::string& target,
                                            std::vector<std::pair<std::string, std::string>> headers = {}) {
    auto s = connect();
    return send(s, verb, target, std::move(headers));
  }

  // Reads until EOF (or error); true when the peer closed within `limit`.
  static bool closed_within(tcp::socket& s, std::chrono::milliseconds limit) {
    pollfd p{s.native_handle(), POLLIN, 0};
    auto deadline = std::chrono::steady_clock::now() + limit;
    char buf[4096];
    while (std::chrono::steady_clock::now() < deadline) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (::poll(&p, 1, static_cast<int>(left.count()) + 1) <= 0) continue;
      auto n = ::read(s.native_handle(), buf, sizeof buf);
      if (n <= 0) return true;
    }
    return false;
  }

  asio::io_context ioc;
  std::unique_ptr<metadata_server> server;
  uint16_t port = 0;
};

TEST_F(MetadataServer, ServesAnImdsV1Get) {
  server->update(table_with(instance("i-0aaaaaaaaaaaaaaaa")));
  auto res = request(http::verb::get, "/latest/meta-data/instance-id");
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res.body(), "i-0aaaaaaaaaaaaaaaa");
  EXPECT_EQ(res[http::field::content_type], "text/plain");
}

TEST_F(MetadataServer, IssuesATokenThatLaterGetsAccept) {
  server->update(table_with(instance("i-0aaaaaaaaaaaaaaaa")));
  auto s = connect();
  auto token = send(s, http::verb::put, "/latest/api/token",
                    {{"X-aws-ec2-metadata-token-ttl-seconds", "60"}});
  ASSERT_EQ(token.result_int(), 200) << token.body();
  EXPECT_EQ(token["X-aws-ec2-metadata-token-ttl-seconds"], "60");
  // Same keep-alive connection, then a fresh one.
  auto res = send(s, http::verb::get, "/latest/meta-data/instance-id",
                  {{"X-aws-ec2-metadata-token", token.body()}});
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res.body(), "i-0aaaaaaaaaaaaaaaa");
  res = request(http::verb::get, "/latest/meta-data/instance-id",
                {{"X-aws-ec2-metadata-token", token.body()}});
  EXPECT_EQ(res.result_int(), 200);
  auto forged = token.body();
  forged.back() = forged.back() == '0' ? '1' : '0';
  res = request(http::verb::get, "/latest/meta-data/instance-id",
                {{"X-aws-ec2-metadata-token", forged}});
  EXPECT_EQ(res.result_int(), 401);
  EXPECT_EQ(request(http::verb::put, "/latest/api/token").result_int(), 400);  // no TTL header
}

TEST_F(MetadataServer, RequiredTokensRefuseAPlainGet) {
  auto m = instance("i-0aaaaaaaaaaaaaaaa");
  m.http_tokens_required = true;
  server->update(table_with(m));
  EXPECT_EQ(request(http::verb::get, "/latest/meta-data/instance-id").result_int(), 401);
  auto token = request(http::verb::put, "/latest/api/token",
                       {{"X-aws-ec2-metadata-token-ttl-seconds", "60"}});
  ASSERT_EQ(token.result_int(), 200);
  auto res = request(http::verb::get, "/latest/meta-data/instance-id",
                     {{"X-aws-ec2-metadata-token", token.body()}});
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res.body(), "i-0aaaaaaaaaaaaaaaa");
}

TEST_F(MetadataServer, ACallerNotInTheTableGets404) {
  EXPECT_EQ(request(http::verb::get, "/latest/meta-data/instance-id").result_int(), 404);
  auto other = instance("i-0bbbbbbbbbbbbbbbb");
  server->update({{"10.0.0.5", other}});
  auto res = request(http::verb::get, "/latest/meta-data/instance-id");
  EXPECT_EQ(res.result_int(), 404);
  EXPECT_EQ(res.body().find("i-0bbbbbbbbbbbbbbbb"), std::string::npos);
}

TEST_F(MetadataServer, UpdateReplacesTheWholeTable) {
  server->update(table_with(instance("i-0aaaaaaaaaaaaaaaa")));
  auto s = connect();
  EXPECT_EQ(send(s, http::verb::get, "/latest/meta-data/instance-id").body(), "i-0aaaaaaaaaaaaaaaa");
  server->update(table_with(instance("i-0cccccccccccccccc")));
  // The next request, even on the same connection, sees the new table.
  EXPECT_EQ(send(s, http::verb::get, "/latest/meta-data/instance-id").body(), "i-0cccccccccccccccc");
  server->update({});
  EXPECT_EQ(send(s, http::verb::get, "/latest/meta-data/instance-id").result_int(), 404);
}

TEST_F(MetadataServer, RefusesOversizedRequestsAndCloses) {
  server->update(table_with(instance("i-0aaaaaaaaaaaaaaaa")));
  {
    auto s = connect();
    auto res = send(s, http::verb::get, "/latest/meta-data/instance-id",
                    {{"X-Padding", std::string(16 * 1024, 'a')}});
    EXPECT_EQ(res.result_int(), 413);
    EXPECT_FALSE(res.keep_alive());
    EXPECT_TRUE(closed_within(s, 5s));
  }
  {
    auto s = connect();
    http::request<http::string_body> req{http::verb::put, "/latest/api/token", 11};
    req.set("X-aws-ec2-metadata-token-ttl-seconds", "60");
    req.body() = std::string(64 * 1024, 'b');
    req.prepare_payload();
    beast::error_code ec;
    http::write(s, req, ec);  // the server may stop reading early
    beast::flat_buffer buf;
    http::response<http::string_body> res;
    http::read(s, buf, res, ec);
    ASSERT_FALSE(ec) << ec.message();
    EXPECT_EQ(res.result_int(), 413);
  }
  // Still serving.
  EXPECT_EQ(request(http::verb::get, "/latest/meta-data/instance-id").result_int(), 200);
}

TEST_F(MetadataServer, MalformedHttpGets400) {
  auto s = connect();
  asio::write(s, asio::buffer(std::string("NOT HTTP AT ALL\r\n\r\n")));
  beast::flat_buffer buf;
  http::response<http::string_body> res;
  http::read(s, buf, res);
  EXPECT_EQ(res.result_int(), 400);
  EXPECT_TRUE(closed_within(s, 5s));
}

TEST_F(MetadataServer, CapsConnectionsPerSource) {
  server->update(table_with(instance("i-0aaaaaaaaaaaaaaaa")));
  std::vector<tcp::socket> held;
  for (int i = 0; i < 16; ++i) held.push_back(connect());
  // All 16 are served (this also makes sure the server has accepted them).
  for (auto& s : held)
    ASSERT_EQ(send(s, http::verb::get, "/latest/meta-data/instance-id").result_int(), 200);
  auto extra = connect();
  EXPECT_TRUE(closed_within(extra, 5s));
  held.clear();
  // Closed ones are counted out; poll until the server has seen the FINs.
  auto deadline = std::chrono::steady_clock::now() + 5s;
  bool served = false;
  while (!served && std::chrono::steady_clock::now() < deadline) {
    auto s = connect();
    beast::error_code ec;
    http::request<http::string_body> req{http::verb::get, "/latest/meta-data/instance-id", 11};
    http::write(s, req, ec);
    beast::flat_buffer buf;
    http::response<http::string_body> res;
    if (!ec) http::read(s, buf, res, ec);
    served = !ec && res.result_int() == 200;
  }
  EXPECT_TRUE(served);
}

TEST_F(MetadataServer, StopReturnsPromptlyAndClosesConnections) {
  server->update(table_with(instance("i-0aaaaaaaaaaaaaaaa")));
  auto idle = connect();
  EXPECT_EQ(send(idle, http::verb::get, "/latest/meta-data/instance-id").result_int(), 200);
  auto half = connect();
  asio::write(half, asio::buffer(std::string("GET /latest/meta-data/ HTTP/1.1\r\nHost: x\r\n")));
  auto start = std::chrono::steady_clock::now();
  server->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  EXPECT_TRUE(closed_within(idle, 2s));
  EXPECT_TRUE(closed_within(half, 2s));
  tcp::socket s(ioc);
  beast::error_code ec;
  s.connect({asio::ip::make_address("127.0.0.1"), port}, ec);
  EXPECT_TRUE(ec) << "still accepting after stop()";
  server->stop();  // twice is fine
}

TEST(MetadataServerStart, ReportsWhyItCannotListen) {
  std::string error;
  EXPECT_EQ(start_metadata_server("not-an-ip", 0, error), nullptr);
  EXPECT_NE(error.find("not-an-ip"), std::string::npos) << error;
  auto first = start_metadata_server("127.0.0.1", 0, error);
  ASSERT_TRUE(first) << error;
  error.clear();
  // reuse_address does not allow two listeners on one port.
  EXPECT_EQ(start_metadata_server("127.0.0.1", first->endpoint().second, error), nullptr);
  EXPECT_NE(error.find("cannot listen"), std::string::npos) << error;
}

// The IP TTL of the first TCP segment with payload sent from `from_port` to
// `to_port` on lo, watched with a packet socket; nullopt after `limit`.
class lo_watch {
 public:
  lo_watch() {
    fd_ = ::socket(AF_PACKET, SOCK_DGRAM, htons(ETH_P_IP));
    if (fd_ < 0) return;
    sockaddr_ll addr{};
    addr.sll_family = AF_PACKET;
    addr.sll_protocol = htons(ETH_P_IP);
    addr.sll_ifindex = static_cast<int>(if_nametoindex("lo"));
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~lo_watch() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool ok() const { return fd_ >= 0; }

  std::optional<int> ttl_of_data(uint16_t from_port, uint16_t to_port,
                                 std::chrono::milliseconds limit) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    unsigned char buf[65536];
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      auto n = ::recv(fd_, buf, sizeof buf, 0);
      if (n < static_cast<ssize_t>(sizeof(iphdr))) continue;
      auto* ip = reinterpret_cast<const iphdr*>(buf);
      if (ip->version != 4 || ip->protocol != IPPROTO_TCP) continue;
      size_t ihl = ip->ihl * 4u;
      if (static_cast<size_t>(n) < ihl + sizeof(tcphdr)) continue;
      auto* tcp = reinterpret_cast<const tcphdr*>(buf + ihl);
      size_t payload = ntohs(ip->tot_len) - ihl - tcp->doff * 4u;
      if (ntohs(tcp->source) == from_port && ntohs(tcp->dest) == to_port && payload > 0)
        return ip->ttl;
    }
    return std::nullopt;
  }

 private:
  int fd_ = -1;
};

TEST_F(MetadataServer, TokenResponseLeavesWithTheHopLimitAsTtl) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root for a packet socket on lo";
  auto m = instance("i-0aaaaaaaaaaaaaaaa");
  m.hop_limit = 3;
  server->update(table_with(m));
  auto s = connect();
  uint16_t client_port = s.local_endpoint().port();
  {
    lo_watch watch;
    ASSERT_TRUE(watch.ok());
    auto token = send(s, http::verb::put, "/latest/api/token",
                      {{"X-aws-ec2-metadata-token-ttl-seconds", "60"}});
    ASSERT_EQ(token.result_int(), 200);
    EXPECT_EQ(watch.ttl_of_data(port, client_port, 5s), 3);
  }
  {
    // The next answer on the same connection has the default TTL again.
    lo_watch watch;
    ASSERT_TRUE(watch.ok());
    ASSERT_EQ(send(s, http::verb::get, "/latest/meta-data/instance-id").result_int(), 200);
    auto ttl = watch.ttl_of_data(port, client_port, 5s);
    ASSERT_TRUE(ttl);
    EXPECT_NE(*ttl, 3);
    EXPECT_GT(*ttl, 3);
  }
}

}  // namespace
}  // namespace kumo::net
