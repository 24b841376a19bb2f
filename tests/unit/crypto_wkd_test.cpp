// WKD's pure parts: z-base-32, the hashed local part (the draft's own
// example), the advanced and direct URLs, and what each HTTPS answer means.
// The fetch itself is proven against a real HTTPS server in crypto_test.py.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "crypto/wkd.hpp"

using namespace sealgate::crypto;
using sealgate::policy::fact;

namespace {
std::string zb(std::vector<uint8_t> v) { return z_base32(v); }

https_response status(int code, std::string body = {}) {
  https_response r;
  r.ok = true;
  r.status = code;
  r.body = std::move(body);
  return r;
}

https_response failed(std::string error) {
  https_response r;
  r.error = std::move(error);
  return r;
}
}  // namespace

TEST(ZBase32, BitsMostSignificantFirstAndTheLastGroupPadded) {
  EXPECT_EQ(zb({}), "");
  EXPECT_EQ(zb({0x00}), "yy");
  EXPECT_EQ(zb({0xff}), "9h");
  EXPECT_EQ(zb({0xf0, 0xbf, 0xc7}), "6n9hq");
  EXPECT_EQ(zb({'h', 'e', 'l', 'l', 'o'}), "pb1sa5dx");  // 40 bits: eight groups, no padding
}

// draft-koch-openpgp-webkey-service 3.1: "Joe.Doe@Example.ORG" gives this hash.
TEST(WkdHash, TheDraftsExample) {
  EXPECT_EQ(wkd_hash("Joe.Doe"), "iy9q119eutrkn8s1mk4r39qejnbu3n5q");
  EXPECT_EQ(wkd_hash("joe.doe"), wkd_hash("JOE.DOE"));
  EXPECT_EQ(wkd_hash("x").size(), 32u);  // 160 bits
}

TEST(WkdUrl, AdvancedAndDirectForms) {
  auto a = wkd_url(wkd_method::advanced, "Joe.Doe", "Example.ORG");
  EXPECT_EQ(a.host, "openpgpkey.example.org");
  EXPECT_EQ(a.target, "/.well-known/openpgpkey/example.org/hu/iy9q119eutrkn8s1mk4r39qejnbu3n5q?l=Joe.Doe");
  auto d = wkd_url(wkd_method::direct, "Joe.Doe", "Example.ORG");
  EXPECT_EQ(d.host, "example.org");
  EXPECT_EQ(d.target, "/.well-known/openpgpkey/hu/iy9q119eutrkn8s1mk4r39qejnbu3n5q?l=Joe.Doe");
}

TEST(WkdUrl, TheLocalPartCannotChangeTheQuery) {
  auto a = wkd_url(wkd_method::direct, "a+b&c=d#e%f g", "example.org");
  EXPECT_EQ(a.target.substr(a.target.find("?l=")), "?l=a%2Bb%26c%3Dd%23e%25f%20g");
  EXPECT_EQ(wkd_url(wkd_method::direct, "x", "example.org.").host, "example.org");
}

TEST(WkdAnswer, AKeyIsFoundOnlyIn200WithABody) {
  EXPECT_EQ(classify_wkd_response(status(200, "\x99\x01")).outcome, fact::found);
  auto empty = classify_wkd_response(status(200));
  EXPECT_EQ(empty.outcome, fact::absent);
  EXPECT_EQ(empty.detail, "HTTP 200 with an empty body: no key");
}

TEST(WkdAnswer, NotFoundAndGoneAreProvenAbsent) {
  auto r = classify_wkd_response(status(404));
  EXPECT_EQ(r.outcome, fact::absent);
  EXPECT_EQ(r.detail, "HTTP 404: no key published");
  EXPECT_EQ(classify_wkd_response(status(410)).outcome, fact::absent);
}

// A failure is never "no key": the key may be there once the server answers.
TEST(WkdAnswer, FailuresAreTemporary) {
  auto server = classify_wkd_response(status(503));
  EXPECT_EQ(server.outcome, fact::tempfail);
  EXPECT_EQ(server.detail, "HTTP 503");
  auto redirect = classify_wkd_response(status(302));
  EXPECT_EQ(redirect.outcome, fact::tempfail);
  EXPECT_EQ(redirect.detail, "HTTP 302: redirects are not followed");
  EXPECT_EQ(classify_wkd_response(status(403)).outcome, fact::tempfail);
  auto timeout = classify_wkd_response(failed("connect: timeout"));
  EXPECT_EQ(timeout.outcome, fact::tempfail);
  EXPECT_EQ(timeout.detail, "connect: timeout");
  auto tls = classify_wkd_response(failed("TLS: certificate not verified: unable to get local issuer certificate"));
  EXPECT_EQ(tls.outcome, fact::tempfail);
  EXPECT_EQ(tls.detail, "TLS: certificate not verified: unable to get local issuer certificate");
  EXPECT_EQ(classify_wkd_response(failed("connect: Connection refused")).outcome, fact::tempfail);
}
