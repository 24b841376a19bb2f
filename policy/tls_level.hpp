// The ordered TLS security levels and TLS protocol versions that policy
// decisions, delivery and the record share. One name table each, one order,
// one floor; an unknown name is refused, never guessed.
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

// A TLS protocol version. Ordered, so that versions compare; unknown is "no
// TLS, or a version we do not know".
enum class tls_version { unknown = 0, v1_0 = 10, v1_1 = 11, v1_2 = 12, v1_3 = 13 };

// The lowest version the gateway ever speaks, in and out: where a rule names
// no minimum, and below any rule's minimum.
inline constexpr tls_version tls_floor = tls_version::v1_2;

// "1.2"; "-" for unknown.
std::string_view to_string(tls_version v);
// A policy's spelling ("1.2", "1.3"); nullopt for anything else.
std::optional<tls_version> parse_tls_version(std::string_view name);
// OpenSSL's protocol names (SSL_get_version: "TLSv1.3", "TLSv1"); unknown otherwise.
tls_version tls_version_from_protocol(std::string_view protocol);
// OpenSSL's constant (TLS1_2_VERSION) for SSL_CTX_set_min_proto_version.
int openssl_version(tls_version v);

}  // namespace sealgate::policy
