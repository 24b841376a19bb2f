// JSON and hex text for the command-line tools; see cli_text.hpp.
#include "gateway/cli/cli_text.hpp"

#include "common/text.hpp"

#include <pwd.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <string>

namespace sealgate::gateway {

std::string hex(const std::vector<uint8_t>& data) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  for (uint8_t b : data) {
    out += digits[b >> 4];
    out += digits[b & 15];
  }
  return out;
}

std::string who_am_i() {
  passwd* pw = ::getpwuid(::getuid());
  return pw ? pw->pw_name : "uid " + std::to_string(::getuid());
}

std::optional<int64_t> parse_since(const std::string& s) {
  if (s.empty()) return 0;
  std::tm tm{};
  for (const char* fmt : {"%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"}) {
    tm = {};
    const char* end = strptime(s.c_str(), fmt, &tm);
    if (end && *end == 0) return static_cast<int64_t>(timegm(&tm));
  }
  size_t used = 0;
  long long n = 0;
  try {
    n = std::stoll(s, &used);
  } catch (...) {
    return std::nullopt;
  }
  std::string unit = s.substr(used);
  int64_t factor = unit == "s" ? 1 : unit == "m" ? 60 : unit == "h" ? 3600 : unit == "d" ? 86400 : 0;
  if (!factor || n < 0) return std::nullopt;
  return static_cast<int64_t>(std::time(nullptr)) - n * factor;
}

std::string time_text(int64_t t) { return t <= 0 ? "-" : utc_time(t, "%Y-%m-%dT%H:%M:%SZ"); }

}  // namespace sealgate::gateway
