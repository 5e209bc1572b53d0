// The instance metadata service (169.254.169.254 as EC2 serves it, IMDSv1
// and IMDSv2). The caller is identified only by its source address on its
// segment, so a guest can read nothing but its own data. The network
// controller pushes the whole table whenever the projection changes; the
// server never asks the control plane anything while answering.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace kumo::net {

struct instance_metadata {
  std::string instance_id;
  std::string account_id;
  std::string reservation_id;
  std::string image_id;
  std::string instance_type;
  std::string availability_zone;
  std::string region;
  std::string private_ip;
  std::string public_ip;     // empty when none
  std::string mac;
  std::string hostname;      // e.g. ip-10-16-3-10.kumo.internal
  std::vector<std::string> security_groups;  // names
  std::string key_name;      // empty when launched without a key
  std::string public_key;    // the key pair's OpenSSH public key
  std::vector<std::pair<std::string, std::string>> block_devices;  // ("ami", "/dev/vda"), ("ebs1", "/dev/sdf")
  std::string user_data;     // raw bytes as given at launch (decoded)
  int64_t launch_ms = 0;
  // ModifyInstanceMetadataOptions
  bool http_tokens_required = false;
  int hop_limit = 1;
  bool endpoint_enabled = true;
};

// Keyed by the guest's private IP.
using metadata_table = std::map<std::string, instance_metadata>;

class metadata_server {
 public:
  virtual ~metadata_server() = default;
  // Replaces the whole table atomically (safe from any thread).
  virtual void update(metadata_table table) = 0;
  // The address and port it listens on, after start.
  virtual std::pair<std::string, uint16_t> endpoint() const = 0;
  virtual void stop() = 0;
};

// Starts listening on `address`:`port` (port 0: any free port) with its own
// thread(s). nullptr + `error` when it cannot bind.
std::unique_ptr<metadata_server> start_metadata_server(const std::string& address, uint16_t port,
                                                       std::string& error);

}  // namespace kumo::net
