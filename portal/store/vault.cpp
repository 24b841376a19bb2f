// The portal's cryptography on OpenSSL 3 (see vault.hpp). Every failure of a
// primitive that should not fail (RAND, a cipher context) throws; a wrong key
// or altered ciphertext is nullopt, never an exception, so that a forged link
// costs the portal nothing but an answer.
#include "portal/store/vault.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <memory>
#include <stdexcept>

namespace sealgate::portal {
namespace {

constexpr size_t key_size = 32, nonce_size = 12, tag_size = 16;

const unsigned char* bytes(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }

struct cipher_ctx_free {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
struct pkey_free {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct pkey_ctx_free {
  void operator()(EVP_PKEY_CTX* c) const { EVP_PKEY_CTX_free(c); }
};
using pkey_ptr = std::unique_ptr<EVP_PKEY, pkey_free>;

std::string hkdf(std::string_view secret, std::string_view info, size_t n) {
  std::unique_ptr<EVP_KDF, decltype(&EVP_KDF_free)> kdf(EVP_KDF_fetch(nullptr, "HKDF", nullptr), EVP_KDF_free);
  if (!kdf) throw std::runtime_error("HKDF is not available");
  std::unique_ptr<EVP_KDF_CTX, decltype(&EVP_KDF_CTX_free)> ctx(EVP_KDF_CTX_new(kdf.get()), EVP_KDF_CTX_free);
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<char*>(secret.data()), secret.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, const_cast<char*>(info.data()), info.size()),
      OSSL_PARAM_construct_end()};
  std::string out(n, '\0');
  if (!ctx || EVP_KDF_derive(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), n, params) != 1)
    throw std::runtime_error("HKDF failed");
  return out;
}

std::string link_key(std::string_view token) { return hkdf(token, "sealgate portal link key v1", key_size); }

pkey_ptr x25519_private(std::string_view raw) {
  if (raw.size() != key_size) return nullptr;
  return pkey_ptr(EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nullptr, bytes(raw), raw.size()));
}

std::string raw_public(EVP_PKEY* k) {
  std::string out(key_size, '\0');
  size_t n = out.size();
  if (EVP_PKEY_get_raw_public_key(k, reinterpret_cast<unsigned char*>(out.data()), &n) != 1 || n != key_size)
    throw std::runtime_error("cannot read an X25519 public key");
  return out;
}

std::optional<std::string> x25519_shared(EVP_PKEY* own, std::string_view peer_public) {
  if (peer_public.size() != key_size) return std::nullopt;
  pkey_ptr peer(EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, nullptr, bytes(peer_public), peer_public.size()));
  if (!peer) return std::nullopt;
  std::unique_ptr<EVP_PKEY_CTX, pkey_ctx_free> ctx(EVP_PKEY_CTX_new(own, nullptr));
  size_t n = 0;
  if (!ctx || EVP_PKEY_derive_init(ctx.get()) != 1 || EVP_PKEY_derive_set_peer(ctx.get(), peer.get()) != 1 ||
      EVP_PKEY_derive(ctx.get(), nullptr, &n) != 1)
    return std::nullopt;
  std::string secret(n, '\0');
  if (EVP_PKEY_derive(ctx.get(), reinterpret_cast<unsigned char*>(secret.data()), &n) != 1) return std::nullopt;
  secret.resize(n);
  // An all-zero result means a low-order peer key (RFC 7748 6.1): refuse it.
  if (secret.find_first_not_of('\0') == std::string::npos) return std::nullopt;
  return secret;
}

std::string box_key(std::string_view shared, std::string_view ephemeral_public, std::string_view recipient_public) {
  std::string secret(shared);
  secret.append(ephemeral_public).append(recipient_public);
  return hkdf(secret, "sealgate portal box v1", key_size);
}

}  // namespace

std::string random_bytes(size_t n) {
  std::string out(n, '\0');
  if (n && RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1)
    throw std::runtime_error("RAND_bytes failed");
  return out;
}

std::string hex(std::string_view b) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(b.size() * 2);
  for (unsigned char c : b) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

bool equal_constant_time(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string hmac_sha256(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (!HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), bytes(data), data.size(), out, &n))
    throw std::runtime_error("HMAC failed");
  return std::string(reinterpret_cast<char*>(out), n);
}

std::string sha256(std::string_view data) {
  unsigned char out[SHA256_DIGEST_LENGTH];
  SHA256(bytes(data), data.size(), out);
  return std::string(reinterpret_cast<char*>(out), sizeof out);
}

std::string new_token() { return base64url_encode(random_bytes(32)); }

bool token_shape_ok(std::string_view token) {
  if (token.size() != 43) return false;
  for (char c : token)
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
      return false;
  return true;
}

std::string lookup_key(std::string_view token) { return hex(hkdf(token, "sealgate portal lookup v1", key_size)); }

std::string aead_seal(std::string_view key, std::string_view plaintext, std::string_view aad) {
  if (key.size() != key_size) throw std::invalid_argument("AES-256-GCM needs a 32-byte key");
  std::string out = random_bytes(nonce_size);
  out.resize(nonce_size + plaintext.size() + tag_size);
  std::unique_ptr<EVP_CIPHER_CTX, cipher_ctx_free> ctx(EVP_CIPHER_CTX_new());
  int n = 0, m = 0;
  auto* dst = reinterpret_cast<unsigned char*>(out.data());
  // EVP_EncryptUpdate takes an int length: a large message goes through in slices.
  bool ok = ctx && EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, bytes(key), dst) == 1 &&
            (aad.empty() || EVP_EncryptUpdate(ctx.get(), nullptr, &n, bytes(aad), static_cast<int>(aad.size())) == 1);
  size_t written = nonce_size;
  for (size_t at = 0; ok && at < plaintext.size();) {
    size_t slice = std::min<size_t>(plaintext.size() - at, 1 << 30);
    ok = EVP_EncryptUpdate(ctx.get(), dst + written, &n, bytes(plaintext) + at, static_cast<int>(slice)) == 1;
    written += static_cast<size_t>(n);
    at += slice;
  }
  ok = ok && EVP_EncryptFinal_ex(ctx.get(), dst + written, &m) == 1;
  written += static_cast<size_t>(m);
  ok = ok && EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, tag_size, dst + written) == 1;
  if (!ok || written + tag_size != out.size()) throw std::runtime_error("AES-256-GCM encryption failed");
  return out;
}

std::optional<std::string> aead_open(std::string_view key, std::string_view sealed, std::string_view aad) {
  if (key.size() != key_size || sealed.size() < nonce_size + tag_size) return std::nullopt;
  std::string_view nonce = sealed.substr(0, nonce_size);
  std::string_view body = sealed.substr(nonce_size, sealed.size() - nonce_size - tag_size);
  std::string tag(sealed.substr(sealed.size() - tag_size));
  std::string out(body.size(), '\0');
  std::unique_ptr<EVP_CIPHER_CTX, cipher_ctx_free> ctx(EVP_CIPHER_CTX_new());
  int n = 0, m = 0;
  auto* dst = reinterpret_cast<unsigned char*>(out.data());
  bool ok = ctx && EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, bytes(key), bytes(nonce)) == 1 &&
            (aad.empty() || EVP_DecryptUpdate(ctx.get(), nullptr, &n, bytes(aad), static_cast<int>(aad.size())) == 1);
  size_t written = 0;
  for (size_t at = 0; ok && at < body.size();) {
    size_t slice = std::min<size_t>(body.size() - at, 1 << 30);
    ok = EVP_DecryptUpdate(ctx.get(), dst + written, &n, bytes(body) + at, static_cast<int>(slice)) == 1;
    written += static_cast<size_t>(n);
    at += slice;
  }
  ok = ok && EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, tag_size, tag.data()) == 1 &&
       EVP_DecryptFinal_ex(ctx.get(), dst + written, &m) == 1;
  if (!ok) {
    OPENSSL_cleanse(out.data(), out.size());
    return std::nullopt;
  }
  return out;
}

sealed_message seal_message(std::string_view message, std::string_view token, std::string_view aad,
                            std::string_view master_key) {
  std::string content_key = random_bytes(key_size);
  sealed_message m;
  m.body = aead_seal(content_key, message, aad);
  m.link_wrap = aead_seal(link_key(token), content_key, aad);
  if (!master_key.empty()) m.master_wrap = aead_seal(master_key, content_key, aad);
  OPENSSL_cleanse(content_key.data(), content_key.size());
  return m;
}

std::optional<std::string> open_message(const sealed_message& m, std::string_view token, std::string_view aad) {
  auto content_key = aead_open(link_key(token), m.link_wrap, aad);
  if (!content_key) return std::nullopt;
  auto out = aead_open(*content_key, m.body, aad);
  OPENSSL_cleanse(content_key->data(), content_key->size());
  return out;
}

std::optional<sealed_message> reissue(const sealed_message& m, std::string_view master_key, std::string_view aad,
                                      std::string_view new_token, std::string_view new_aad) {
  if (m.master_wrap.empty() || master_key.size() != key_size) return std::nullopt;
  auto content_key = aead_open(master_key, m.master_wrap, aad);
  if (!content_key) return std::nullopt;
  auto message = aead_open(*content_key, m.body, aad);
  OPENSSL_cleanse(content_key->data(), content_key->size());
  if (!message) return std::nullopt;
  sealed_message out = seal_message(*message, new_token, new_aad, master_key);
  OPENSSL_cleanse(message->data(), message->size());
  return out;
}

std::string new_code() {
  // Rejection sampling: 2^32 is not a multiple of 10^6, and a modulo would favour small codes.
  constexpr uint32_t range = 1000000, limit = 4294000000u;  // the largest multiple of range below 2^32
  for (;;) {
    std::string r = random_bytes(4);
    uint32_t v = (uint8_t(r[0]) << 24) | (uint8_t(r[1]) << 16) | (uint8_t(r[2]) << 8) | uint8_t(r[3]);
    if (v >= limit) continue;
    std::string code = std::to_string(v % range);
    return std::string(6 - code.size(), '0') + code;
  }
}

std::string code_hash(std::string_view session_token, std::string_view code) {
  return hex(hmac_sha256(session_token, "sealgate portal code v1|" + std::string(code)));
}

box_keys new_box_keys() {
  std::unique_ptr<EVP_PKEY_CTX, pkey_ctx_free> ctx(EVP_PKEY_CTX_new_id(EVP_PKEY_X25519, nullptr));
  EVP_PKEY* raw = nullptr;
  if (!ctx || EVP_PKEY_keygen_init(ctx.get()) != 1 || EVP_PKEY_keygen(ctx.get(), &raw) != 1)
    throw std::runtime_error("X25519 key generation failed");
  pkey_ptr key(raw);
  box_keys out;
  out.private_key.resize(key_size);
  size_t n = key_size;
  if (EVP_PKEY_get_raw_private_key(key.get(), reinterpret_cast<unsigned char*>(out.private_key.data()), &n) != 1)
    throw std::runtime_error("cannot read an X25519 private key");
  out.public_key = raw_public(key.get());
  return out;
}

std::optional<std::string> box_public_key(std::string_view private_key) {
  auto key = x25519_private(private_key);
  if (!key) return std::nullopt;
  return raw_public(key.get());
}

std::string box_seal(std::string_view public_key, std::string_view plaintext) {
  box_keys ephemeral = new_box_keys();
  auto own = x25519_private(ephemeral.private_key);
  OPENSSL_cleanse(ephemeral.private_key.data(), ephemeral.private_key.size());
  auto shared = own ? x25519_shared(own.get(), public_key) : std::nullopt;
  if (!shared) throw std::invalid_argument("not an X25519 public key");
  std::string key = box_key(*shared, ephemeral.public_key, public_key);
  OPENSSL_cleanse(shared->data(), shared->size());
  std::string out = ephemeral.public_key + aead_seal(key, plaintext, ephemeral.public_key);
  OPENSSL_cleanse(key.data(), key.size());
  return out;
}

std::optional<std::string> box_open(std::string_view private_key, std::string_view box) {
  if (box.size() < key_size) return std::nullopt;
  auto own = x25519_private(private_key);
  if (!own) return std::nullopt;
  std::string_view ephemeral_public = box.substr(0, key_size);
  auto shared = x25519_shared(own.get(), ephemeral_public);
  if (!shared) return std::nullopt;
  std::string key = box_key(*shared, ephemeral_public, raw_public(own.get()));
  OPENSSL_cleanse(shared->data(), shared->size());
  auto out = aead_open(key, box.substr(key_size), ephemeral_public);
  OPENSSL_cleanse(key.data(), key.size());
  return out;
}

}  // namespace sealgate::portal
