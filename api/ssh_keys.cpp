#include "api/ssh_keys.h"

#include "crypto/digest.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/md5.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include <memory>

namespace kumo::api {
namespace {

using pkey_ptr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using bn_ptr = std::unique_ptr<BIGNUM, decltype(&BN_free)>;

// SSH wire format (RFC 4251): uint32 length-prefixed strings and mpints.
void put_u32(std::string& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 0xff));
}
void put_ssh_string(std::string& out, const std::string& s) {
  put_u32(out, static_cast<uint32_t>(s.size()));
  out += s;
}
void put_mpint(std::string& out, const BIGNUM* bn) {
  std::string bytes(static_cast<size_t>(BN_num_bytes(bn)), '\0');
  BN_bn2bin(bn, reinterpret_cast<unsigned char*>(bytes.data()));
  if (!bytes.empty() && (static_cast<unsigned char>(bytes[0]) & 0x80)) bytes.insert(0, 1, '\0');
  put_ssh_string(out, bytes);
}

struct wire_reader {
  std::string_view in;
  bool str(std::string& out) {
    if (in.size() < 4) return false;
    uint32_t n = 0;
    for (int i = 0; i < 4; ++i) n = (n << 8) | static_cast<unsigned char>(in[i]);
    in.remove_prefix(4);
    if (n > in.size()) return false;
    out.assign(in.data(), n);
    in.remove_prefix(n);
    return true;
  }
};

std::string colon_hex(const unsigned char* d, size_t n) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    if (i) out.push_back(':');
    out.push_back(digits[d[i] >> 4]);
    out.push_back(digits[d[i] & 0xf]);
  }
  return out;
}

std::string sha256_base64(const std::string& blob) {
  unsigned char d[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(blob.data()), blob.size(), d);
  return crypto::base64_encode(std::string(reinterpret_cast<char*>(d), sizeof d));
}

std::string ed25519_blob(const std::string& raw_public) {
  std::string blob;
  put_ssh_string(blob, "ssh-ed25519");
  put_ssh_string(blob, raw_public);
  return blob;
}

// The "openssh-key-v1" private key container, unencrypted, as ssh-keygen writes it.
std::string openssh_private_key(const std::string& pub, const std::string& seed) {
  std::string checkint(4, '\0');
  RAND_bytes(reinterpret_cast<unsigned char*>(checkint.data()), 4);
  std::string priv = checkint + checkint;
  put_ssh_string(priv, "ssh-ed25519");
  put_ssh_string(priv, pub);
  put_ssh_string(priv, seed + pub);
  put_ssh_string(priv, "kumo");
  for (char pad = 1; priv.size() % 8; ++pad) priv.push_back(pad);
  std::string body = std::string("openssh-key-v1") + '\0';
  put_ssh_string(body, "none");
  put_ssh_string(body, "none");
  put_ssh_string(body, "");
  put_u32(body, 1);
  put_ssh_string(body, ed25519_blob(pub));
  put_ssh_string(body, priv);
  auto b64 = crypto::base64_encode(body);
  std::string out = "-----BEGIN OPENSSH PRIVATE KEY-----\n";
  for (size_t i = 0; i < b64.size(); i += 70) out += b64.substr(i, 70) + "\n";
  return out + "-----END OPENSSH PRIVATE KEY-----\n";
}

std::optional<std::string> rsa_public_blob(EVP_PKEY* key) {
  BIGNUM *e = nullptr, *n = nullptr;
  if (!EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_E, &e) ||
      !EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_N, &n)) {
    BN_free(e);
    return std::nullopt;
  }
  bn_ptr ep(e, BN_free), np(n, BN_free);
  std::string blob;
  put_ssh_string(blob, "ssh-rsa");
  put_mpint(blob, e);
  put_mpint(blob, n);
  return blob;
}

std::optional<generated_key> generate_rsa() {
  pkey_ptr key(EVP_RSA_gen(2048), EVP_PKEY_free);
  if (!key) return std::nullopt;
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
  if (!PEM_write_bio_PrivateKey_traditional(bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr))
    return std::nullopt;
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  generated_key out;
  out.private_key.assign(data, static_cast<size_t>(len));

  std::unique_ptr<PKCS8_PRIV_KEY_INFO, decltype(&PKCS8_PRIV_KEY_INFO_free)> p8(
      EVP_PKEY2PKCS8(key.get()), PKCS8_PRIV_KEY_INFO_free);
  unsigned char* der = nullptr;
  int der_len = p8 ? i2d_PKCS8_PRIV_KEY_INFO(p8.get(), &der) : -1;
  if (der_len <= 0) return std::nullopt;
  unsigned char d[SHA_DIGEST_LENGTH];
  SHA1(der, static_cast<size_t>(der_len), d);
  OPENSSL_clear_free(der, static_cast<size_t>(der_len));
  out.fingerprint = colon_hex(d, sizeof d);

  auto blob = rsa_public_blob(key.get());
  if (!blob) return std::nullopt;
  out.public_key = "ssh-rsa " + crypto::base64_encode(*blob);
  return out;
}

std::optional<generated_key> generate_ed25519() {
  pkey_ptr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"), EVP_PKEY_free);
  if (!key) return std::nullopt;
  std::string pub(32, '\0'), seed(32, '\0');
  size_t pub_len = 32, seed_len = 32;
  if (!EVP_PKEY_get_raw_public_key(key.get(), reinterpret_cast<unsigned char*>(pub.data()), &pub_len) ||
      !EVP_PKEY_get_raw_private_key(key.get(), reinterpret_cast<unsigned char*>(seed.data()), &seed_len))
    return std::nullopt;
  generated_key out;
  out.private_key = openssh_private_key(pub, seed);
  OPENSSL_cleanse(seed.data(), seed.size());
  out.public_key = "ssh-ed25519 " + crypto::base64_encode(ed25519_blob(pub));
  out.fingerprint = sha256_base64(ed25519_blob(pub));
  return out;
}

}  // namespace

std::optional<generated_key> generate_key(const std::string& type) {
  if (type == "rsa") return generate_rsa();
  if (type == "ed25519") return generate_ed25519();
  return std::nullopt;
}

std::optional<imported_key> import_public_key(const std::string& material, std::string& why) {
  auto first_space = material.find(' ');
  auto type = material.substr(0, first_space);
  if (first_space == std::string::npos || (type != "ssh-rsa" && type != "ssh-ed25519")) {
    why = "Key is not in valid OpenSSH public key format (expected 'ssh-rsa AAAA...' or "
          "'ssh-ed25519 AAAA...')";
    return std::nullopt;
  }
  auto rest = material.substr(first_space + 1);
  auto b64 = rest.substr(0, rest.find_first_of(" \r\n"));
  auto blob = crypto::base64_decode(b64);
  if (!blob) {
    why = "the key data is not valid base64";
    return std::nullopt;
  }
  wire_reader rd{*blob};
  std::string wire_type;
  if (!rd.str(wire_type) || wire_type != type) {
    why = "the key data does not match its type '" + type + "'";
    return std::nullopt;
  }
  imported_key out;
  if (type == "ssh-ed25519") {
    std::string pub;
    if (!rd.str(pub) || pub.size() != 32 || !rd.in.empty()) {
      why = "an ssh-ed25519 key must carry exactly 32 bytes";
      return std::nullopt;
    }
    pkey_ptr key(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr,
                                             reinterpret_cast<const unsigned char*>(pub.data()), 32),
                 EVP_PKEY_free);
    if (!key) {
      why = "not a valid ED25519 public key";
      return std::nullopt;
    }
    out.type = "ed25519";
    out.fingerprint = sha256_base64(*blob);
  } else {
    std::string e, n;
    if (!rd.str(e) || !rd.str(n) || !rd.in.empty()) {
      why = "an ssh-rsa key must carry an exponent and a modulus";
      return std::nullopt;
    }
    bn_ptr be(BN_bin2bn(reinterpret_cast<const unsigned char*>(e.data()), static_cast<int>(e.size()), nullptr), BN_free);
    bn_ptr bn(BN_bin2bn(reinterpret_cast<const unsigned char*>(n.data()), static_cast<int>(n.size()), nullptr), BN_free);
    int bits = bn ? BN_num_bits(bn.get()) : 0;
    if (!be || !bn || bits < 1024 || bits > 16384 || BN_is_zero(be.get())) {
      why = "RSA keys must be 1024 to 16384 bits (this one has " + std::to_string(bits) + ")";
      return std::nullopt;
    }
    std::unique_ptr<OSSL_PARAM_BLD, decltype(&OSSL_PARAM_BLD_free)> bld(OSSL_PARAM_BLD_new(), OSSL_PARAM_BLD_free);
    OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn.get());
    OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, be.get());
    std::unique_ptr<OSSL_PARAM, decltype(&OSSL_PARAM_free)> params(OSSL_PARAM_BLD_to_param(bld.get()), OSSL_PARAM_free);
    std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> ctx(
        EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr), EVP_PKEY_CTX_free);
    EVP_PKEY* raw = nullptr;
    if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) <= 0 ||
        EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) <= 0) {
      why = "not a valid RSA public key";
      return std::nullopt;
    }
    pkey_ptr key(raw, EVP_PKEY_free);
    unsigned char* der = nullptr;
    int der_len = i2d_PUBKEY(key.get(), &der);
    if (der_len <= 0) {
      why = "not a valid RSA public key";
      return std::nullopt;
    }
    unsigned char d[MD5_DIGEST_LENGTH];
    MD5(der, static_cast<size_t>(der_len), d);
    OPENSSL_free(der);
    out.type = "rsa";
    out.fingerprint = colon_hex(d, sizeof d);
  }
  out.public_key = type + " " + b64;
  return out;
}

}  // namespace kumo::api
