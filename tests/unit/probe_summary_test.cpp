// The probe's summary and its conversion to the policy's domain_facts, as
// tables: a failed lookup or an unreached MX is never a "no"; DANE needs a
// secure MX RRset; MTA-STS enforce counts a certificate only for listed MX
// hosts; a failed MTA-STS fetch is unknown.
#include <gtest/gtest.h>

#include "gateway/facts/probe.hpp"

using namespace sealgate::gateway;
using sealgate::policy::dane_state;
using sealgate::policy::fact;
using sealgate::policy::mta_sts_state;
namespace dns = sealgate::dns;
namespace crypto = sealgate::crypto;

namespace {
mx_probe tls_host(std::string host, std::string protocol, bool verified) {
  mx_probe m;
  m.host = std::move(host);
  m.reached = fact::found;
  m.starttls = fact::found;
  m.tls_ok = true;
  m.tls_protocol = std::move(protocol);
  m.chain_verified = verified;
  m.host_matched = verified;
  return m;
}
mx_probe plain_host(std::string host) {
  mx_probe m;
  m.host = std::move(host);
  m.reached = fact::found;
  m.starttls = fact::absent;
  return m;
}
mx_probe unreached(std::string host) {
  mx_probe m;
  m.host = std::move(host);
  return m;  // reached and starttls: tempfail
}
domain_probe domain(std::vector<mx_probe> mx, bool secure = false) {
  domain_probe d;
  d.domain = "example.net";
  d.mx_status = dns::mx_outcome::hosts;
  d.mx_secure = secure;
  d.mx = std::move(mx);
  d.mx_total = d.mx.size();
  d.mta_sts.status = dns::outcome::absent;
  d.summary = summarize(d);
  return d;
}
domain_probe with_sts(domain_probe d, dns::outcome status, sts_mode mode = sts_mode::enforce,
                      std::vector<std::string> mx = {"*.example.net"}) {
  d.mta_sts.status = status;
  d.mta_sts.policy = {mode, 86400, std::move(mx)};
  d.summary = summarize(d);
  return d;
}
}  // namespace

TEST(ProbeSummary, BestVersionAndAnyVerifiedHost) {
  auto d = domain({tls_host("a.example.net", "TLSv1.2", false), tls_host("b.example.net", "TLSv1.3", true)});
  EXPECT_EQ(d.summary.best_tls_version, sealgate::policy::tls_version::v1_3);
  EXPECT_EQ(d.summary.verified, fact::found);
  auto f = to_domain_facts(d);
  EXPECT_EQ(f.starttls, fact::found);
  EXPECT_EQ(f.tls_version, sealgate::policy::tls_version::v1_3);
  EXPECT_EQ(f.cert_verified, fact::found);
  EXPECT_EQ(f.dane, dane_state::none);
  EXPECT_EQ(f.mta_sts, mta_sts_state::none);
}

TEST(ProbeSummary, UnreachedIsUnknownNeverAbsent) {
  struct row {
    std::vector<mx_probe> mx;
    fact starttls, verified;
  } rows[] = {
      {{unreached("a")}, fact::tempfail, fact::tempfail},
      {{plain_host("a")}, fact::absent, fact::absent},
      {{plain_host("a"), unreached("b")}, fact::tempfail, fact::tempfail},
      {{unreached("a"), tls_host("b", "TLSv1.3", true)}, fact::found, fact::found},
      {{tls_host("a", "TLSv1.2", false)}, fact::found, fact::absent},
      {{tls_host("a", "TLSv1.2", false), unreached("b")}, fact::found, fact::tempfail},
  };
  for (size_t i = 0; i < std::size(rows); ++i) {
    auto d = domain(rows[i].mx);
    EXPECT_EQ(d.summary.starttls, rows[i].starttls) << "row " << i;
    EXPECT_EQ(d.summary.verified, rows[i].verified) << "row " << i;
  }
  // A STARTTLS handshake that failed: offered, but its certificate is unknown.
  auto failed = tls_host("a", "", false);
  failed.tls_ok = false;
  auto d = domain({failed});
  EXPECT_EQ(d.summary.starttls, fact::found);
  EXPECT_EQ(d.summary.verified, fact::tempfail);
  EXPECT_EQ(to_domain_facts(d).tls_version, sealgate::policy::tls_version::unknown);  // the policy then defers: the version is unknown
}

TEST(ProbeSummary, DnsTemporaryFailureMakesEverythingUnknown) {
  domain_probe d;
  d.mx_status = dns::mx_outcome::temporary_failure;
  d.summary = summarize(d);
  EXPECT_FALSE(d.ran());
  EXPECT_EQ(d.summary.dane, "bogus");
  EXPECT_EQ(d.summary.mta_sts, "error");
  auto f = to_domain_facts(d);
  EXPECT_EQ(f.starttls, fact::tempfail);
  EXPECT_EQ(f.cert_verified, fact::tempfail);
  EXPECT_EQ(f.dane, dane_state::unknown);
  EXPECT_EQ(f.mta_sts, mta_sts_state::unknown);
}

TEST(ProbeSummary, DaneTable) {
  auto with = [](tlsa_state t, std::optional<crypto::dane_match> m) {
    auto h = tls_host("mx.example.net", "TLSv1.3", false);
    h.tlsa = t;
    if (m) h.dane = crypto::dane_result{*m, ""};
    return h;
  };
  struct row {
    bool mx_secure;
    mx_probe host;
    const char* dane;
    const char* match;
    dane_state facts;
  } rows[] = {
      {true, with(tlsa_state::secure, crypto::dane_match::match), "secure", "match", dane_state::secure},
      {true, with(tlsa_state::secure, crypto::dane_match::mismatch), "secure", "mismatch", dane_state::mismatch},
      {true, with(tlsa_state::secure, crypto::dane_match::unusable), "secure", "unusable", dane_state::none},
      {true, with(tlsa_state::secure, std::nullopt), "secure", "", dane_state::unknown},  // TLSA but no TLS session
      {true, with(tlsa_state::none, std::nullopt), "none", "", dane_state::none},
      {true, with(tlsa_state::insecure, std::nullopt), "insecure", "", dane_state::none},
      {true, with(tlsa_state::bogus, std::nullopt), "bogus", "", dane_state::unknown},
      // RFC 7672 2.2.1: an insecure MX RRset means no DANE, whatever the host's TLSA says.
      {false, with(tlsa_state::secure, crypto::dane_match::mismatch), "insecure", "", dane_state::none},
  };
  for (size_t i = 0; i < std::size(rows); ++i) {
    auto d = domain({rows[i].host}, rows[i].mx_secure);
    EXPECT_EQ(d.summary.dane, rows[i].dane) << "row " << i;
    EXPECT_EQ(d.summary.dane_match, rows[i].match) << "row " << i;
    EXPECT_EQ(to_domain_facts(d).dane, rows[i].facts) << "row " << i;
  }
}

TEST(ProbeSummary, MtaStsTable) {
  auto base = domain({tls_host("mx.example.net", "TLSv1.3", true)});
  auto enforce = with_sts(base, dns::outcome::found);
  EXPECT_EQ(enforce.summary.mta_sts, "enforce");
  EXPECT_EQ(to_domain_facts(enforce).mta_sts, mta_sts_state::enforce);
  EXPECT_EQ(enforce.summary.verified, fact::found);
  auto unlisted = with_sts(base, dns::outcome::found, sts_mode::enforce, {"*.elsewhere.example"});
  EXPECT_EQ(unlisted.summary.verified, fact::absent) << "RFC 8461 4.2: an MX not in the policy is not valid";
  auto testing = with_sts(base, dns::outcome::found, sts_mode::testing, {"*.elsewhere.example"});
  EXPECT_EQ(testing.summary.verified, fact::found) << "testing mode changes nothing";
  EXPECT_EQ(to_domain_facts(testing).mta_sts, mta_sts_state::testing);
  auto failed = with_sts(base, dns::outcome::temporary_failure);
  EXPECT_EQ(failed.summary.mta_sts, "error");
  EXPECT_EQ(to_domain_facts(failed).mta_sts, mta_sts_state::unknown);
  EXPECT_EQ(to_domain_facts(with_sts(base, dns::outcome::absent)).mta_sts, mta_sts_state::none);
  EXPECT_EQ(to_domain_facts(with_sts(base, dns::outcome::found, sts_mode::none)).mta_sts, mta_sts_state::none);
}

TEST(ProbeSummary, TlsVersionNumbers) {
  using sealgate::policy::tls_version;
  using sealgate::policy::tls_version_from_protocol;
  EXPECT_EQ(tls_version_from_protocol("TLSv1.3"), tls_version::v1_3);
  EXPECT_EQ(tls_version_from_protocol("TLSv1.2"), tls_version::v1_2);
  EXPECT_EQ(tls_version_from_protocol("TLSv1"), tls_version::v1_0);
  EXPECT_EQ(tls_version_from_protocol("SSLv3"), tls_version::unknown);
  EXPECT_EQ(tls_version_from_protocol(""), tls_version::unknown);
}
