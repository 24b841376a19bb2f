// Text helpers shared by the command-line tools (dns lookup, probe): hex,
// and JSON strings (common/text). Output only; never parses anything.
#pragma once
#include <cstdint>
#include <optional>
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
// --since, --until, --before: a date (2026-11-01) or date-time
// (2026-11-01T08:00:00, UTC) or a duration back from now (30s, 5m, 24h, 7d),
// as unix seconds; "" is 0 (the beginning); nullopt for anything else.
std::optional<int64_t> parse_since(const std::string& s);
// 2026-12-06T10:00:00Z (UTC); "-" for none (0 or less).
std::string time_text(int64_t t);

}  // namespace sealgate::gateway
