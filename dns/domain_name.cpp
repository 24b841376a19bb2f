// Domain-name and address-literal syntax checks; see domain_name.hpp.
#include "dns/domain_name.hpp"

#include "common/text.hpp"

#include <arpa/inet.h>
#include <idn2.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <string>

namespace sealgate::dns {

bool is_valid_domain(std::string_view name, bool allow_utf8) {
  if (name.empty() || name.size() > 253) return false;
  size_t label_start = 0;
  for (size_t i = 0; i <= name.size(); ++i) {
    if (i == name.size() || name[i] == '.') {
      size_t len = i - label_start;
      if (len == 0 || len > 63) return false;
      if (name[label_start] == '-' || name[i - 1] == '-') return false;
      label_start = i + 1;
      continue;
    }
    unsigned char c = static_cast<unsigned char>(name[i]);
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
              (allow_utf8 && c >= 0x80);
    if (!ok) return false;
  }
  return true;
}

bool is_valid_utf8(std::string_view text) {
  static constexpr uint32_t least[] = {0, 0x80, 0x800, 0x10000};  // shortest form per sequence length
  size_t i = 0;
  while (i < text.size()) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    size_t n;  // continuation bytes
    uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      n = 1, cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2, cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3, cp = c & 0x07;
    } else {
      return false;
    }
    if (text.size() - i <= n) return false;
    for (size_t k = 1; k <= n; ++k) {
      unsigned char cc = static_cast<unsigned char>(text[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if (cp < least[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n + 1;
  }
  return true;
}

std::optional<std::string> to_ascii_domain(std::string_view name) {
  bool ascii = std::all_of(name.begin(), name.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
  if (ascii) {
    return lower_ascii(name);
  }
  if (!is_valid_utf8(name)) return std::nullopt;
  char* converted = nullptr;
  std::string input(name);
  if (idn2_to_ascii_8z(input.c_str(), &converted, IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL) != IDN2_OK) return std::nullopt;
  std::string out = lower_ascii(converted);
  idn2_free(converted);
  if (!is_valid_domain(out, false)) return std::nullopt;
  return out;
}

bool is_address_literal(std::string_view text) {
  if (text.size() < 3 || text.front() != '[' || text.back() != ']') return false;
  std::string inner(text.substr(1, text.size() - 2));
  // inet_pton reads a C string: an embedded NUL would end the address early
  // and let "[192.0.2.1\0junk]" through with the junk still in the path.
  if (inner.find('\0') != std::string::npos) return false;
  unsigned char buf[16];
  if (inner.rfind("IPv6:", 0) == 0) return inet_pton(AF_INET6, inner.c_str() + 5, buf) == 1;
  return inet_pton(AF_INET, inner.c_str(), buf) == 1;
}

}  // namespace sealgate::dns
