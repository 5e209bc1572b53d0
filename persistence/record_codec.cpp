#include "persistence/record_codec.h"

namespace kumo::persistence {
namespace {

constexpr char record_format_v1 = 1;

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

// A cursor over the encoded bytes; every read reports which field failed.
struct reader {
  std::string_view in;
  std::string failed_field;

  bool varint(uint64_t& v, const char* field) {
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

  bool str(std::string& s, const char* field) {
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
};

}  // namespace

std::string encode_record(const event_record& r) {
  std::string out;
  out.reserve(32 + r.stream.size() + r.type.size() + r.principal.size() +
              r.request_id.size() + r.payload.size());
  out.push_back(record_format_v1);
  put_string(out, r.stream);
  put_varint(out, r.stream_seq);
  put_varint(out, r.global_seq);
  put_string(out, r.type);
  put_varint(out, r.schema_version);
  put_varint(out, static_cast<uint64_t>(r.time_ms));
  put_string(out, r.principal);
  put_string(out, r.request_id);
  put_string(out, r.payload);
  return out;
}

status decode_record(std::string_view bytes, event_record& out) {
  if (bytes.empty() || bytes.front() != record_format_v1)
    return status::error(status_code::corrupt,
                         bytes.empty() ? "empty record"
                                       : "unknown record format " +
                                             std::to_string(int(bytes.front())));
  reader rd{bytes.substr(1), {}};
  uint64_t schema = 0, time = 0;
  bool ok = rd.str(out.stream, "stream") && rd.varint(out.stream_seq, "stream_seq") &&
            rd.varint(out.global_seq, "global_seq") && rd.str(out.type, "type") &&
            rd.varint(schema, "schema_version") && rd.varint(time, "time") &&
            rd.str(out.principal, "principal") && rd.str(out.request_id, "request_id") &&
            rd.str(out.payload, "payload");
  if (!ok)
    return status::error(status_code::corrupt, "record truncated at field '" + rd.failed_field + "'");
  if (!rd.in.empty())
    return status::error(status_code::corrupt,
                         std::to_string(rd.in.size()) + " trailing bytes after the payload");
  out.schema_version = static_cast<uint32_t>(schema);
  out.time_ms = static_cast<int64_t>(time);
  return status::success();
}

std::string be64(uint64_t v) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i) {
    out[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  return out;
}

uint64_t read_be64(std::string_view bytes) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8 && i < bytes.size(); ++i) v = (v << 8) | static_cast<uint8_t>(bytes[i]);
  return v;
}

std::string global_key(uint64_t global_seq) { return "g/" + be64(global_seq); }

std::string stream_prefix(std::string_view stream) {
  std::string k = "e/";
  k.append(stream);
  k.push_back('\0');
  return k;
}

std::string stream_key(std::string_view stream, uint64_t stream_seq) {
  return stream_prefix(stream) + be64(stream_seq);
}

}  // namespace kumo::persistence
