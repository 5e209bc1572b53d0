#include "actors/clienttoken/client_token.h"

#include "actors/runtime/json_codec.h"

#include <nlohmann/json.hpp>

#include <algorithm>

namespace kumo::actors::client_token {

using json = nlohmann::json;
using decision_t = decision<aggregate>;

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(claimed, action, params_hash, seed, at_ms)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(state, exists, action, params_hash, seed, claimed_ms, done, response_body)

bool valid_token(const std::string& token) {
  return !token.empty() && token.size() <= 64 &&
         std::all_of(token.begin(), token.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

std::string aggregate_id(const std::string& account_id, const std::string& token) {
  return account_id + "/" + token;
}

bool aggregate::valid_id(const std::string& id) {
  return id.size() > 13 && id[12] == '/' &&
         std::all_of(id.begin(), id.begin() + 12, [](char c) { return c >= '0' && c <= '9'; }) &&
         valid_token(id.substr(13));
}

decision_t aggregate::decide(const std::string& id, const state& s, const command& c) {
  return std::visit(
      overloaded{
          [&](const claim& cmd) -> decision_t {
            if (!s.exists) return {{claimed{cmd.action, cmd.params_hash, cmd.seed, cmd.at_ms}}, {}};
            if (s.action != cmd.action || s.params_hash != cmd.params_hash)
              return decision_t::refuse("IdempotentParameterMismatch",
                                        "The client token '" + id.substr(13) + "' was already used with " +
                                            s.action + " by another caller or with different parameters; use a new token");
            return {};  // a retry: the state says what happened the first time
          },
          [&](const complete& cmd) -> decision_t {
            if (!s.exists)
              return decision_t::refuse("InternalError", "client token " + id.substr(13) + " was never claimed");
            if (s.done) return {};
            return {{completed{cmd.response_body}}, {}};
          },
          [&](const release& cmd) -> decision_t {
            // A completed call is never undone; another claim is not ours to drop.
            if (!s.exists || s.done || s.params_hash != cmd.params_hash) return {};
            return {{released{cmd.error_code}}, {}};
          },
      },
      c);
}

state aggregate::apply(state s, const event& e) {
  std::visit(overloaded{
                 [&](const claimed& ev) {
                   s = {true, ev.action, ev.params_hash, ev.seed, ev.at_ms, false, {}};
                 },
                 [&](const completed& ev) {
                   s.done = true;
                   s.response_body = ev.response_body;
                 },
                 [&](const released&) { s = state{}; },
             },
             e);
  return s;
}

persistence::new_event aggregate::encode(const event& e) {
  return std::visit(overloaded{
                        [](const claimed& ev) { return persistence::new_event{"claimed", 1, json(ev).dump()}; },
                        [](const completed& ev) {
                          return persistence::new_event{"completed", 1,
                                                        json{{"response_body", ev.response_body}}.dump()};
                        },
                        [](const released& ev) {
                          return persistence::new_event{"released", 1, json{{"error_code", ev.error_code}}.dump()};
                        },
                    },
                    e);
}

persistence::status aggregate::decode(const persistence::event_record& r, event& out) {
  return decode_json_event(r, kind, [&](const json& j) {
    if (r.type == "claimed")
      out = j.get<claimed>();
    else if (r.type == "completed")
      out = completed{j.at("response_body").get<std::string>()};
    else if (r.type == "released")
      out = released{j.at("error_code").get<std::string>()};
    else
      return false;
    return true;
  });
}

std::string aggregate::save(const state& s) { return save_json_state(s); }

bool aggregate::load(const std::string& text, state& s) { return load_json_state(text, s); }

}  // namespace kumo::actors::client_token
