#include "persistence/binary_codec.h"

namespace kumo::persistence {

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void put_string(std::string& out, std::string_view s) {
  put_varint(out, s.size());
  out.append(s);
}

bool binary_reader::varint(uint64_t& v, const char* field) {
  v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (in.empty()) break;
    auto byte = static_cast<uint8_t>(in.front());
    in.remove_prefix(1);
    v |= uint64_t(byte & 0x7f) << shift;
    if (!(byte & 0x80)) return true;
  }
  failed_field = field;
  return false;
}

bool binary_reader::str(std::string& s, const char* field) {
  uint64_t n = 0;
  if (!varint(n, field)) return false;
  if (n > in.size()) {
    failed_field = field;
    return false;
  }
  s.assign(in.data(), n);
  in.remove_prefix(n);
  return true;
}

}  // namespace kumo::persistence
