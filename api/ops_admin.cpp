// kumo's own administrative actions on the EC2 endpoint, for the operator
// (kumoctl) and tests: KumoCreateAccount, KumoListAccounts,
// KumoCreateAccessKey, KumoDeleteAccessKey. Signed like every call, and only
// the admin account may use them (others get UnauthorizedOperation).
#include "api/op_requests.h"

#include "actors/account/account_actors.h"


namespace kumo::api {
namespace {

using namespace actors::account;

// Sends a command to an account and answers with `write(reply)` on success.
template <class Write>
void command_account(const op_ptr& c, const std::string& account_id, command cmd, Write write) {
  c->self->request(c->cloud->accounts, actor_timeout, account_id, std::move(cmd), c->meta())
      .then(
          [=](account_reply& r) {
            if (r.error) return c->fail(r.error->code, r.error->message);
            c->wrote(r.global_seq);
            xml_writer w;
            write(w, r);
            c->respond(w);
          },
          [=](caf::error& e) { service_unavailable(c, e); });
}

void write_key(xml_writer& w, const access_key& k) {
  w.leaf("accessKeyId", k.access_key_id).leaf("secretAccessKey", k.secret_access_key);
}

void create_account_op(const op_ptr& c) {
  auto name = required(c, "AccountName");
  if (!name) return;
  as_admin(c, [=] {
    auto key = new_access_key();
    command_account(c, new_account_id(), create_account{*name, false, key},
                    [key](xml_writer& w, const account_reply& r) {
                      w.leaf("accountId", r.state.account_id).leaf("accountName", r.state.name);
                      write_key(w, key);
                    });
  });
}

void list_accounts_op(const op_ptr& c) {
  as_admin(c, [=] {
    c->self->request(c->cloud->accounts_view, actor_timeout, actors::list_atom::value, c->read_floor())
        .then(
            [=](std::vector<account_summary>& all) {
              xml_writer w;
              w.open("accountSet");
              for (const auto& a : all) {
                w.open("item").leaf("accountId", a.account_id).leaf("accountName", a.name);
                w.leaf("admin", a.admin ? "true" : "false").leaf("createTime", iso_time(a.created_ms));
                w.open("accessKeyIdSet");
                for (const auto& k : a.access_key_ids) w.open("item").leaf("accessKeyId", k).close("item");
                w.close("accessKeyIdSet").close("item");
              }
              w.close("accountSet");
              c->respond(w);
            },
            [=](caf::error& e) { service_unavailable(c, e); });
  });
}

void create_access_key_op(const op_ptr& c) {
  auto account = required(c, "AccountId");
  if (!account) return;
  as_admin(c, [=] {
    auto key = new_access_key();
    command_account(c, *account, create_access_key{key}, [key](xml_writer& w, const account_reply& r) {
      w.leaf("accountId", r.state.account_id);
      write_key(w, key);
    });
  });
}

void delete_access_key_op(const op_ptr& c) {
  auto account = required(c, "AccountId");
  auto key = account ? required(c, "AccessKeyId") : std::nullopt;
  if (!key) return;
  as_admin(c, [=] {
    command_account(c, *account, delete_access_key{*key},
                    [](xml_writer& w, const account_reply&) { w.leaf("return", "true"); });
  });
}

}  // namespace

void register_admin_ops(op_table& t) {
  t["KumoCreateAccount"] = {create_account_op, false};
  t["KumoListAccounts"] = {list_accounts_op, false};
  t["KumoCreateAccessKey"] = {create_access_key_op, false};
  t["KumoDeleteAccessKey"] = {delete_access_key_op, false};
}

}  // namespace kumo::api
