// Binary encoding of one event record (the value under g/<gseq>).
// Layout: format byte (1), then varint integers and length-prefixed strings in
// the order of event_record's fields. Binary, not JSON, so that replaying a
// million events costs a memcpy per field rather than a JSON parse.
#pragma once

#include "persistence/event_store.h"

#include <string>
#include <string_view>

namespace kumo::persistence {

std::string encode_record(const event_record& r);
// Fills `out`; on malformed bytes returns a corrupt status naming what broke.
status decode_record(std::string_view bytes, event_record& out);

// Keys (see event_store.h for the layout).
std::string global_key(uint64_t global_seq);
std::string stream_key(std::string_view stream, uint64_t stream_seq);
std::string stream_prefix(std::string_view stream);
std::string be64(uint64_t v);
uint64_t read_be64(std::string_view bytes);

}  // namespace kumo::persistence
