// A read model that holds the current state of every aggregate of one kind,
// folded with the aggregate's own pure apply(): Describe* for per-account
// resources reads it. Aggregate ids must start with "<account id>/".
// Include only from .cpp files (pulls in nlohmann/json and spdlog).
#pragma once

#include "persistence/event_store.h"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <map>
#include <string>
#include <vector>

namespace kumo::actors {

template <class A>
class aggregate_view {
 public:
  static constexpr uint32_t state_version = 1;

  void apply(const persistence::event_record& r) {
    static const std::string prefix = std::string(A::kind) + "/";
    if (r.stream.compare(0, prefix.size(), prefix) != 0) return;
    typename A::event ev;
    if (auto s = A::decode(r, ev); !s.ok()) {
      spdlog::error("{} view: skipping event #{} ({}): {}", A::kind, r.global_seq, r.stream, s.message);
      return;
    }
    auto id = r.stream.substr(prefix.size());
    auto next = A::apply(states_[id], ev);
    if (next.exists)
      states_[id] = std::move(next);
    else
      states_.erase(id);
  }

  std::string save() const {
    auto all = nlohmann::json::object();
    for (const auto& [id, s] : states_) all[id] = A::save(s);
    return all.dump();
  }

  bool load(const std::string& text) {
    auto all = nlohmann::json::parse(text, nullptr, false);
    if (!all.is_object()) return false;
    std::map<std::string, typename A::state> states;
    for (const auto& [id, saved] : all.items())
      if (!saved.is_string() || !A::load(saved.template get<std::string>(), states[id])) return false;
    states_ = std::move(states);
    return true;
  }

  const typename A::state* find(const std::string& id) const {
    auto it = states_.find(id);
    return it == states_.end() ? nullptr : &it->second;
  }

  template <class F>
  void for_each(F f) const {
    for (const auto& [id, s] : states_) f(id, s);
  }

  // Every live resource of the account, ordered by aggregate id. Another
  // account's are never returned.
  std::vector<typename A::state> list(const std::string& account_id) const {
    std::vector<typename A::state> out;
    const auto prefix = account_id + "/";
    for (auto it = states_.lower_bound(prefix);
         it != states_.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it)
      out.push_back(it->second);
    return out;
  }

  // Every live resource of any account that `pred` accepts, ordered by
  // aggregate id: for views whose queries cross accounts (shared images).
  template <class Pred>
  std::vector<typename A::state> select(Pred pred) const {
    std::vector<typename A::state> out;
    for (const auto& [id, s] : states_)
      if (pred(s)) out.push_back(s);
    return out;
  }

 private:
  std::map<std::string, typename A::state> states_;  // by aggregate id
};

}  // namespace kumo::actors
