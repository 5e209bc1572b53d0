#include "subprocess.h"

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <poll.h>
#include <stdexcept>
#include <sys/wait.h>
#include <unistd.h>

namespace kumo::test {

subprocess::subprocess(std::vector<std::string> argv) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    dup2(fds[1], 1);
    dup2(fds[1], 2);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    execv(args[0], args.data());
    std::fprintf(stderr, "exec %s failed: %s\n", args[0], std::strerror(errno));
    _exit(127);
  }
  close(fds[1]);
  fd_ = fds[0];
}

subprocess::~subprocess() {
  if (!status_ && pid_ > 0) {
    ::kill(pid_, SIGKILL);
    int st;
    waitpid(pid_, &st, 0);
  }
  if (fd_ >= 0) close(fd_);
}

std::optional<std::string> subprocess::read_line(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (auto nl = buffer_.find('\n'); nl != std::string::npos) {
      auto line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      transcript_ += line + "\n";
      return line;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 || fd_ < 0) return std::nullopt;
    pollfd p{fd_, POLLIN, 0};
    int r = poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return std::nullopt;
    char buf[4096];
    auto n = ::read(fd_, buf, sizeof buf);
    if (n <= 0) {
      close(fd_);
      fd_ = -1;
      return std::nullopt;  // EOF: a partial last line is dropped, like a killed writer's
    }
    buffer_.append(buf, static_cast<size_t>(n));
  }
}

std::optional<std::string> subprocess::wait_for(const std::string& needle,
                                                std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    auto line = read_line(left);
    if (!line) return std::nullopt;
    if (line->find(needle) != std::string::npos) return line;
  }
}

void subprocess::signal(int sig) {
  if (!status_) ::kill(pid_, sig);
}

int subprocess::wait() {
  while (read_line(std::chrono::seconds(60))) {
  }
  if (!status_) {
    int st = 0;
    waitpid(pid_, &st, 0);
    status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  }
  return *status_;
}

run_result run(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) {
  subprocess p(argv);
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (p.read_line(std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now()))) {
  }
  if (std::chrono::steady_clock::now() >= deadline) p.signal(SIGKILL);
  int rc = p.wait();
  return {rc, p.transcript()};
}

temp_dir::temp_dir() {
  std::string t = "/tmp/kumo-test-XXXXXX";
  if (!mkdtemp(t.data())) throw std::runtime_error("mkdtemp failed");
  path_ = t;
}

temp_dir::~temp_dir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string binary(const std::string& name) { return std::string(KUMO_BIN_DIR) + "/" + name; }

}  // namespace kumo::test

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

namespace kumo::test {

http_response http_get(uint16_t port, const std::string& path) {
  http_response res;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return res;
  }
  auto req = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  if (::write(fd, req.data(), req.size()) < 0) {
    close(fd);
    return res;
  }
  std::string raw;
  char buf[4096];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) raw.append(buf, static_cast<size_t>(n));
  close(fd);
  if (raw.rfind("HTTP/1.1 ", 0) == 0) res.status = std::stoi(raw.substr(9, 3));
  if (auto split = raw.find("\r\n\r\n"); split != std::string::npos) res.body = raw.substr(split + 4);
  return res;
}

}  // namespace kumo::test
