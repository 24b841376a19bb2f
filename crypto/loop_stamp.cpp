// See loop_stamp.hpp.
#include "crypto/loop_stamp.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <charconv>

#include "common/text.hpp"

namespace sealgate::crypto {
namespace {

std::string mac_of(std::string_view secret, std::string_view signed_part) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(signed_part.data()), signed_part.size(), md, &n);
  // The first 128 bits, base64url: 22 characters.
  return base64url_encode(std::string_view(reinterpret_cast<const char*>(md), 16));
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
