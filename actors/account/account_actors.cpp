#include "actors/account/account_actors.h"

#include "actors/runtime/aggregate.h"
#include "actors/runtime/projection.h"

namespace kumo::actors::account {

using view_actor = caf::stateful_actor<projection_state<accounts_model>>;

namespace {

caf::behavior accounts_view(view_actor* self, persistence::event_store* store,
                            caf::actor journal) {
  return projection_behavior(
      self, store, journal,
      [=](find_key_atom, const std::string& key_id, uint64_t min_gseq) {
        answer_when_applied(self, min_gseq, [self, key_id] {
          return self->state.model.find_key(key_id);
        });
      },
      [=](find_account_atom, const std::string& account_id, uint64_t min_gseq) {
        answer_when_applied(self, min_gseq, [self, account_id] {
          return self->state.model.find_account(account_id);
        });
      },
      [=](admin_atom, uint64_t min_gseq) {
        answer_when_applied(self, min_gseq, [self] { return self->state.model.admin(); });
      },
      [=](list_atom, uint64_t min_gseq) {
        answer_when_applied(self, min_gseq, [self] { return self->state.model.list(); });
      });
}

}  // namespace

caf::actor spawn_registry(caf::actor_system& sys, const caf::actor& journal,
                          persistence::event_store& store) {
  return spawn_aggregate_registry<aggregate>(sys, journal, store);
}

caf::actor spawn_view(caf::actor_system& sys, const caf::actor& journal,
                      persistence::event_store& store) {
  return sys.spawn(accounts_view, &store, journal);
}

struct client::impl {
  caf::scoped_actor self;
  caf::actor registry;
  caf::actor view;
  std::chrono::milliseconds timeout;

  template <class T, class... Ts>
  T ask(const caf::actor& dest, T on_error, Ts&&... xs) {
    T out = std::move(on_error);
    self->request(dest, timeout, std::forward<Ts>(xs)...)
        .receive([&](T& r) { out = std::move(r); },
                 [&](caf::error& err) {
                   auto why = "account service did not answer: " + self->system().render(err);
                   // A command can say so in its reply; a query must not pass
                   // "no answer" off as "not found".
                   if constexpr (std::is_same_v<T, account_reply>)
                     out.error = api_error{"InternalError", why};
                   else
                     throw std::runtime_error(why);
                 });
    return out;
  }
};

client::client(caf::actor_system& sys, caf::actor registry, caf::actor view,
               std::chrono::milliseconds timeout)
    : impl_(new impl{caf::scoped_actor{sys}, std::move(registry), std::move(view), timeout}) {}

client::~client() = default;

account_reply client::send(const std::string& account_id, command cmd, const request_meta& meta) {
  return impl_->ask(impl_->registry, account_reply{}, account_id, std::move(cmd), meta);
}

account_reply client::create(const std::string& name, bool admin, const request_meta& meta) {
  for (int attempt = 0;; ++attempt) {
    auto r = send(new_account_id(), create_account{name, admin, new_access_key()}, meta);
    if (!r.error || r.error->code != "EntityAlreadyExists" || attempt == 3) return r;
  }
}

account_reply client::get(const std::string& account_id) {
  return impl_->ask(impl_->registry, account_reply{}, account_id, get_state_atom::value);
}

std::optional<account_summary> client::admin(uint64_t min_global_seq) {
  return impl_->ask(impl_->view, std::optional<account_summary>{}, admin_atom::value,
                    min_global_seq);
}

std::optional<key_owner> client::find_key(const std::string& access_key_id,
                                          uint64_t min_global_seq) {
  return impl_->ask(impl_->view, std::optional<key_owner>{}, find_key_atom::value, access_key_id,
                    min_global_seq);
}

std::vector<account_summary> client::list(uint64_t min_global_seq) {
  return impl_->ask(impl_->view, std::vector<account_summary>{}, list_atom::value,
                    min_global_seq);
}

}  // namespace kumo::actors::account
