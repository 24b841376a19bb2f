// JSON and hex text for the command-line tools; see cli_text.hpp.
#include "gateway/cli/cli_text.hpp"

#include <pwd.h>
#include <unistd.h>

#include <cstdio>

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

}  // namespace sealgate::gateway
