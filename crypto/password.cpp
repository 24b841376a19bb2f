// scrypt password hashes (RFC 7914) through OpenSSL's EVP_PBE_scrypt.
// The comparison is CRYPTO_memcmp: constant time in the length of the key.
#include "crypto/password.hpp"

#include "common/text.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <cctype>
#include <charconv>
#include <stdexcept>
#include <vector>

namespace sealgate::crypto {
namespace {

// N = 2^15, r = 8, p = 1: 32 MiB and about 50 ms per check on this class of
// machine (OWASP's floor for scrypt is N=2^17 with r=8,p=1 at 128 MiB; AUTH runs
// on every relay connection, so we trade some cost for throughput and keep the
// parameters in the hash so they can be raised without breaking old entries).
constexpr int default_log2_n = 15;
constexpr int default_r = 8;
constexpr int default_p = 1;
constexpr size_t key_length = 32;
constexpr size_t salt_length = 16;

struct parsed_hash {
  int log2_n = 0, r = 0, p = 0;
  std::string salt, key;
};

bool derive(std::string_view password, std::string_view salt, int log2_n, int r, int p, unsigned char* out,
            size_t out_len) {
  if (log2_n < 10 || log2_n > 22 || r < 1 || r > 32 || p < 1 || p > 16) return false;
  const uint64_t n = uint64_t{1} << log2_n;
  const uint64_t maxmem = 128ull * r * (n + p + 2) + (16u << 20);
  return EVP_PBE_scrypt(password.data(), password.size(), reinterpret_cast<const unsigned char*>(salt.data()),
                        salt.size(), n, r, p, maxmem, out, out_len) == 1;
}

bool parse_int(std::string_view s, int& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc{} && p == s.data() + s.size();
}

bool parse(std::string_view h, parsed_hash& out) {
  constexpr std::string_view prefix = "$scrypt$";
  if (!h.starts_with(prefix)) return false;
  h.remove_prefix(prefix.size());
  auto d1 = h.find('$');
  if (d1 == std::string_view::npos) return false;
  auto params = h.substr(0, d1);
  auto rest = h.substr(d1 + 1);
  auto d2 = rest.find('$');
  if (d2 == std::string_view::npos) return false;
  bool ok1 = false, ok2 = false;
  out.salt = base64_decode(rest.substr(0, d2), ok1);
  out.key = base64_decode(rest.substr(d2 + 1), ok2);
  if (!ok1 || !ok2 || out.salt.empty() || out.key.size() != key_length) return false;
  // params: ln=15,r=8,p=1
  int* slots[3] = {&out.log2_n, &out.r, &out.p};
  const char* names[3] = {"ln=", "r=", "p="};
  for (int i = 0; i < 3; ++i) {
    auto comma = params.find(',');
    auto item = params.substr(0, comma);
    if (!item.starts_with(names[i]) || !parse_int(item.substr(std::string_view(names[i]).size()), *slots[i]))
      return false;
    params = comma == std::string_view::npos ? std::string_view{} : params.substr(comma + 1);
  }
  return params.empty();
}

}  // namespace

std::string hash_password(std::string_view password) {
  unsigned char salt[salt_length];
  if (RAND_bytes(salt, sizeof salt) != 1) throw std::runtime_error("RAND_bytes failed");
  unsigned char key[key_length];
  std::string_view salt_view(reinterpret_cast<const char*>(salt), sizeof salt);
  if (!derive(password, salt_view, default_log2_n, default_r, default_p, key, sizeof key))
    throw std::runtime_error("scrypt failed");
  return "$scrypt$ln=" + std::to_string(default_log2_n) + ",r=" + std::to_string(default_r) +
         ",p=" + std::to_string(default_p) + "$" + base64_encode(salt_view) + "$" +
         base64_encode(std::string_view(reinterpret_cast<const char*>(key), sizeof key));
}

const std::string& dummy_hash() {
  static const std::string h = [] {
    unsigned char random[24];
    RAND_bytes(random, sizeof random);
    return hash_password(base64_encode(std::string_view(reinterpret_cast<const char*>(random), sizeof random)));
  }();
  return h;
}

bool verify_password(std::string_view password, std::string_view stored_hash) {
  parsed_hash h;
  bool well_formed = parse(stored_hash, h);
  if (!well_formed) {
    // Spend the same work as a real check before saying no.
    parse(dummy_hash(), h);
  }
  unsigned char key[key_length];
  if (!derive(password, h.salt, h.log2_n, h.r, h.p, key, sizeof key)) return false;
  bool equal = CRYPTO_memcmp(key, h.key.data(), key_length) == 0;
  return well_formed && equal;
}

}  // namespace sealgate::crypto
