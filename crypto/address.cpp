// Address matching and DNS owner names for key discovery; see address.hpp.
// Never lower-cases a local part: RFC 7929 3 hashes it as written.
#include "crypto/address.hpp"

#include "common/text.hpp"

#include <openssl/evp.h>

#include <algorithm>

namespace sealgate::crypto {
namespace {

std::string fold(std::string_view local) { return std::string(local.substr(0, local.find('+'))); }

std::string hashed_name(std::string_view address, std::string_view label) {
  auto a = parse_address(address);
  if (!a) return {};
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(a->local.data(), a->local.size(), digest, &len, EVP_sha256(), nullptr);
  static const char digits[] = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < 28 && i < len; ++i) {
    out += digits[digest[i] >> 4];
    out += digits[digest[i] & 15];
  }
  return out + "." + std::string(label) + "." + a->domain;
}

}  // namespace

std::optional<mail_address> parse_address(std::string_view address) {
  size_t at = address.rfind('@');
  if (at == std::string_view::npos || at == 0 || at + 1 >= address.size()) return std::nullopt;
  std::string domain = lower_ascii(address.substr(at + 1));
  if (!domain.empty() && domain.back() == '.') domain.pop_back();
  if (domain.empty()) return std::nullopt;
  return mail_address{std::string(address.substr(0, at)), domain};
}

bool address_matches(std::string_view candidate, std::string_view wanted, bool fold_plus_tag) {
  auto c = parse_address(candidate), w = parse_address(wanted);
  if (!c || !w || c->domain != w->domain) return false;
  return fold_plus_tag ? fold(c->local) == fold(w->local) : c->local == w->local;
}

std::string openpgpkey_name(std::string_view address) { return hashed_name(address, "_openpgpkey"); }
std::string smimea_name(std::string_view address) { return hashed_name(address, "_smimecert"); }

}  // namespace sealgate::crypto
