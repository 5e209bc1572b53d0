// Hashes, MACs and hex as kumo uses them (SigV4, IMDSv2 tokens, image
// checksums, id derivation): one place over OpenSSL's libcrypto, a leaf
// library every other folder may use.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace kumo::crypto {

// Lower-case hex of raw bytes, and back (nullopt for odd length or non-hex).
std::string to_hex(std::string_view bytes);
std::optional<std::string> from_hex(std::string_view hex);

std::string sha256_hex(std::string_view data);
// The raw 32-byte MAC, and its hex.
std::string hmac_sha256(std::string_view key, std::string_view data);
std::string hmac_sha256_hex(std::string_view key, std::string_view data);

// Standard base64 with padding (EC2 user data, key material, console output).
std::string base64_encode(std::string_view bytes);
// Nullopt unless `text` is canonical padded base64.
std::optional<std::string> base64_decode(std::string_view text);

// Compares secrets without leaking where they differ through timing.
bool constant_time_equal(std::string_view a, std::string_view b);

}  // namespace kumo::crypto
