#include "actors/keypair/keypairs_view.h"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

namespace kumo::actors::keypair {

void keypairs_model::apply(const persistence::event_record& r) {
  static const std::string prefix = std::string(aggregate::kind) + "/";
  if (r.stream.compare(0, prefix.size(), prefix) != 0) return;
  event ev;
  if (auto s = aggregate::decode(r, ev); !s.ok()) {
    spdlog::error("keypairs view: skipping event #{} ({}): {}", r.global_seq, r.stream, s.message);
    return;
  }
  if (auto* created = std::get_if<key_pair_created>(&ev)) {
    by_account_[created->account_id][created->key_name] =
        aggregate::apply({}, *created);
  } else {
    auto id = r.stream.substr(prefix.size());
    auto acct = by_account_.find(id.substr(0, 12));
    if (acct != by_account_.end()) acct->second.erase(id.substr(13));
  }
}

std::string keypairs_model::save() const {
  auto all = nlohmann::json::array();
  for (const auto& [acct, keys] : by_account_)
    for (const auto& [name, s] : keys) all.push_back(nlohmann::json::parse(aggregate::save(s)));
  return all.dump();
}

bool keypairs_model::load(const std::string& text) {
  keypairs_model m;
  auto all = nlohmann::json::parse(text, nullptr, false);
  if (!all.is_array()) return false;
  for (const auto& j : all) {
    state s;
    if (!aggregate::load(j.dump(), s)) return false;
    m.by_account_[s.account_id][s.key_name] = s;
  }
  *this = std::move(m);
  return true;
}

std::vector<state> keypairs_model::list(const std::string& account_id) const {
  std::vector<state> out;
  if (auto it = by_account_.find(account_id); it != by_account_.end())
    for (const auto& [name, s] : it->second) out.push_back(s);
  return out;
}

}  // namespace kumo::actors::keypair
