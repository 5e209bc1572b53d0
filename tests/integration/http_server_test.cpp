// kumod's HTTP endpoint on the wire, with raw sockets: `Expect: 100-continue`
// is answered before the body is sent, and connections beyond
// --max-connections get 503 RequestLimitExceeded while the others are served.
#include "tests/support/subprocess.h"

#include <gtest/gtest.h>
#include <arpa/inet.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <regex>
#include <thread>

using namespace kumo;
using namespace std::chrono_literals;

namespace {

struct kumod_process {
  test::temp_dir dir;
  test::subprocess proc;
  uint16_t port = 0;
  explicit kumod_process(const std::string& extra)
      : proc({test::binary("kumod"), "--data-dir=" + dir.path(), "--listen=127.0.0.1:0", "--hypervisor=fake", extra}) {
    auto ready = proc.wait_for("kumod ready", 60s);
    if (!ready) throw std::runtime_error("kumod did not become ready:\n" + proc.transcript());
    std::smatch m;
    std::regex_search(*ready, m, std::regex(R"(http://127\.0\.0\.1:(\d+))"));
    port = static_cast<uint16_t>(std::stoi(m[1]));
  }
  ~kumod_process() {
    proc.signal(SIGTERM);
    proc.wait();
  }
};

// A TCP connection to 127.0.0.1:port, closed with the object.
struct connection {
  int fd = -1;
  explicit connection(uint16_t port) {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      ::close(fd);
      fd = -1;
    }
  }
  ~connection() {
    if (fd >= 0) ::close(fd);
  }
  bool send(const std::string& bytes) const { return ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) > 0; }
  // What arrives until `done(text)` or the timeout (or the peer closes).
  template <class Done>
  std::string receive(Done done, std::chrono::milliseconds timeout = 10s) const {
    std::string text;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!done(text)) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      pollfd p{fd, POLLIN, 0};
      if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
      char buf[4096];
      const auto n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      text.append(buf, static_cast<size_t>(n));
    }
    return text;
  }
  std::string response() const {
    return receive([](const std::string& t) {
      const auto end = t.find("\r\n\r\n");
      if (end == std::string::npos) return false;
      std::smatch m;
      if (!std::regex_search(t, m, std::regex(R"(Content-Length: (\d+))", std::regex::icase))) return true;
      return t.size() >= end + 4 + std::stoul(m[1]);
    });
  }
};

const std::string body = "Action=DescribeRegions&Version=2016-11-15";

std::string post_headers(const std::string& extra = "") {
  return "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
         "Content-Length: " + std::to_string(body.size()) + "\r\n" + extra + "\r\n";
}

TEST(HttpServer, Expect100ContinueIsAnsweredBeforeTheBodyIsSent) {
  kumod_process k("--max-connections=8");
  connection c(k.port);
  ASSERT_GE(c.fd, 0);
  ASSERT_TRUE(c.send(post_headers("Expect: 100-continue\r\n")));
  auto go = c.receive([](const std::string& t) { return t.find("\r\n\r\n") != std::string::npos; });
  EXPECT_EQ(go.rfind("HTTP/1.1 100 Continue\r\n", 0), 0u) << go;
  ASSERT_TRUE(c.send(body));
  // Unsigned, so refused, but answered in full: the request was read.
  auto answer = c.response();
  EXPECT_EQ(answer.rfind("HTTP/1.1 4", 0), 0u) << answer;
  EXPECT_NE(answer.find("<Code>"), std::string::npos) << answer;
}

TEST(HttpServer, ConnectionsBeyondTheLimitGetRequestLimitExceeded) {
  kumod_process k("--max-connections=4");
  std::vector<std::unique_ptr<connection>> open;
  for (int i = 0; i < 4; ++i) {
    open.push_back(std::make_unique<connection>(k.port));
    ASSERT_GE(open.back()->fd, 0);
    // Each one served (a full answer to a GET of /healthz, kept alive).
    ASSERT_TRUE(open.back()->send("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
    auto answer = open.back()->response();
    ASSERT_EQ(answer.rfind("HTTP/1.1 200", 0), 0u) << answer;
  }
  {
    connection fifth(k.port);
    auto answer = fifth.response();
    EXPECT_EQ(answer.rfind("HTTP/1.1 503", 0), 0u) << answer;
    EXPECT_NE(answer.find("<Code>RequestLimitExceeded</Code>"), std::string::npos) << answer;
  }
  // The four still work; one closed makes room for a new one.
  ASSERT_TRUE(open[0]->send("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
  EXPECT_EQ(open[0]->response().rfind("HTTP/1.1 200", 0), 0u);
  open.pop_back();
  std::string answer;
  for (int attempt = 0; attempt < 100 && answer.rfind("HTTP/1.1 200", 0) != 0; ++attempt) {
    if (attempt) std::this_thread::sleep_for(50ms);  // until the server has seen the close
    connection again(k.port);
    again.send("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    answer = again.response();
  }
  EXPECT_EQ(answer.rfind("HTTP/1.1 200", 0), 0u) << answer;
}

}  // namespace
