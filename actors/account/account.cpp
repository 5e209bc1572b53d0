#include "actors/account/account.h"

#include "actors/ids.h"
#include "actors/runtime/json_codec.h"

#include <nlohmann/json.hpp>

#include <algorithm>

namespace kumo::actors::account {

using json = nlohmann::json;
using persistence::status;

namespace {

using decision_t = decision<aggregate>;

bool has_key(const state& s, const std::string& id) {
  return std::any_of(s.keys.begin(), s.keys.end(),
                     [&](const access_key& k) { return k.access_key_id == id; });
}

json key_json(const access_key& k) {
  return {{"access_key_id", k.access_key_id}, {"secret_access_key", k.secret_access_key}};
}

access_key key_from(const json& j) {
  return {j.at("access_key_id").get<std::string>(), j.at("secret_access_key").get<std::string>()};
}

}  // namespace

bool aggregate::valid_id(const std::string& id) {
  return id.size() == 12 && std::all_of(id.begin(), id.end(), [](char c) {
           return c >= '0' && c <= '9';
         });
}

decision_t aggregate::decide(const std::string& id, const state& s, const command& c) {
  return std::visit(
      overloaded{
          [&](const create_account& cmd) -> decision_t {
            if (s.exists)
              return decision_t::refuse("EntityAlreadyExists",
                                        "account " + id + " already exists");
            if (cmd.name.empty() || cmd.name.size() > 64)
              return decision_t::refuse("InvalidParameterValue",
                                        "account name must be 1 to 64 characters");
            return {{account_created{id, cmd.name, cmd.admin},
                     access_key_created{cmd.initial_key}},
                    {}};
          },
          [&](const create_access_key& cmd) -> decision_t {
            if (!s.exists)
              return decision_t::refuse("NoSuchEntity", "account " + id + " does not exist");
            if (s.keys.size() >= max_access_keys)
              return decision_t::refuse("LimitExceeded",
                                        "account " + id + " already has " +
                                            std::to_string(max_access_keys) +
                                            " access keys; delete one first");
            if (has_key(s, cmd.key.access_key_id))
              return decision_t::refuse("EntityAlreadyExists",
                                        "access key " + cmd.key.access_key_id + " already exists");
            return {{access_key_created{cmd.key}}, {}};
          },
          [&](const delete_access_key& cmd) -> decision_t {
            if (!s.exists || !has_key(s, cmd.access_key_id))
              return decision_t::refuse("NoSuchEntity", "access key " + cmd.access_key_id +
                                                            " does not exist in account " + id);
            return {{access_key_deleted{cmd.access_key_id}}, {}};
          },
      },
      c);
}

state aggregate::apply(state s, const event& e) {
  std::visit(overloaded{
                 [&](const account_created& ev) {
                   s.exists = true;
                   s.account_id = ev.account_id;
                   s.name = ev.name;
                   s.admin = ev.admin;
                 },
                 [&](const access_key_created& ev) { s.keys.push_back(ev.key); },
                 [&](const access_key_deleted& ev) {
                   std::erase_if(s.keys, [&](const access_key& k) {
                     return k.access_key_id == ev.access_key_id;
                   });
                 },
             },
             e);
  return s;
}

// ---- Codec. Types and payload fields are the stored format: never rename;
// add an upcaster in decode() when a schema_version changes.

persistence::new_event aggregate::encode(const event& e) {
  return std::visit(
      overloaded{
          [](const account_created& ev) {
            return persistence::new_event{
                "account_created", 1,
                json{{"account_id", ev.account_id}, {"name", ev.name}, {"admin", ev.admin}}
                    .dump()};
          },
          [](const access_key_created& ev) {
            return persistence::new_event{"access_key_created", 1, key_json(ev.key).dump()};
          },
          [](const access_key_deleted& ev) {
            return persistence::new_event{"access_key_deleted", 1,
                                          json{{"access_key_id", ev.access_key_id}}.dump()};
          },
      },
      e);
}

status aggregate::decode(const persistence::event_record& r, event& out) {
  return decode_json_event(r, kind, [&](const json& j) {
    if (r.type == "account_created")
      out = account_created{j.at("account_id").get<std::string>(), j.at("name").get<std::string>(),
                            j.value("admin", false)};
    else if (r.type == "access_key_created")
      out = access_key_created{key_from(j)};
    else if (r.type == "access_key_deleted")
      out = access_key_deleted{j.at("access_key_id").get<std::string>()};
    else
      return false;
    return true;
  });
}

std::string aggregate::save(const state& s) {
  json keys = json::array();
  for (const auto& k : s.keys) keys.push_back(key_json(k));
  return json{{"exists", s.exists},
              {"account_id", s.account_id},
              {"name", s.name},
              {"admin", s.admin},
              {"keys", keys}}
      .dump();
}

bool aggregate::load(const std::string& text, state& s) {
  return load_json_snapshot(text, [&](const json& j) {
    s.exists = j.at("exists").get<bool>();
    s.account_id = j.at("account_id").get<std::string>();
    s.name = j.at("name").get<std::string>();
    s.admin = j.at("admin").get<bool>();
    s.keys.clear();
    for (const auto& k : j.at("keys")) s.keys.push_back(key_from(k));
  });
}

std::string new_account_id() {
  auto id = random_chars(12, "0123456789");
  if (id[0] == '0') id[0] = '1';  // keep ids 12 significant digits, as AWS shows them
  return id;
}

access_key new_access_key() {
  return {"AKIA" + random_chars(16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"),
          random_chars(40, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")};
}

}  // namespace kumo::actors::account
