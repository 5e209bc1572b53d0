// SSH key pairs with OpenSSL libcrypto, in the formats and with the
// fingerprints EC2 uses:
//   created RSA     -> PKCS#1 PEM private key; fingerprint = SHA-1 of the
//                      PKCS#8 DER private key, hex with colons
//   created ED25519 -> OpenSSH private key; fingerprint = base64 SHA-256 of
//                      the OpenSSH public key blob
//   imported RSA    -> fingerprint = MD5 of the DER public key, hex with colons
//   imported ED25519-> as created
#pragma once

#include <optional>
#include <string>

namespace kumo::api {

struct generated_key {
  std::string private_key;  // returned to the caller once, never stored
  std::string public_key;   // OpenSSH one-line format: "ssh-rsa AAAA..."
  std::string fingerprint;
};

struct imported_key {
  std::string type;        // "rsa" or "ed25519"
  std::string public_key;  // normalised OpenSSH format, without comment
  std::string fingerprint;
};

// type: "rsa" (2048 bits) or "ed25519". Nullopt only if libcrypto fails.
std::optional<generated_key> generate_key(const std::string& type);

// Accepts an OpenSSH public key line ("ssh-rsa AAAA... comment" or
// "ssh-ed25519 AAAA..."). Nullopt with `why` on anything else.
std::optional<imported_key> import_public_key(const std::string& material, std::string& why);


}  // namespace kumo::api
