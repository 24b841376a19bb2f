// Text helpers shared by the command-line tools (dns lookup, probe): JSON
// strings and hex. Output only; never parses anything.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sealgate::gateway {

// A JSON string literal; octets >= 0x80 and control characters as \u00XX, so
// the output is always valid JSON whatever a remote server sent.
std::string json_string(std::string_view s);
std::string hex(const std::vector<uint8_t>& data);

}  // namespace sealgate::gateway
