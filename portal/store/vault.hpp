// The portal's cryptography, in one place. A deposited message is readable
// only with the secret in the link sent to its recipient:
//
//   token        32 random bytes, base64url (43 characters): only in the link
//   lookup key   HKDF-SHA256(token, "lookup"): what the store finds the entry by
//   link key     HKDF-SHA256(token, "link key"): wraps the content key
//   content key  32 fresh random bytes per recipient: AES-256-GCM over the message
//
// The store keeps the lookup key, the wrapped content key and the ciphertext:
// a copy of it (and of every config file) reveals metadata only. With the
// optional master key (portal.master_key) the content key is also wrapped
// under it, so that an operator can issue a new link for a lost one.
//
// Also here: the one-time codes (6 digits; the store keeps an HMAC keyed by
// the browser session that asked, so a copy of the store cannot test guesses),
// and the sealed box the portal process uses to hand the gateway a code or a
// reply to send (X25519 + HKDF + AES-256-GCM: only the gateway opens it).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/text.hpp"

namespace sealgate::portal {

std::string random_bytes(size_t n);
using sealgate::base64url_decode;  // common/text.hpp
using sealgate::base64url_encode;
std::string hex(std::string_view bytes);
// CRYPTO_memcmp; false for different lengths (lengths are not secret here).
bool equal_constant_time(std::string_view a, std::string_view b);
std::string hmac_sha256(std::string_view key, std::string_view data);
std::string sha256(std::string_view data);

// A link secret: 256 bits as 43 base64url characters.
std::string new_token();
// True for 43 base64url characters: anything else is refused before the store is asked.
bool token_shape_ok(std::string_view token);
// Hex of HKDF-SHA256(token, "sealgate portal lookup v1"), 64 characters.
std::string lookup_key(std::string_view token);

// AES-256-GCM with a random 96-bit nonce: nonce || ciphertext || tag.
std::string aead_seal(std::string_view key, std::string_view plaintext, std::string_view aad);
std::optional<std::string> aead_open(std::string_view key, std::string_view sealed, std::string_view aad);

struct sealed_message {
  std::string body;        // aead_seal(content key, message, aad)
  std::string link_wrap;   // aead_seal(link key, content key, aad)
  std::string master_wrap; // aead_seal(master key, content key, aad); empty without a master key
};
// aad binds the ciphertext to its entry (the lookup key): a body moved to
// another entry does not open. master_key: 32 bytes or empty.
sealed_message seal_message(std::string_view message, std::string_view token, std::string_view aad,
                            std::string_view master_key = {});
std::optional<std::string> open_message(const sealed_message& m, std::string_view token, std::string_view aad);
// Master-key mode: the same message sealed for a new token (a new link for
// a lost one); nullopt when m has no master wrap or master_key does not open it.
std::optional<sealed_message> reissue(const sealed_message& m, std::string_view master_key, std::string_view aad,
                                      std::string_view new_token, std::string_view new_aad);

// Six decimal digits, uniform.
std::string new_code();
// What the store keeps of a code: HMAC-SHA256 keyed by the session token that asked, hex.
std::string code_hash(std::string_view session_token, std::string_view code);

// The sealed box. Keys are raw 32-byte X25519 values.
struct box_keys {
  std::string private_key;
  std::string public_key;
};
box_keys new_box_keys();
std::optional<std::string> box_public_key(std::string_view private_key);
// ephemeral public key (32) || aead_seal(HKDF(shared secret || both public keys), plaintext)
std::string box_seal(std::string_view public_key, std::string_view plaintext);
std::optional<std::string> box_open(std::string_view private_key, std::string_view box);

}  // namespace sealgate::portal
