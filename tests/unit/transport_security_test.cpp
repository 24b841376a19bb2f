// The live-connection check, as a table: every row is a demand, what the
// connection showed, and the verdict with its reason.
#include "gateway/outbound/transport_security.hpp"

#include <gtest/gtest.h>

using namespace sealgate::gateway;
using sealgate::policy::tls_level;

namespace {
connection_security clear_no_starttls() { return {}; }
connection_security clear_starttls_failed() {
  connection_security c;
  c.starttls_offered = true;
  return c;
}
connection_security tls(int version, bool verified, bool named, bool dane = false, bool requiretls = false) {
  connection_security c;
  c.starttls_offered = true;
  c.tls_active = true;
  c.tls_version = static_cast<sealgate::policy::tls_version>(version);
  c.chain_verified = verified;
  c.name_matched = named;
  c.dane_matched = dane;
  c.requiretls_offered = requiretls;
  return c;
}
security_demand level(tls_level l, int min = 12) {
  security_demand d;
  d.level = l;
  d.min_tls_version = static_cast<sealgate::policy::tls_version>(min);
  return d;
}

struct row {
  const char* name;
  security_demand demand;
  connection_security conn;
  bool ok;
  const char* certificate_or_failure;
};

security_demand with_dane(security_demand d) { d.dane = true; return d; }
security_demand with_sts(security_demand d, bool listed) { d.mta_sts_enforce = true; d.mx_in_mta_sts = listed; return d; }
security_demand with_requiretls(security_demand d) { d.requiretls = true; return d; }

const row rows[] = {
    {"opportunistic, clear", level(tls_level::opportunistic), clear_no_starttls(), true, "none"},
    {"opportunistic, TLS 1.0 unverified", level(tls_level::opportunistic), tls(10, false, false), true, "unverified"},
    {"opportunistic, verified", level(tls_level::opportunistic), tls(13, true, true), true, "verified"},
    {"required, STARTTLS stripped", level(tls_level::required), clear_no_starttls(), false,
     "the MX does not offer STARTTLS (stripped, or not supported), and TLS is required"},
    {"required, handshake failed", level(tls_level::required), clear_starttls_failed(), false,
     "the TLS handshake with the MX failed, and TLS is required"},
    {"required, TLS 1.1", level(tls_level::required), tls(11, true, true), false,
     "the MX negotiated TLS 1.1, below the required TLS 1.2"},
    {"required 1.3, TLS 1.2", level(tls_level::required, 13), tls(12, true, true), false,
     "the MX negotiated TLS 1.2, below the required TLS 1.3"},
    {"required, self-signed", level(tls_level::required), tls(12, false, false), true, "unverified"},
    {"verified, self-signed", level(tls_level::verified), tls(13, false, false), false,
     "the MX certificate does not chain to a trusted CA, and a verified certificate is required"},
    {"verified, wrong name", level(tls_level::verified), tls(13, true, false), false,
     "the MX certificate does not name the MX host, and a verified certificate is required"},
    {"verified, good", level(tls_level::verified), tls(13, true, true), true, "verified"},
    {"DANE raises opportunistic: stripped", with_dane(level(tls_level::opportunistic)), clear_no_starttls(), false,
     "the MX does not offer STARTTLS (stripped, or not supported), and TLS is required"},
    {"DANE match, self-signed is fine", with_dane(level(tls_level::opportunistic)), tls(13, false, false, true), true, "dane"},
    {"DANE mismatch, even with a CA chain", with_dane(level(tls_level::verified)), tls(13, true, true, false), false,
     "DANE: the MX certificate does not match the domain's TLSA records"},
    {"MTA-STS enforce, listed, verified", with_sts(level(tls_level::opportunistic), true), tls(12, true, true), true, "mta-sts"},
    {"MTA-STS enforce, not listed", with_sts(level(tls_level::opportunistic), false), tls(12, true, true), false,
     "MTA-STS: the MX host is not listed in the domain's policy"},
    {"MTA-STS enforce, self-signed", with_sts(level(tls_level::opportunistic), true), tls(12, false, false), false,
     "MTA-STS: the MX certificate does not chain to a trusted CA"},
    {"MTA-STS enforce, stripped", with_sts(level(tls_level::opportunistic), true), clear_no_starttls(), false,
     "the MX does not offer STARTTLS (stripped, or not supported), and TLS is required"},
    {"DANE before MTA-STS", with_dane(with_sts(level(tls_level::opportunistic), false)), tls(13, false, false, true), true, "dane"},
    {"REQUIRETLS, not offered", with_requiretls(level(tls_level::required)), tls(13, true, true), false,
     "the MX does not offer REQUIRETLS (RFC 8689)"},
    {"REQUIRETLS, unverified", with_requiretls(level(tls_level::required)), tls(13, false, false, false, true), false,
     "the MX certificate does not chain to a trusted CA, and a verified certificate is required"},
    {"REQUIRETLS, offered and verified", with_requiretls(level(tls_level::required)), tls(13, true, true, false, true), true,
     "verified"},
};

class TransportSecurity : public ::testing::TestWithParam<row> {};

std::string name_of(const ::testing::TestParamInfo<row>& info) {
  std::string n;
  for (const char* p = info.param.name; *p; ++p) n += std::isalnum(static_cast<unsigned char>(*p)) ? *p : '_';
  return n;
}
}  // namespace

TEST_P(TransportSecurity, Row) {
  const auto& r = GetParam();
  auto v = judge(r.demand, r.conn);
  EXPECT_EQ(v.ok, r.ok);
  EXPECT_EQ(r.ok ? v.certificate : v.failure, r.certificate_or_failure);
}

INSTANTIATE_TEST_SUITE_P(Table, TransportSecurity, ::testing::ValuesIn(rows), name_of);

TEST(TransportSecurity, ClearTextOnlyWhereNothingDemandsTls) {
  EXPECT_TRUE(clear_text_allowed(level(tls_level::opportunistic)));
  EXPECT_TRUE(clear_text_allowed(level(tls_level::none)));
  EXPECT_FALSE(clear_text_allowed(level(tls_level::required)));
  EXPECT_FALSE(clear_text_allowed(with_dane(level(tls_level::opportunistic))));
  EXPECT_FALSE(clear_text_allowed(with_sts(level(tls_level::opportunistic), true)));
  EXPECT_FALSE(clear_text_allowed(with_requiretls(level(tls_level::opportunistic))));
}

// RFC 8460's view of the same sessions: the policy type that applied and the
// result type, which a domain's TLS report counts.
TEST(TransportSecurity, TlsReportRowsNameThePolicyAndTheResultType) {
  auto report = [](security_demand d, connection_security c) {
    auto r = tls_report(d, c);
    return std::string(r.policy_type) + " " + std::string(r.result_type);
  };
  security_demand none_found = level(tls_level::opportunistic);
  EXPECT_EQ(report(none_found, tls(13, false, false)), "no-policy-found success");
  EXPECT_EQ(report(none_found, clear_no_starttls()), "no-policy-found starttls-not-supported");
  EXPECT_EQ(report(none_found, clear_starttls_failed()), "no-policy-found validation-failure");

  security_demand dane = none_found;
  dane.dane = true;
  EXPECT_EQ(report(dane, tls(13, false, false, true)), "tlsa success");
  EXPECT_EQ(report(dane, tls(13, true, true, false)), "tlsa validation-failure");
  EXPECT_EQ(report(dane, clear_no_starttls()), "tlsa starttls-not-supported");

  // MTA-STS, enforced or in testing mode alike; DANE comes first.
  for (bool enforce : {true, false}) {
    security_demand sts = none_found;
    sts.mta_sts_enforce = enforce;
    sts.mta_sts_testing = !enforce;
    sts.mx_in_mta_sts = true;
    EXPECT_EQ(report(sts, tls(12, true, true)), "sts success");
    EXPECT_EQ(report(sts, tls(12, false, true)), "sts certificate-not-trusted");
    EXPECT_EQ(report(sts, tls(12, true, false)), "sts certificate-host-mismatch");
    sts.mx_in_mta_sts = false;
    EXPECT_EQ(report(sts, tls(12, true, true)), "sts validation-failure");
    sts.dane = true;
    EXPECT_EQ(report(sts, tls(12, true, true, true)), "tlsa success");
  }
  // Our own floor is not the domain's: a TLS 1.2 session under a 1.3 rule
  // fails the verdict but is a success to the domain.
  security_demand floor13 = level(tls_level::verified, 13);
  EXPECT_FALSE(judge(floor13, tls(12, true, true)).ok);
  EXPECT_EQ(report(floor13, tls(12, true, true)), "no-policy-found success");
}
