// See loop_stamp.hpp.
#include "crypto/loop_stamp.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <charconv>

namespace sealgate::crypto {
namespace {

std::string mac_of(std::string_view secret, std::string_view signed_part) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(signed_part.data()), signed_part.size(), md, &n);
  static constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  // 16 bytes, base64url without padding: 22 characters.
  for (size_t i = 0; i < 16; i += 3) {
    uint32_t v = md[i] << 16 | (i + 1 < 16 ? md[i + 1] << 8 : 0) | (i + 2 < 16 ? md[i + 2] : 0);
    size_t chars = i + 3 <= 16 ? 4 : (16 - i) + 1;
    for (size_t k = 0; k < chars; ++k) out += alphabet[(v >> (18 - 6 * k)) & 63];
  }
  return out;
}

std::string signed_part(std::string_view host, int64_t t) {
  return "v=1; h=" + std::string(host) + "; t=" + std::to_string(t);
}

}  // namespace

std::string loop_stamp(std::string_view secret, std::string_view host, int64_t now) {
  std::string part = signed_part(host, now);
  return part + "; m=" + mac_of(secret, part);
}

bool loop_stamp_valid(std::string_view secret, std::string_view value, int64_t now, int64_t max_age) {
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t' || value.back() == '\r' || value.back() == '\n'))
    value.remove_suffix(1);
  size_t m = value.rfind("; m=");
  if (m == std::string_view::npos || value.substr(0, 7) != "v=1; h=") return false;
  std::string_view part = value.substr(0, m), mac = value.substr(m + 4);
  size_t t_at = part.rfind("; t=");
  if (t_at == std::string_view::npos) return false;
  int64_t t = 0;
  auto digits = part.substr(t_at + 4);
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), t);
  if (ec != std::errc{} || end != digits.data() + digits.size()) return false;
  if (t > now + 300 || now - t > max_age) return false;
  std::string expected = mac_of(secret, part);
  return mac.size() == expected.size() && CRYPTO_memcmp(mac.data(), expected.data(), mac.size()) == 0;
}

}  // namespace sealgate::crypto
