// See text_util.hpp.
#include "gateway/text_util.hpp"

#include <cstdint>
#include <cstdio>

namespace sealgate::gateway {

std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

std::string base64_encode(std::string_view data) {
  static const char table[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  size_t i = 0;
  auto byte = [&](size_t k) { return uint32_t{static_cast<unsigned char>(data[k])}; };
  for (; i + 2 < data.size(); i += 3) {
    uint32_t v = byte(i) << 16 | byte(i + 1) << 8 | byte(i + 2);
    for (int s = 18; s >= 0; s -= 6) out += table[v >> s & 63];
  }
  if (i < data.size()) {
    uint32_t v = byte(i) << 16 | (i + 1 < data.size() ? byte(i + 1) << 8 : 0);
    out += table[v >> 18 & 63];
    out += table[v >> 12 & 63];
    out += i + 1 < data.size() ? table[v >> 6 & 63] : '=';
    out += '=';
  }
  return out;
}

}  // namespace sealgate::gateway
