// Small text encoders shared by the command-line tools and the queue: JSON
// string literals and base64. Pure functions.
#pragma once
#include <string>
#include <string_view>

namespace sealgate::gateway {

// A JSON string literal: quotes, backslashes and control characters escaped;
// other octets (UTF-8 text) passed through.
std::string json_string(std::string_view s);

// RFC 4648 base64 with padding, no line breaks.
std::string base64_encode(std::string_view data);

}  // namespace sealgate::gateway
