// Decoding any stored event by the aggregate that owns its stream: what
// `kumoctl verify` uses to prove every event decodes. Register each new
// aggregate kind in codecs.cpp.
#pragma once

#include "persistence/event_store.h"

namespace kumo::actors {

persistence::status decode_any(const persistence::event_record& r);

}  // namespace kumo::actors
