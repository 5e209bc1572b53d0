// The real metadata server (net/metadata_server.cpp) for end-to-end tests,
// until kumod runs one per segment:
//   kumo_imds_serve ADDRESS PORT TABLE.json
// TABLE.json maps a private IP to fields of instance_metadata, e.g.
//   {"10.99.0.10": {"instance_id": "i-...", "user_data": "#!/bin/sh\n..."}}
// Prints "listening ADDRESS:PORT" once serving; stops when stdin closes.
#include "net/metadata.h"

#include <nlohmann/json.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <fstream>
#include <iostream>
#include <string>

int main(int argc, char** argv) {
  if (argc != 4) {
    std::cerr << "usage: kumo_imds_serve ADDRESS PORT TABLE.json\n";
    return 2;
  }
  // stdout carries only the "listening" line.
  spdlog::set_default_logger(spdlog::stderr_color_mt("imds"));
  kumo::net::metadata_table table;
  try {
    std::ifstream in(argv[3]);
    auto doc = nlohmann::json::parse(in);
    for (const auto& [ip, j] : doc.items()) {
      kumo::net::instance_metadata m;
      m.private_ip = ip;
      m.instance_id = j.value("instance_id", "");
      m.image_id = j.value("image_id", "");
      m.instance_type = j.value("instance_type", "");
      m.availability_zone = j.value("availability_zone", "");
      m.region = j.value("region", "");
      m.mac = j.value("mac", "");
      m.hostname = j.value("hostname", "");
      m.user_data = j.value("user_data", "");
      m.http_tokens_required = j.value("http_tokens_required", false);
      m.hop_limit = j.value("hop_limit", 1);
      table[ip] = m;
    }
  } catch (const std::exception& e) {
    std::cerr << "kumo_imds_serve: cannot read " << argv[3] << ": " << e.what() << "\n";
    return 2;
  }
  std::string error;
  auto server = kumo::net::start_metadata_server(argv[1], static_cast<uint16_t>(std::stoi(argv[2])), error);
  if (!server) {
    std::cerr << "kumo_imds_serve: " << error << "\n";
    return 1;
  }
  server->update(std::move(table));
  auto [address, port] = server->endpoint();
  std::cout << "listening " << address << ":" << port << std::endl;
  std::string line;
  while (std::getline(std::cin, line)) {
  }
  server->stop();
  return 0;
}
