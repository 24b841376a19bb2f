// Name tables for tls_level and tls_version; the only place where level and
// version names are spelled.
#include "policy/tls_level.hpp"

#include <openssl/ssl.h>

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

struct version_names {
  tls_version version;
  std::string_view name;      // as policies and logs write it
  std::string_view protocol;  // as OpenSSL reports it
  int openssl;
};
constexpr std::array<version_names, 4> versions{{
    {tls_version::v1_0, "1.0", "TLSv1", TLS1_VERSION},
    {tls_version::v1_1, "1.1", "TLSv1.1", TLS1_1_VERSION},
    {tls_version::v1_2, "1.2", "TLSv1.2", TLS1_2_VERSION},
    {tls_version::v1_3, "1.3", "TLSv1.3", TLS1_3_VERSION},
}};
}  // namespace

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

std::string_view to_string(tls_version v) {
  for (const auto& n : versions)
    if (n.version == v) return n.name;
  return "-";
}

std::optional<tls_version> parse_tls_version(std::string_view name) {
  for (const auto& n : versions)
    if (n.name == name) return n.version;
  return std::nullopt;
}

tls_version tls_version_from_protocol(std::string_view protocol) {
  for (const auto& n : versions)
    if (n.protocol == protocol) return n.version;
  return tls_version::unknown;
}

int openssl_version(tls_version v) {
  for (const auto& n : versions)
    if (n.version == v) return n.openssl;
  return TLS1_2_VERSION;
}

}  // namespace sealgate::policy
