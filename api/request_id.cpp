#include "api/request_id.h"

#include <cstdio>
#include <stdexcept>
#include <sys/random.h>

namespace kumo::api {

std::string new_request_id() {
  unsigned char b[16];
  if (getrandom(b, sizeof b, 0) != sizeof b) throw std::runtime_error("getrandom failed");
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  char out[37];
  std::snprintf(out, sizeof out,
                "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
                b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
                b[15]);
  return out;
}

}  // namespace kumo::api
