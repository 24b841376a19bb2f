// JSON output helpers for the command-line tools' --json modes. Output only:
// nothing here parses JSON.
#pragma once
#include <cstdio>
#include <string>
#include <string_view>

namespace sealgate::gateway {

// A JSON string literal; octets >= 0x80 become \u00XX code points: lossless
// for bytes, always valid JSON, never a forged line in the output.
inline std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c >= 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

}  // namespace sealgate::gateway
