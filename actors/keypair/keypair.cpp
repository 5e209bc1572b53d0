#include "actors/keypair/keypair.h"

#include "actors/ids.h"
#include "actors/runtime/json_codec.h"

#include <nlohmann/json.hpp>

#include <algorithm>

namespace kumo::actors::keypair {

using json = nlohmann::json;
using persistence::status;
using decision_t = decision<aggregate>;

bool valid_key_name(const std::string& name) {
  return !name.empty() && name.size() <= 255 &&
         std::all_of(name.begin(), name.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
}

std::string aggregate_id(const std::string& account_id, const std::string& key_name) {
  return account_id + "/" + key_name;
}

std::string new_key_pair_id() { return new_resource_id("key"); }

bool aggregate::valid_id(const std::string& id) {
  auto slash = id.find('/');
  return slash == 12 &&
         std::all_of(id.begin(), id.begin() + 12, [](char c) { return c >= '0' && c <= '9'; }) &&
         valid_key_name(id.substr(13));
}

decision_t aggregate::decide(const std::string& id, const state& s, const command& c) {
  const auto name = id.substr(13);
  return std::visit(
      overloaded{
          [&](const create_key_pair& cmd) -> decision_t {
            if (s.exists)
              return decision_t::refuse("InvalidKeyPair.Duplicate",
                                        "The keypair '" + name + "' already exists.");
            if (cmd.key_type != "rsa" && cmd.key_type != "ed25519")
              return decision_t::refuse("InvalidParameterValue",
                                        "KeyType must be rsa or ed25519, not '" + cmd.key_type + "'");
            return {{key_pair_created{id.substr(0, 12), name, cmd}}, {}};
          },
          [&](const delete_key_pair&) -> decision_t {
            if (!s.exists) return {};  // EC2 answers success for a missing key name
            return {{key_pair_deleted{s.key.key_pair_id}}, {}};
          },
          [&](const change_tags& cmd) -> decision_t {
            if (!s.exists)
              return decision_t::refuse("InvalidKeyPair.NotFound", "The key pair '" + name + "' does not exist");
            if (auto err = check_tag_change(s.key.tags, cmd)) return {{}, err};
            return {{tags_changed{cmd.set, cmd.remove}}, {}};
          },
      },
      c);
}

state aggregate::apply(state s, const event& e) {
  std::visit(overloaded{
                 [&](const key_pair_created& ev) {
                   s.exists = true;
                   s.account_id = ev.account_id;
                   s.key_name = ev.key_name;
                   s.key = ev.key;
                 },
                 [&](const key_pair_deleted&) {
                   s.exists = false;
                   s.key = {};
                 },
                 [&](const tags_changed& ev) { s.key.tags = apply_tag_change(std::move(s.key.tags), ev); },
             },
             e);
  return s;
}

namespace {

json key_json(const create_key_pair& k) {
  return {{"key_pair_id", k.key_pair_id}, {"key_type", k.key_type},
          {"fingerprint", k.fingerprint}, {"public_key", k.public_key},
          {"created_ms", k.created_ms},   {"tags", tags_to_json(k.tags)}};
}

create_key_pair key_from(const json& j) {
  return {j.at("key_pair_id").get<std::string>(), j.at("key_type").get<std::string>(),
          j.at("fingerprint").get<std::string>(), j.at("public_key").get<std::string>(),
          j.at("created_ms").get<int64_t>(),      tags_from_json(j.at("tags"))};
}

}  // namespace

persistence::new_event aggregate::encode(const event& e) {
  return std::visit(
      overloaded{
          [](const key_pair_created& ev) {
            auto j = key_json(ev.key);
            j["account_id"] = ev.account_id;
            j["key_name"] = ev.key_name;
            return persistence::new_event{"key_pair_created", 1, j.dump()};
          },
          [](const key_pair_deleted& ev) {
            return persistence::new_event{"key_pair_deleted", 1,
                                          json{{"key_pair_id", ev.key_pair_id}}.dump()};
          },
          [](const tags_changed& ev) {
            return persistence::new_event{"tags_changed", 1, tag_change_to_json(ev).dump()};
          },
      },
      e);
}

status aggregate::decode(const persistence::event_record& r, event& out) {
  return decode_json_event(r, kind, [&](const json& j) {
    if (r.type == "key_pair_created")
      out = key_pair_created{j.at("account_id").get<std::string>(),
                             j.at("key_name").get<std::string>(), key_from(j)};
    else if (r.type == "key_pair_deleted")
      out = key_pair_deleted{j.at("key_pair_id").get<std::string>()};
    else if (r.type == "tags_changed")
      out = tag_change_from_json(j);
    else
      return false;
    return true;
  });
}

std::string aggregate::save(const state& s) {
  return json{{"exists", s.exists}, {"account_id", s.account_id}, {"key_name", s.key_name},
              {"key", key_json(s.key)}}
      .dump();
}

bool aggregate::load(const std::string& text, state& s) {
  return load_json_snapshot(text, [&](const json& j) {
    s.exists = j.at("exists").get<bool>();
    s.account_id = j.at("account_id").get<std::string>();
    s.key_name = j.at("key_name").get<std::string>();
    s.key = key_from(j.at("key"));
  });
}

}  // namespace kumo::actors::keypair
