// See transport_security.hpp. Order of precedence, strongest first: DANE
// (RFC 7672; RFC 8461 section 2 puts it before MTA-STS), MTA-STS enforce,
// then the policy's level. A domain's demand can only raise the level.
#include "gateway/outbound/transport_security.hpp"

namespace sealgate::gateway {
namespace {

std::string version_name(policy::tls_version v) { return "TLS " + std::string(policy::to_string(v)); }

security_verdict fail(std::string why) { return {false, "", std::move(why)}; }

bool needs_tls(const security_demand& d) {
  return d.dane || d.mta_sts_enforce || d.requiretls || d.level >= policy::tls_level::required;
}

}  // namespace

bool clear_text_allowed(const security_demand& d) { return !needs_tls(d); }

security_verdict judge(const security_demand& d, const connection_security& c) {
  if (!c.tls_active) {
    if (!needs_tls(d)) return {true, "none", ""};
    if (!c.starttls_offered) return fail("the MX does not offer STARTTLS (stripped, or not supported), and TLS is required");
    return fail("the TLS handshake with the MX failed, and TLS is required");
  }
  policy::tls_version floor = d.level >= policy::tls_level::required || d.dane || d.mta_sts_enforce || d.requiretls ? d.min_tls_version : policy::tls_version::unknown;
  if (floor != policy::tls_version::unknown && c.tls_version < floor)
    return fail("the MX negotiated " + version_name(c.tls_version) + ", below the required " + version_name(floor));

  std::string certificate;
  if (d.dane) {
    if (!c.dane_matched) return fail("DANE: the MX certificate does not match the domain's TLSA records");
    certificate = "dane";
  } else if (d.mta_sts_enforce) {
    if (!d.mx_in_mta_sts) return fail("MTA-STS: the MX host is not listed in the domain's policy");
    if (!c.chain_verified || !c.name_matched)
      return fail(std::string("MTA-STS: the MX certificate ") +
                  (!c.chain_verified ? "does not chain to a trusted CA" : "does not name the MX host"));
    certificate = "mta-sts";
  } else if (c.chain_verified && c.name_matched) {
    certificate = "verified";
  } else {
    if (d.level >= policy::tls_level::verified || d.requiretls)
      return fail(std::string("the MX certificate ") +
                  (!c.chain_verified ? "does not chain to a trusted CA" : "does not name the MX host") +
                  ", and a verified certificate is required");
    certificate = "unverified";
  }
  if (d.requiretls && !c.requiretls_offered) return fail("the MX does not offer REQUIRETLS (RFC 8689)");
  return {true, certificate, ""};
}

tls_report_row tls_report(const security_demand& d, const connection_security& c) {
  const bool sts = d.mta_sts_enforce || d.mta_sts_testing;
  tls_report_row row{d.dane ? "tlsa" : sts ? "sts" : "no-policy-found", "success"};
  if (!c.starttls_offered) {
    row.result_type = "starttls-not-supported";
  } else if (!c.tls_active) {
    row.result_type = "validation-failure";  // the handshake failed
  } else if (d.dane) {
    if (!c.dane_matched) row.result_type = "validation-failure";
  } else if (sts) {
    // A host the policy does not list has no name of section 4.3's own.
    if (!d.mx_in_mta_sts) row.result_type = "validation-failure";
    else if (!c.chain_verified) row.result_type = "certificate-not-trusted";
    else if (!c.name_matched) row.result_type = "certificate-host-mismatch";
  }
  return row;
}

}  // namespace sealgate::gateway
