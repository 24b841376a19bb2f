// Name table for tls_level; the only place where level names are spelled.
#include "policy/tls_level.hpp"

#include <array>
#include <utility>

namespace sealgate::policy {
namespace {
constexpr std::array<std::pair<tls_level, std::string_view>, 4> names{{
    {tls_level::none, "none"},
    {tls_level::opportunistic, "opportunistic"},
    {tls_level::required, "required"},
    {tls_level::verified, "verified"},
}};
}

std::string_view to_string(tls_level level) {
  for (const auto& [l, n] : names)
    if (l == level) return n;
  return "invalid";
}

std::optional<tls_level> parse_tls_level(std::string_view name) {
  for (const auto& [l, n] : names)
    if (n == name) return l;
  return std::nullopt;
}

}  // namespace sealgate::policy
