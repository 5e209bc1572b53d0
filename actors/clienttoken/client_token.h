// The ClientToken aggregate: EC2's idempotency for calls that take a
// ClientToken (RunInstances, ...). Aggregate id "<account id>/<token>".
//
// The first call claims the token with a hash of its parameters and a random
// seed the operation derives its resource ids from; when the operation
// succeeds its response is recorded. A retry with the same parameters gets
// the recorded response, or, if the first call never finished (a crash),
// runs again with the same seed and so creates the same resources, which the
// resources' own aggregates accept as repeats. Different parameters with the
// same token: IdempotentParameterMismatch. A call refused on its input (a 4xx)
// releases its claim, as on EC2: the token is then free for any retry.
#pragma once

#include "actors/runtime/decision.h"
#include "persistence/event_store.h"

#include <string>
#include <variant>

namespace kumo::actors::client_token {

// ---- Commands
struct claim {
  std::string action;
  std::string params_hash;
  std::string seed;  // used only if the token is new
  int64_t at_ms = 0;
};
struct complete {
  std::string response_body;  // the XML inside <ActionResponse>, without the requestId
};
struct release {
  std::string params_hash;  // only the claim of these parameters goes
  std::string error_code;   // why the call failed, for the log's readers
};
using command = std::variant<claim, complete, release>;

// ---- Events
struct claimed {
  std::string action;
  std::string params_hash;
  std::string seed;
  int64_t at_ms = 0;
};
struct completed {
  std::string response_body;
};
struct released {
  std::string error_code;
};
using event = std::variant<claimed, completed, released>;

// ---- State
struct state {
  bool exists = false;
  std::string action;
  std::string params_hash;
  std::string seed;
  int64_t claimed_ms = 0;
  bool done = false;
  std::string response_body;
  bool operator==(const state&) const = default;
};

struct aggregate {
  using state = client_token::state;
  using event = client_token::event;
  using command = client_token::command;
  static constexpr const char* kind = "clienttoken";
  static constexpr uint32_t state_version = 1;

  static bool valid_id(const std::string& id);
  static decision<aggregate> decide(const std::string& id, const state& s, const command& c);
  static state apply(state s, const event& e);
  static persistence::new_event encode(const event& e);
  static persistence::status decode(const persistence::event_record& r, event& out);
  static std::string save(const state& s);
  static bool load(const std::string& json, state& s);
};

// EC2's rule: 1-64 printable ASCII characters.
bool valid_token(const std::string& token);
std::string aggregate_id(const std::string& account_id, const std::string& token);

}  // namespace kumo::actors::client_token
