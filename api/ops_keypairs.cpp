// CreateKeyPair, ImportKeyPair, DescribeKeyPairs, DeleteKeyPair.
// Commands go to the KeyPair aggregate "<account>/<name>"; reads come from
// the key pairs view, always scoped to the caller's account.
#include "crypto/digest.h"
#include "api/key_generators.h"
#include "api/lookups.h"
#include "api/op_requests.h"
#include "api/ssh_keys.h"

#include "actors/keypair/keypair_actors.h"
#include "persistence/time_format.h"


namespace kumo::api {
namespace {

using namespace actors::keypair;

// Generous: requests queue for the pool while others generate.
constexpr auto key_generation_timeout = std::chrono::seconds(30);

std::optional<std::string> key_name_of(const op_ptr& c) {
  auto name = required(c, "KeyName");
  if (name && !valid_key_name(*name)) {
    c->fail("InvalidParameterValue",
            "Value for parameter KeyName is invalid: 1-255 printable ASCII characters");
    return std::nullopt;
  }
  return name;
}

// Records a new key pair; on success `respond` writes the reply body.
template <class Respond>
void store_key_pair(const op_ptr& c, const std::string& name, create_key_pair key, Respond respond) {
  c->self->request(c->cloud->keypairs, actor_timeout, aggregate_id(c->account_id, name),
                   command{std::move(key)}, c->meta())
      .then(
          [=](keypair_reply& r) {
            if (r.error) return c->fail(r.error->code, r.error->message);
            c->wrote(r.global_seq);
            respond(r.state);
          },
          [=](caf::error& e) { service_unavailable(c, e); });
}

void write_key_summary(xml_writer& w, const state& s) {
  w.leaf("keyFingerprint", s.key.fingerprint).leaf("keyName", s.key_name);
  w.leaf("keyPairId", s.key.key_pair_id);
  write_tag_set(w, s.key.tags);
}

void create_key_pair_op(const op_ptr& c) {
  auto name = key_name_of(c);
  if (!name) return;
  auto type = c->params.get("KeyType").value_or("rsa");
  if (type != "rsa" && type != "ed25519")
    return c->fail("InvalidParameterValue", "Value (" + type.substr(0, 32) +
                                                ") for parameter KeyType is invalid: use rsa or ed25519");
  auto format = c->params.get("KeyFormat").value_or("pem");
  if (format != "pem")
    return c->fail("InvalidParameterValue",
                   "KeyFormat '" + format.substr(0, 32) + "' is not supported by kumo; use pem");
  auto tags = tags_for(c, "key-pair");
  if (!tags) return;
  // On the bounded pool of key generators: RSA costs tens of ms of CPU.
  c->self->request(c->shared->key_generators, key_generation_timeout, generate_key_atom::value, type)
      .then(
          [c, name = *name, type, tags = *tags](generated_key& generated) {
            auto private_key = std::make_shared<std::string>(std::move(generated.private_key));
            store_key_pair(c, name,
                           {new_key_pair_id(), type, generated.fingerprint, generated.public_key,
                            persistence::now_ms(), tags},
                           [c, private_key](const state& s) {
                             xml_writer w;
                             write_key_summary(w, s);
                             w.leaf("keyMaterial", *private_key);  // the only time it is ever shown
                             c->respond(w);
                           });
          },
          [c](caf::error& e) {
            c->fail("InternalError", "key generation failed: " + c->self->system().render(e) + "; retry", 500);
          });
}

void import_key_pair_op(const op_ptr& c) {
  auto name = key_name_of(c);
  if (!name) return;
  auto material = required(c, "PublicKeyMaterial");
  if (!material) return;
  auto tags = tags_for(c, "key-pair");
  if (!tags) return;
  // botocore sends the blob base64-encoded; older tools send the line itself.
  auto text = material->rfind("ssh-", 0) == 0 ? material : crypto::base64_decode(*material);
  std::string why = "the public key material is not base64";
  auto key = text ? import_public_key(*text, why) : std::nullopt;
  if (!key) return c->fail("InvalidKey.Format", why);
  store_key_pair(c, *name,
                 {new_key_pair_id(), key->type, key->fingerprint, key->public_key,
                  persistence::now_ms(), *tags},
                 [c](const state& s) {
                   xml_writer w;
                   write_key_summary(w, s);
                   c->respond(w);
                 });
}

void describe_key_pairs(const op_ptr& c) {
  auto filters = checked_filters(c, {"key-pair-id", "key-name", "fingerprint", "key-type",
                                     "tag-key", "tag-value", "tag:*"});
  if (!filters) return;
  query_error err;
  auto names = c->params.list("KeyName", err);
  auto ids = names ? c->params.list("KeyPairId", err) : std::nullopt;
  auto include_public = c->params.boolean("IncludePublicKey", err);
  if (!names || !ids || !err.code.empty()) return c->fail(err);
  with_key_pairs(c, [=](const std::vector<state>& keys) {
    auto has = [&](const std::string& what, bool by_id) {
      return std::any_of(keys.begin(), keys.end(), [&](const state& s) {
        return (by_id ? s.key.key_pair_id : s.key_name) == what;
      });
    };
    for (const auto& n : *names)
      if (!has(n, false)) return c->fail("InvalidKeyPair.NotFound", "The key pair '" + n + "' does not exist");
    for (const auto& id : *ids)
      if (!has(id, true)) return c->fail("InvalidKeyPair.NotFound", "The key pair ID '" + id + "' does not exist");
    xml_writer w;
    w.open("keySet");
    for (const auto& s : keys) {
      if (!listed(*names, s.key_name) || !listed(*ids, s.key.key_pair_id)) continue;
      if (!matches(*filters, [&](const std::string& f) -> std::vector<std::string> {
            if (f == "key-pair-id") return {s.key.key_pair_id};
            if (f == "key-name") return {s.key_name};
            if (f == "fingerprint") return {s.key.fingerprint};
            if (f == "key-type") return {s.key.key_type};
            return tag_filter_values(f, s.key.tags);
          }))
        continue;
      w.open("item").leaf("keyPairId", s.key.key_pair_id).leaf("keyFingerprint", s.key.fingerprint);
      w.leaf("keyName", s.key_name).leaf("keyType", s.key.key_type);
      write_tag_set(w, s.key.tags);
      if (include_public.value_or(false)) w.leaf("publicKey", s.key.public_key);
      w.leaf("createTime", iso_time(s.key.created_ms)).close("item");
    }
    w.close("keySet");
    c->respond(w);
  });
}

void delete_by_name(const op_ptr& c, const std::string& name) {
  c->self->request(c->cloud->keypairs, actor_timeout, aggregate_id(c->account_id, name),
                   command{delete_key_pair{}}, c->meta())
      .then(
          [=](keypair_reply& r) {
            if (r.error) return c->fail(r.error->code, r.error->message);
            c->wrote(r.global_seq);
            xml_writer w;
            w.leaf("return", "true");
            c->respond(w);
          },
          [=](caf::error& e) { service_unavailable(c, e); });
}

void delete_key_pair_op(const op_ptr& c) {
  auto name = c->params.get("KeyName");
  auto id = c->params.get("KeyPairId");
  if (!name && !id)
    return c->fail("MissingParameter", "The request must contain the parameter KeyName or KeyPairId");
  if (name) {
    if (!valid_key_name(*name))
      return c->fail("InvalidParameterValue", "Value for parameter KeyName is invalid");
    return delete_by_name(c, *name);
  }
  with_key_pairs(c, [=](const std::vector<state>& keys) {
    for (const auto& s : keys)
      if (s.key.key_pair_id == *id) return delete_by_name(c, s.key_name);
    c->fail("InvalidKeyPair.NotFound", "The key pair ID '" + *id + "' does not exist");
  });
}

}  // namespace

void register_keypair_ops(op_table& t) {
  t["CreateKeyPair"] = {create_key_pair_op};
  t["ImportKeyPair"] = {import_key_pair_op};
  t["DescribeKeyPairs"] = {describe_key_pairs};
  t["DeleteKeyPair"] = {delete_key_pair_op};
}

}  // namespace kumo::api
