// The check that every outbound connection passes before any byte of a
// message is sent: what the policy (and the recipient domain's own DANE or
// MTA-STS publication) demands, against what this connection actually
// negotiated. Pure, so the whole table is unit-tested; the SMTP client
// gathers the facts and obeys the verdict. A probe's cached facts never
// stand in for these: a cached "offers TLS 1.3" does not excuse a live
// connection that lacks STARTTLS (an attacker may have stripped it).
#pragma once
#include <string>
#include <string_view>

#include "policy/tls_level.hpp"

namespace sealgate::gateway {

// What one live connection to one MX host showed.
struct connection_security {
  bool starttls_offered = false;  // in the EHLO reply before TLS
  bool tls_active = false;        // the handshake completed
  policy::tls_version tls_version = policy::tls_version::unknown;  // unknown without TLS
  bool chain_verified = false;    // PKIX: the chain ends at the trust store
  bool name_matched = false;      // PKIX: the certificate names the MX host
  bool dane_matched = false;      // the chain matches a usable TLSA record (RFC 7672)
  bool requiretls_offered = false;  // in the EHLO reply after TLS
};

// What this delivery demands of the connection.
struct security_demand {
  policy::tls_level level = policy::tls_level::opportunistic;
  policy::tls_version min_tls_version = policy::tls_floor;  // for required and verified
  bool requiretls = false;       // RFC 8689: verified TLS and a next hop offering REQUIRETLS
  bool dane = false;             // usable, DNSSEC-secure TLSA records exist for this MX host
  bool mta_sts_enforce = false;  // the domain's MTA-STS policy is in enforce mode
  bool mx_in_mta_sts = false;    // this MX host matches one of that policy's mx patterns
  // The domain's MTA-STS policy is in testing mode: nothing is demanded, but
  // sessions are reported as if it were enforced (RFC 8461 section 5).
  bool mta_sts_testing = false;
};

struct security_verdict {
  bool ok = false;
  // How the certificate was judged, for the record: dane, mta-sts, verified
  // (PKIX without a domain demand), unverified (TLS, not checked), none (clear).
  std::string certificate;
  std::string failure;  // why not ok, in words for logs, records and DSNs
};

// Before STARTTLS: may the client go on in clear if the server offers no
// STARTTLS? (Only at opportunistic or none, and never when DANE or MTA-STS
// enforce apply.)
bool clear_text_allowed(const security_demand& d);

// After the EHLO that follows the handshake (or after the first EHLO when no
// TLS was negotiated): may the message be sent on this connection?
security_verdict judge(const security_demand& d, const connection_security& c);

// RFC 8460 (SMTP TLS Reporting): the policy that applied to one session
// ("tlsa", "sts", "no-policy-found") and its result type ("success", or a
// failure type of section 4.3). Judged apart from the verdict: a policy in
// testing mode is reported as if enforced, though delivery went on, and a
// session that fell short of our own policy (a TLS floor, REQUIRETLS) but
// not of the domain's is a success to the domain.
struct tls_report_row {
  std::string_view policy_type;
  std::string_view result_type;
};
tls_report_row tls_report(const security_demand& d, const connection_security& c);

}  // namespace sealgate::gateway
