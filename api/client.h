// A small blocking, SigV4-signing EC2 Query client: what kumoctl uses to
// administer a running kumod, and what bench/ drives load with.
#pragma once

#include "api/ec2.h"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace kumo::api {

struct endpoint {
  std::string host;  // an IPv4 address
  uint16_t port = 8773;
};
// "http://127.0.0.1:8773" (a trailing '/' is fine)
std::optional<endpoint> parse_endpoint(const std::string& url, std::string& why);

struct credentials {
  std::string access_key_id;
  std::string secret_access_key;
};
// Reads one profile of an AWS shared-credentials file.
std::optional<credentials> read_credentials(const std::string& path, const std::string& profile,
                                            std::string& why);

class signed_client {
 public:
  signed_client(endpoint ep, credentials creds, std::string region);
  ~signed_client();
  signed_client(const signed_client&) = delete;
  signed_client& operator=(const signed_client&) = delete;

  // POSTs the parameters (Version is added), signed (unsigned when the
  // credentials have no access key id: KumoLogin); keeps the connection
  // open between calls. Nullopt with `why` when the server cannot be reached.
  std::optional<http_reply> call(const std::map<std::string, std::string>& params,
                                 std::string& why);

 private:
  bool connect_once(std::string& why);
  endpoint ep_;
  credentials creds_;
  std::string region_;
  int fd_ = -1;
};

// The text of every <tag>...</tag> in an XML document, unescaped. Enough to
// read EC2 responses, which have no attributes on leaves and no CDATA.
std::vector<std::string> xml_texts(const std::string& xml, const std::string& tag);

}  // namespace kumo::api
