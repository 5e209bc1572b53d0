#include "actors/ldap/ldap_actors.h"

#include "actors/iam/iam_actors.h"
#include "actors/ids.h"
#include "persistence/time_format.h"

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

namespace kumo::actors::ldap {
namespace {

constexpr auto ask_timeout = std::chrono::seconds(30);

struct ldap_state {
  ldap_config cfg;
  caf::actor users, groups, view;
  uint64_t last_write = 0;  // read the view no older than our own writes
  static inline const char* name = "ldap";
};

using ldap_actor = caf::stateful_actor<ldap_state>;

std::optional<iam::directory> read_kumo(ldap_actor* self, std::string& error) {
  caf::scoped_actor blocking{self->system()};
  std::optional<iam::directory> out;
  blocking->request(self->state.view, ask_timeout, iam_dir_atom::value, self->state.cfg.account_id, self->state.last_write)
      .receive([&](iam::directory& d) { out = std::move(d); },
               [&](caf::error& e) { error = "the IAM directory did not answer: " + self->system().render(e); });
  return out;
}

// Sends one command and waits for it to be durable.
template <class Reply, class Command>
std::optional<api_error> run(ldap_actor* self, const caf::actor& registry, const std::string& name, Command cmd,
                             const request_meta& meta) {
  caf::scoped_actor blocking{self->system()};
  std::optional<api_error> err;
  blocking->request(registry, ask_timeout, iam::member_id(self->state.cfg.account_id, name), std::move(cmd), meta)
      .receive(
          [&](Reply& r) {
            if (r.error) err = r.error;
            self->state.last_write = std::max(self->state.last_write, r.global_seq);
          },
          [&](caf::error& e) { err = api_error{"ServiceUnavailable", self->system().render(e)}; });
  return err;
}

std::optional<api_error> apply_step(ldap_actor* self, const sync_step& s, const request_meta& meta) {
  const auto now = persistence::now_ms();
  switch (s.what) {
    case sync_step::create_user:
      return run<iam::user_reply>(self, self->state.users, s.name,
                                  iam::user_command{iam::create_user{iam::new_user_id(), "/", now, "ldap", s.dn}}, meta);
    case sync_step::create_group:
      return run<iam::group_reply>(self, self->state.groups, s.name,
                                   iam::group_command{iam::create_group{iam::new_group_id(), "/", now, "ldap", s.dn}}, meta);
    case sync_step::add_member:
      return run<iam::group_reply>(self, self->state.groups, s.name, iam::group_command{iam::add_member{s.user}}, meta);
    case sync_step::remove_member:
      return run<iam::group_reply>(self, self->state.groups, s.name, iam::group_command{iam::remove_member{s.user}}, meta);
    case sync_step::delete_group:
      return run<iam::group_reply>(self, self->state.groups, s.name, iam::group_command{iam::delete_group{true}}, meta);
    case sync_step::delete_user:
      return run<iam::user_reply>(self, self->state.users, s.name, iam::user_command{iam::delete_user{true}}, meta);
  }
  return std::nullopt;
}

sync_report sync(ldap_actor* self, const request_meta& meta) {
  sync_report report;
  const auto& cfg = self->state.cfg;
  std::string error;
  // The whole directory first: if LDAP fails half-way, nothing is written.
  auto snap = read_directory(cfg, error);
  if (!snap) {
    spdlog::warn("rid={} ldap sync: nothing changed: {}", meta.request_id, error);
    report.error = api_error{"ServiceUnavailable", "LDAP sync changed nothing: " + error};
    return report;
  }
  auto kumo = read_kumo(self, error);
  if (!kumo) {
    report.error = api_error{"ServiceUnavailable", "LDAP sync changed nothing: " + error};
    return report;
  }
  auto plan = plan_sync(*snap, *kumo);
  report.skipped = plan.skipped;
  for (const auto& why : plan.skipped) spdlog::warn("rid={} ldap sync: skipped {}", meta.request_id, why);
  for (const auto& step : plan.steps) {
    if (auto err = apply_step(self, step, meta)) {
      spdlog::error("rid={} ldap sync: {} {} {} failed: {}", meta.request_id, name_of(step.what), step.name, step.user,
                    err->message);
      report.error = api_error{err->code, "LDAP sync stopped after " + std::to_string(report.applied.size()) +
                                              " of " + std::to_string(plan.steps.size()) + " changes (" +
                                              name_of(step.what) + " " + step.name + ": " + err->message +
                                              "); the next sync finishes it"};
      break;
    }
    spdlog::info("rid={} ldap sync: {} {} {}", meta.request_id, name_of(step.what), step.name, step.user);
    report.applied.push_back(step);
  }
  report.global_seq = self->state.last_write;
  spdlog::info("rid={} ldap sync: {} users, {} groups in LDAP; {} changes applied", meta.request_id, snap->users.size(),
               snap->groups.size(), report.applied.size());
  return report;
}

login_reply login(ldap_actor* self, const std::string& user, const std::string& password, const request_meta& meta) {
  login_reply out;
  const auto& cfg = self->state.cfg;
  std::string dn, error;
  switch (check_password(cfg, user, password, dn, error)) {
    case password_check::rejected:
      spdlog::info("rid={} ldap login of '{}' refused: {}", meta.request_id, user, error);
      out.error = api_error{"AuthFailure", "LDAP login failed for '" + user + "': wrong user name or password"};
      return out;
    case password_check::unavailable:
      spdlog::warn("rid={} ldap login of '{}': directory unavailable: {}", meta.request_id, user, error);
      out.error = api_error{"ServiceUnavailable", "the LDAP directory cannot be reached: " + error +
                                                      "; existing access keys keep working"};
      return out;
    case password_check::ok:
      break;
  }
  auto find = [&]() -> std::optional<iam::user_state> {
    auto d = read_kumo(self, error);
    if (!d) return std::nullopt;
    const auto* u = d->user(user);
    if (!u || u->spec.source != "ldap") return std::nullopt;
    return *u;
  };
  auto u = find();
  if (!u) {  // in LDAP but not mirrored yet: sync, then look again
    auto report = sync(self, meta);
    if (!report.error) u = find();
  }
  if (!u) {
    out.error = api_error{"AuthFailure", "LDAP user '" + user + "' is not mirrored into kumo (" +
                                             (error.empty() ? "not a valid IAM user name, or an IAM user of that name exists" : error) + ")"};
    return out;
  }
  const auto now = persistence::now_ms();
  auto key = iam::new_temporary_key(now, now + int64_t{cfg.session_seconds} * 1000);
  if (auto err = run<iam::user_reply>(self, self->state.users, user,
                                      iam::user_command{iam::issue_temporary_key{key, now}}, meta)) {
    out.error = err;
    return out;
  }
  spdlog::info("rid={} ldap login: {} ({}) got temporary key {} until {}", meta.request_id, user, dn,
               key.access_key_id, persistence::format_time(key.expires_ms));
  out.account_id = cfg.account_id;
  out.user_name = user;
  out.user_arn = iam::user_arn(cfg.account_id, u->spec.path, user);
  out.key = key;
  out.global_seq = self->state.last_write;
  return out;
}

caf::behavior ldap_behavior(ldap_actor* self, ldap_config cfg, caf::actor users, caf::actor groups, caf::actor view) {
  self->state.cfg = std::move(cfg);
  self->state.users = std::move(users);
  self->state.groups = std::move(groups);
  self->state.view = std::move(view);
  const auto every = std::chrono::seconds(self->state.cfg.sync_seconds);
  if (self->state.cfg.sync_seconds) self->delayed_send(self, std::chrono::seconds(1), tick_atom::value);
  return {
      [=](ldap_sync_atom, const request_meta& meta) { return sync(self, meta); },
      [=](ldap_login_atom, const std::string& user, const std::string& password, const request_meta& meta) {
        return login(self, user, password, meta);
      },
      [=](tick_atom) {
        sync(self, {"kumo:ldap-sync", "sync-" + random_chars(12, "0123456789abcdef")});
        self->delayed_send(self, every, tick_atom::value);
      },
  };
}

}  // namespace

caf::actor spawn_ldap(caf::actor_system& sys, ldap_config cfg, caf::actor users, caf::actor groups,
                      caf::actor iam_view) {
  return sys.spawn<caf::detached>(ldap_behavior, std::move(cfg), std::move(users), std::move(groups),
                                  std::move(iam_view));
}

}  // namespace kumo::actors::ldap
