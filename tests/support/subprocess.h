// Child processes for tests: start a binary with its output piped back, wait
// for a line (readiness is a line the program prints, never a sleep), signal
// it, reap it.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace kumo::test {

class subprocess {
 public:
  // stdout and stderr both come back through one pipe.
  explicit subprocess(std::vector<std::string> argv);
  ~subprocess();  // SIGKILLs and reaps a child still running
  subprocess(const subprocess&) = delete;
  subprocess& operator=(const subprocess&) = delete;

  // The next complete line, or nullopt on EOF / timeout.
  std::optional<std::string> read_line(std::chrono::milliseconds timeout);
  // Reads lines until one contains `needle`; returns it (nullopt on EOF / timeout).
  std::optional<std::string> wait_for(const std::string& needle, std::chrono::milliseconds timeout);
  // Everything read so far, all lines.
  const std::string& transcript() const { return transcript_; }

  void signal(int sig);
  // Exit code (or 128 + signal), after reading the rest of the output.
  int wait();
  int pid() const { return pid_; }

 private:
  int pid_ = -1;
  int fd_ = -1;
  std::string buffer_;
  std::string transcript_;
  std::optional<int> status_;
};

// Runs a command to completion; returns {exit code, combined output}.
struct run_result {
  int exit_code;
  std::string output;
};
run_result run(const std::vector<std::string>& argv,
               std::chrono::milliseconds timeout = std::chrono::seconds(60));

// A fresh directory under /tmp, removed with everything in it on destruction.
class temp_dir {
 public:
  temp_dir();
  ~temp_dir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Where the build put kumod, kumoctl and the test helpers.
std::string binary(const std::string& name);

}  // namespace kumo::test

namespace kumo::test {

// A plain HTTP/1.1 GET on 127.0.0.1 (no client library needed).
struct http_response {
  int status = 0;
  std::string body;
};
http_response http_get(uint16_t port, const std::string& path);

}  // namespace kumo::test
