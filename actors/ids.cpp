#include "actors/ids.h"

#include <algorithm>
#include <stdexcept>
#include <sys/random.h>
#include <vector>

namespace kumo::actors {

std::string random_chars(size_t n, std::string_view alphabet) {
  std::vector<unsigned char> bytes(n);
  for (size_t got = 0; got < n;) {
    auto r = getrandom(bytes.data() + got, n - got, 0);
    if (r < 0) throw std::runtime_error("getrandom failed");
    got += static_cast<size_t>(r);
  }
  // The modulo bias of non-power-of-two alphabets is negligible for ids and
  // 240-bit secrets.
  std::string out(n, '\0');
  for (size_t i = 0; i < n; ++i) out[i] = alphabet[bytes[i] % alphabet.size()];
  return out;
}

std::string new_resource_id(std::string_view prefix) {
  return std::string(prefix) + "-" + random_chars(17, "0123456789abcdef");
}

bool valid_plain_name(const std::string& name) {
  return !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
}

}  // namespace kumo::actors
