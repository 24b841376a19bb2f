// Text helpers shared by the command-line tools (dns lookup, probe): hex,
// and JSON strings (common/text). Output only; never parses anything.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/text.hpp"

namespace sealgate::gateway {

using sealgate::json_string;  // common/text.hpp
std::string hex(const std::vector<uint8_t>& data);
// The Unix user running the command, for the record of operator actions
// ("uid N" when it has no name).
std::string who_am_i();

}  // namespace sealgate::gateway
