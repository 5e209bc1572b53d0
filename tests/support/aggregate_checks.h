// Checks shared by the unit tests of aggregates: folding events into a state
// and proving that every event and snapshot survives the codec.
#pragma once

#include "persistence/event_store.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace kumo::checks {

template <class A>
typename A::state fold(const std::vector<typename A::event>& events, typename A::state s = {}) {
  for (const auto& e : events) s = A::apply(std::move(s), e);
  return s;
}

// Every event survives encode -> stored record -> decode, and replaying the
// decoded events gives the same state as applying the originals.
template <class A>
void expect_codec_round_trip(const std::vector<typename A::event>& events) {
  typename A::state direct, decoded;
  uint64_t seq = 0;
  for (const auto& e : events) {
    auto ne = A::encode(e);
    persistence::event_record r{std::string(A::kind) + "/x", ++seq, seq, ne.type, ne.schema_version, 1, "p", "r", ne.payload};
    typename A::event back;
    ASSERT_TRUE(A::decode(r, back).ok()) << ne.type;
    direct = A::apply(direct, e);
    decoded = A::apply(decoded, back);
  }
  EXPECT_EQ(direct, decoded);
  typename A::state loaded;
  ASSERT_TRUE(A::load(A::save(direct), loaded));
  EXPECT_EQ(loaded, direct);
}

}  // namespace kumo::checks
