// Text encoding shared by the command-line tools: JSON string literals (base64
// is crypto/password.hpp's). Pure functions.
#pragma once
#include <string>
#include <string_view>

namespace sealgate::gateway {

// A JSON string literal: quotes, backslashes and control characters escaped;
// other octets (UTF-8 text) passed through.
std::string json_string(std::string_view s);

}  // namespace sealgate::gateway
