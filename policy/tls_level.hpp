// The ordered TLS security levels that policy decisions and delivery share.
// One name table, one order; an unknown name is refused, never guessed.
#pragma once
#include <optional>
#include <string_view>

namespace sealgate::policy {

// Ordered weakest to strongest, so that levels compare numerically (as Postfix's
// tls_level.c does): a decision may raise a recipient's level, never lower it.
//   none         clear text only (only where a rule explicitly allows it)
//   opportunistic TLS if offered, clear otherwise
//   required     STARTTLS with at least the minimum version; certificate not checked
//   verified     required plus a chain to the trust store and a matching host name,
//                or a DANE or MTA-STS match
enum class tls_level { none = 0, opportunistic = 1, required = 2, verified = 3 };

std::string_view to_string(tls_level level);
std::optional<tls_level> parse_tls_level(std::string_view name);
// The stronger of two levels: how a domain's own demand (DANE, MTA-STS) combines
// with what a rule asks.
constexpr tls_level stronger(tls_level a, tls_level b) { return a < b ? b : a; }

}  // namespace sealgate::policy
