// The one way aggregates decode their JSON payloads and snapshots, so every
// aggregate reports a bad event the same way.
#pragma once

#include "persistence/event_store.h"

#include <nlohmann/json.hpp>

#include <string>
#include <type_traits>
#include <variant>

namespace kumo::actors {

// Decodes a schema-version-1 payload: `decode(json)` returns false for an
// event type it does not know. Missing or mistyped fields become a corrupt
// status naming the event type. (Bump the version and add an upcaster here
// when a payload changes shape.)
template <class Decode>
persistence::status decode_json_event(const persistence::event_record& r, const char* kind,
                                      Decode decode) {
  using persistence::status;
  using persistence::status_code;
  if (r.schema_version != 1)
    return status::error(status_code::corrupt, "event type '" + r.type + "' has schema version " +
                                                   std::to_string(r.schema_version) +
                                                   ", this kumod knows version 1 only");
  try {
    if (!decode(nlohmann::json::parse(r.payload)))
      return status::error(status_code::corrupt, "unknown event type '" + r.type + "' in " +
                                                     (kind[0] == 'a' ? "an " : "a ") + kind +
                                                     " stream");
  } catch (const nlohmann::json::exception& e) {
    return status::error(status_code::corrupt,
                         "payload of '" + r.type + "' does not decode: " + e.what());
  }
  return status::success();
}

// Parses a snapshot; false (so the caller replays from scratch) on any error.
template <class Load>
bool load_json_snapshot(const std::string& text, Load load) {
  try {
    load(nlohmann::json::parse(text));
    return true;
  } catch (const nlohmann::json::exception&) {
    return false;
  }
}

// Snapshots of a state that has nlohmann to_json/from_json (e.g. from
// NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE): the whole state as one JSON document.
template <class State>
std::string save_json_state(const State& s) {
  return nlohmann::json(s).dump();
}
template <class State>
bool load_json_state(const std::string& text, State& s) {
  return load_json_snapshot(text, [&](const nlohmann::json& j) { s = j.template get<State>(); });
}

// Events as a std::variant, each alternative named by an
// `event_name(std::type_identity<E>)` declared next to it (KUMO_EVENT_NAME),
// found by argument-dependent lookup. The name is the stored event type, so
// it is never changed.
#define KUMO_EVENT_NAME(E) \
  [[maybe_unused]] constexpr const char* event_name(std::type_identity<E>) { return #E; }

template <class Event>
persistence::new_event encode_variant_event(const Event& e) {
  return std::visit(
      [](const auto& ev) {
        using E = std::decay_t<decltype(ev)>;
        return persistence::new_event{event_name(std::type_identity<E>{}), 1, nlohmann::json(ev).dump()};
      },
      e);
}

// Decodes `j` as the alternative of Event whose name is `type`; false when none is.
template <class Event, size_t I = 0>
bool decode_variant_event(const std::string& type, const nlohmann::json& j, Event& out) {
  if constexpr (I == std::variant_size_v<Event>) {
    return false;
  } else {
    using E = std::variant_alternative_t<I, Event>;
    if (type == event_name(std::type_identity<E>{})) {
      out = j.get<E>();
      return true;
    }
    return decode_variant_event<Event, I + 1>(type, j, out);
  }
}

}  // namespace kumo::actors
