#include "persistence/record_codec.h"

#include "persistence/binary_codec.h"

namespace kumo::persistence {
namespace {

constexpr char record_format_v1 = 1;

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
  binary_reader rd{bytes.substr(1), {}};
  uint64_t schema = 0, time = 0;
  bool ok = rd.str(out.stream, "stream") && rd.varint(out.stream_seq, "stream_seq") &&
            rd.varint(out.global_seq, "global_seq") && rd.str(out.type, "type") &&
            rd.varint(schema, "schema_version") && rd.varint(time, "time") &&
            rd.str(out.principal, "principal") && rd.str(out.request_id, "request_id") &&
            rd.str(out.payload, "payload");
  if (!ok)
    return status::error(status_code::corrupt, "record truncated at field '" + rd.failed_field + "'");
  if (!rd.at_end())
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
