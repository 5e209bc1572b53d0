#include "actors/account/accounts_view.h"

#include "actors/account/account.h"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>

namespace kumo::actors::account {

using json = nlohmann::json;

void accounts_model::apply(const persistence::event_record& r) {
  static const std::string prefix = std::string(aggregate::kind) + "/";
  if (r.stream.compare(0, prefix.size(), prefix) != 0) return;
  event ev;
  if (auto s = aggregate::decode(r, ev); !s.ok()) {
    ++undecodable_;
    spdlog::error("accounts view: skipping event #{} ({}): {}", r.global_seq, r.stream, s.message);
    return;
  }
  auto account_id = r.stream.substr(prefix.size());
  if (auto* created = std::get_if<account_created>(&ev)) {
    accounts_[account_id] = {account_id, created->name, created->admin, {}, r.time_ms};
  } else if (auto* added = std::get_if<access_key_created>(&ev)) {
    accounts_[account_id].access_key_ids.push_back(added->key.access_key_id);
    keys_[added->key.access_key_id] = {account_id, added->key.secret_access_key};
  } else if (auto* removed = std::get_if<access_key_deleted>(&ev)) {
    std::erase(accounts_[account_id].access_key_ids, removed->access_key_id);
    keys_.erase(removed->access_key_id);
  }
}

std::string accounts_model::save() const {
  json accounts = json::array();
  for (const auto& [id, a] : accounts_)
    accounts.push_back({{"account_id", a.account_id},
                        {"name", a.name},
                        {"admin", a.admin},
                        {"created_ms", a.created_ms},
                        {"access_key_ids", a.access_key_ids}});
  json keys = json::object();
  for (const auto& [id, k] : keys_) keys[id] = {{"account_id", k.account_id}, {"secret", k.secret_access_key}};
  return json{{"accounts", accounts}, {"keys", keys}}.dump();
}

bool accounts_model::load(const std::string& text) {
  try {
    auto j = json::parse(text);
    accounts_model m;
    for (const auto& a : j.at("accounts")) {
      account_summary s{a.at("account_id").get<std::string>(), a.at("name").get<std::string>(),
                        a.at("admin").get<bool>(),
                        a.at("access_key_ids").get<std::vector<std::string>>(),
                        a.at("created_ms").get<int64_t>()};
      m.accounts_[s.account_id] = std::move(s);
    }
    for (const auto& [id, k] : j.at("keys").items())
      m.keys_[id] = {k.at("account_id").get<std::string>(), k.at("secret").get<std::string>()};
    *this = std::move(m);
    return true;
  } catch (const json::exception& e) {
    spdlog::warn("accounts view: checkpoint unreadable ({}); rebuilding from the log", e.what());
    return false;
  }
}

std::optional<key_owner> accounts_model::find_key(const std::string& access_key_id) const {
  if (auto it = keys_.find(access_key_id); it != keys_.end()) return it->second;
  return std::nullopt;
}

std::optional<account_summary> accounts_model::find_account(const std::string& account_id) const {
  if (auto it = accounts_.find(account_id); it != accounts_.end()) return it->second;
  return std::nullopt;
}

std::optional<account_summary> accounts_model::admin() const {
  // The first admin created is "the" admin: kumod bootstraps exactly one.
  const account_summary* first = nullptr;
  for (const auto& [id, a] : accounts_)
    if (a.admin && (!first || a.created_ms < first->created_ms)) first = &a;
  if (first) return *first;
  return std::nullopt;
}

std::vector<account_summary> accounts_model::list() const {
  std::vector<account_summary> out;
  out.reserve(accounts_.size());
  for (const auto& [id, a] : accounts_) out.push_back(a);
  return out;
}

}  // namespace kumo::actors::account
