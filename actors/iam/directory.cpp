#include "actors/iam/directory.h"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

namespace kumo::actors::iam {

using json = nlohmann::json;

const user_state* directory::user(const std::string& name) const {
  for (const auto& u : users)
    if (u.user_name == name) return &u;
  return nullptr;
}

const group_state* directory::group(const std::string& name) const {
  for (const auto& g : groups)
    if (g.group_name == name) return &g;
  return nullptr;
}

std::vector<const group_state*> directory::groups_of(const std::string& user_name) const {
  std::vector<const group_state*> out;
  for (const auto& g : groups)
    if (g.members.count(user_name)) out.push_back(&g);
  return out;
}

void directory_model::index_keys(const std::string& id, const user_state& s, bool add) {
  for (const auto& k : s.keys)
    if (add)
      keys_[k.access_key_id] = id;
    else
      keys_.erase(k.access_key_id);
}

namespace {

template <class A>
bool fold(std::map<std::string, typename A::state>& states, const persistence::event_record& r,
          const std::string& id, typename A::state& before, typename A::state& after) {
  typename A::event ev;
  if (auto s = A::decode(r, ev); !s.ok()) {
    spdlog::error("iam view: skipping event #{} ({}): {}", r.global_seq, r.stream, s.message);
    return false;
  }
  auto it = states.find(id);
  before = it == states.end() ? typename A::state{} : it->second;
  after = A::apply(before, ev);
  if (after.exists)
    states[id] = after;
  else
    states.erase(id);
  return true;
}

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

}  // namespace

void directory_model::apply(const persistence::event_record& r) {
  if (starts_with(r.stream, "user/")) {
    auto id = r.stream.substr(5);
    user_state before, after;
    if (!fold<user_aggregate>(users_, r, id, before, after)) return;
    index_keys(id, before, false);
    index_keys(id, after, true);
  } else if (starts_with(r.stream, "group/")) {
    group_state before, after;
    fold<group_aggregate>(groups_, r, r.stream.substr(6), before, after);
  } else if ((starts_with(r.stream, "instance/") || starts_with(r.stream, "image/")) && r.stream_seq == 1) {
    owners_[r.stream.substr(r.stream.find('/') + 1)] = r.principal;
  }
}

std::string directory_model::save() const {
  json users = json::object(), groups = json::object();
  for (const auto& [id, s] : users_) users[id] = user_aggregate::save(s);
  for (const auto& [id, s] : groups_) groups[id] = group_aggregate::save(s);
  return json{{"users", users}, {"groups", groups}, {"owners", owners_}}.dump();
}

bool directory_model::load(const std::string& text) {
  auto j = json::parse(text, nullptr, false);
  if (!j.is_object()) return false;
  directory_model m;
  try {
    for (const auto& [id, saved] : j.at("users").items()) {
      user_state s;
      if (!user_aggregate::load(saved.get<std::string>(), s)) return false;
      m.index_keys(id, s, true);
      m.users_[id] = std::move(s);
    }
    for (const auto& [id, saved] : j.at("groups").items())
      if (!group_aggregate::load(saved.get<std::string>(), m.groups_[id])) return false;
    m.owners_ = j.at("owners").get<std::map<std::string, std::string>>();
  } catch (const json::exception&) {
    return false;
  }
  *this = std::move(m);
  return true;
}

std::optional<caller_identity> directory_model::find_key(const std::string& access_key_id) const {
  auto k = keys_.find(access_key_id);
  if (k == keys_.end()) return std::nullopt;
  const auto& u = users_.at(k->second);
  caller_identity out;
  out.account_id = u.account_id;
  out.user_name = u.user_name;
  out.user_arn = user_arn(u.account_id, u.spec.path, u.user_name);
  for (const auto& key : u.keys)
    if (key.access_key_id == access_key_id) out.key = key;
  // The user's own policies, then those of every group it belongs to.
  for (const auto& [n, doc] : u.policies) out.policies.push_back(doc);
  const auto prefix = u.account_id + "/";
  for (auto it = groups_.lower_bound(prefix); it != groups_.end() && starts_with(it->first, prefix.c_str()); ++it)
    if (it->second.members.count(u.user_name))
      for (const auto& [n, doc] : it->second.policies) out.policies.push_back(doc);
  return out;
}

directory directory_model::of_account(const std::string& account_id) const {
  directory d;
  const auto prefix = account_id + "/";
  for (auto it = users_.lower_bound(prefix); it != users_.end() && starts_with(it->first, prefix.c_str()); ++it)
    d.users.push_back(it->second);
  for (auto it = groups_.lower_bound(prefix); it != groups_.end() && starts_with(it->first, prefix.c_str()); ++it)
    d.groups.push_back(it->second);
  for (auto it = owners_.lower_bound(prefix); it != owners_.end() && starts_with(it->first, prefix.c_str()); ++it)
    d.resource_owners[it->first.substr(prefix.size())] = it->second;
  return d;
}

directory directory_model::of_user(const std::string& account_id, const std::string& user_name) const {
  directory d;
  const auto prefix = account_id + "/";
  if (auto u = users_.find(member_id(account_id, user_name)); u != users_.end()) d.users.push_back(u->second);
  for (auto it = groups_.lower_bound(prefix); it != groups_.end() && starts_with(it->first, prefix.c_str()); ++it)
    if (it->second.members.count(user_name)) d.groups.push_back(it->second);
  for (auto it = owners_.lower_bound(prefix); it != owners_.end() && starts_with(it->first, prefix.c_str()); ++it)
    d.resource_owners[it->first.substr(prefix.size())] = it->second;
  return d;
}

}  // namespace kumo::actors::iam
