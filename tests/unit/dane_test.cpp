// RFC 7672 TLSA matching over certificates generated here (a CA, a leaf it
// issued, an unrelated CA and leaf): usages 2 and 3, selectors 0 and 1,
// matching types 0, 1 and 2; unusable records; chains that do not link.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "crypto/dane.hpp"
#include "crypto/tls_context.hpp"

using namespace sealgate::crypto;

namespace {

using der = std::vector<unsigned char>;

EVP_PKEY* new_key() { return EVP_EC_gen("P-256"); }

void add_ext(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  ASSERT_NE(ext, nullptr);
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

// A certificate for subject_cn with key, signed by issuer_key (issuer: null for self-signed).
der make_cert(const char* subject_cn, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key, bool ca, const char* san,
              long days = 2, long serial = 1) {
  X509* c = X509_new();
  X509_set_version(c, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(c), serial);
  X509_gmtime_adj(X509_getm_notBefore(c), days > 0 ? 0 : -86400 * 10);
  X509_gmtime_adj(X509_getm_notAfter(c), 86400 * days);
  X509_set_pubkey(c, key);
  X509_NAME* name = X509_get_subject_name(c);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(subject_cn), -1, -1, 0);
  X509_set_issuer_name(c, issuer ? X509_get_subject_name(issuer) : name);
  add_ext(c, issuer ? issuer : c, NID_basic_constraints, ca ? "critical,CA:TRUE" : "CA:FALSE");
  if (san) add_ext(c, issuer ? issuer : c, NID_subject_alt_name, san);
  X509_sign(c, issuer_key, EVP_sha256());
  int n = i2d_X509(c, nullptr);
  der out(static_cast<size_t>(n));
  unsigned char* p = out.data();
  i2d_X509(c, &p);
  X509_free(c);
  return out;
}

X509* parse(const der& d) {
  const unsigned char* p = d.data();
  return d2i_X509(nullptr, &p, static_cast<long>(d.size()));
}

struct pki {
  EVP_PKEY *ca_key = new_key(), *leaf_key = new_key(), *other_ca_key = new_key(), *other_key = new_key();
  der ca, leaf, other_ca, other_leaf, expired_leaf;
  pki() {
    ca = make_cert("Test CA", ca_key, nullptr, ca_key, true, nullptr);
    X509* ca_x = parse(ca);
    leaf = make_cert("mx.example.net", leaf_key, ca_x, ca_key, false, "DNS:mx.example.net,DNS:*.mail.example.net", 2, 2);
    expired_leaf = make_cert("mx.example.net", leaf_key, ca_x, ca_key, false, "DNS:mx.example.net", -1, 3);
    other_ca = make_cert("Other CA", other_ca_key, nullptr, other_ca_key, true, nullptr);
    X509* other_x = parse(other_ca);
    other_leaf = make_cert("mx.example.net", other_key, other_x, other_ca_key, false, "DNS:mx.example.net");
    X509_free(ca_x);
    X509_free(other_x);
  }
  ~pki() {
    for (auto* k : {ca_key, leaf_key, other_ca_key, other_key}) EVP_PKEY_free(k);
  }
};

tlsa_rr rr(uint8_t u, uint8_t s, uint8_t m, const der& cert) { return {u, s, m, tlsa_association(cert, s, m)}; }

}  // namespace

TEST(Dane, AssociationDataLengths) {
  pki k;
  EXPECT_EQ(tlsa_association(k.leaf, 0, 0), k.leaf);
  EXPECT_EQ(tlsa_association(k.leaf, 0, 1).size(), 32u);
  EXPECT_EQ(tlsa_association(k.leaf, 1, 2).size(), 64u);
  EXPECT_GT(tlsa_association(k.leaf, 1, 0).size(), 60u);  // an EC P-256 SubjectPublicKeyInfo
  EXPECT_TRUE(tlsa_association(k.leaf, 2, 0).empty());
  EXPECT_TRUE(tlsa_association(der{1, 2, 3}, 0, 0).empty());
}

TEST(Dane, DaneEeEverySelectorAndMatchingType) {
  pki k;
  for (uint8_t s : {0, 1})
    for (uint8_t m : {0, 1, 2}) {
      auto r = dane_verify({rr(3, s, m, k.leaf)}, {k.leaf, k.ca}, {"mx.example.net"});
      EXPECT_EQ(r.match, dane_match::match) << int(s) << int(m) << " " << r.detail;
      EXPECT_EQ(r.detail, "DANE-EE 3 " + std::to_string(s) + " " + std::to_string(m) + " matches the server certificate");
    }
}

TEST(Dane, DaneEeIgnoresNamesAndExpiry) {
  // RFC 7672 3.1.1: the key is the identity; name and dates do not matter.
  pki k;
  EXPECT_EQ(dane_verify({rr(3, 1, 1, k.leaf)}, {k.leaf}, {"somewhere.else"}).match, dane_match::match);
  EXPECT_EQ(dane_verify({rr(3, 1, 1, k.expired_leaf)}, {k.expired_leaf}, {}).match, dane_match::match);
}

TEST(Dane, DaneTaMatchesAnIssuerInTheChain) {
  pki k;
  for (uint8_t s : {0, 1})
    for (uint8_t m : {0, 1, 2}) {
      auto r = dane_verify({rr(2, s, m, k.ca)}, {k.leaf, k.ca}, {"mx.example.net"});
      EXPECT_EQ(r.match, dane_match::match) << r.detail;
      EXPECT_EQ(r.detail, "DANE-TA 2 " + std::to_string(s) + " " + std::to_string(m) + " matches chain certificate 1");
    }
  // Wildcard only as the whole left-most label (RFC 7672 3.2.3).
  EXPECT_EQ(dane_verify({rr(2, 1, 1, k.ca)}, {k.leaf, k.ca}, {"a.mail.example.net"}).match, dane_match::match);
  EXPECT_EQ(dane_verify({rr(2, 1, 1, k.ca)}, {k.leaf, k.ca}, {"a.b.mail.example.net"}).match, dane_match::mismatch);
}

TEST(Dane, DaneTaRefusals) {
  pki k;
  // The TA was appended by the server but did not issue the leaf.
  auto r = dane_verify({rr(2, 1, 1, k.other_ca)}, {k.leaf, k.other_ca}, {"mx.example.net"});
  EXPECT_EQ(r.match, dane_match::mismatch);
  EXPECT_EQ(r.detail, "DANE-TA matched a certificate that did not issue the chain");
  // The leaf does not name the MX host.
  r = dane_verify({rr(2, 1, 1, k.ca)}, {k.leaf, k.ca}, {"other.example.net"});
  EXPECT_EQ(r.detail, "DANE-TA matched, but the server certificate does not name the MX host");
  // The TA must be in the chain: the leaf alone is not enough.
  EXPECT_EQ(dane_verify({rr(2, 1, 1, k.ca)}, {k.leaf}, {"mx.example.net"}).match, dane_match::mismatch);
  // The leaf itself is not a trust anchor.
  EXPECT_EQ(dane_verify({rr(2, 1, 1, k.leaf)}, {k.leaf, k.ca}, {"mx.example.net"}).match, dane_match::mismatch);
  // An expired leaf under DANE-TA.
  r = dane_verify({rr(2, 1, 1, k.ca)}, {k.expired_leaf, k.ca}, {"mx.example.net"});
  EXPECT_EQ(r.detail, "DANE-TA 2 1 1 matches, but the server certificate has expired");
}

TEST(Dane, MismatchWhenNoUsableRecordMatches) {
  pki k;
  auto r = dane_verify({rr(3, 1, 1, k.other_leaf), rr(2, 0, 1, k.other_ca)}, {k.leaf, k.ca}, {"mx.example.net"});
  EXPECT_EQ(r.match, dane_match::mismatch);
  EXPECT_EQ(r.detail, "no usable TLSA record matches the server's certificate chain");
  EXPECT_EQ(dane_verify({rr(3, 1, 1, k.leaf)}, {}, {}).detail, "the server sent no certificate");
  EXPECT_EQ(dane_verify({rr(3, 1, 1, k.leaf)}, {der{0x30, 0x01}}, {}).detail, "a certificate of the chain does not parse");
}

TEST(Dane, UnusableRecords) {
  pki k;
  // PKIX-TA(0) and PKIX-EE(1) are not for SMTP (RFC 7672 3.1.3), even when they would match.
  auto r = dane_verify({rr(1, 1, 1, k.leaf), rr(0, 0, 1, k.ca)}, {k.leaf, k.ca}, {"mx.example.net"});
  EXPECT_EQ(r.match, dane_match::unusable);
  EXPECT_FALSE(usable_for_smtp({3, 2, 1, der(32)}));   // selector 2
  EXPECT_FALSE(usable_for_smtp({3, 1, 3, der(32)}));   // matching type 3
  EXPECT_FALSE(usable_for_smtp({3, 1, 1, der(31)}));   // SHA-256 data of the wrong length
  EXPECT_FALSE(usable_for_smtp({3, 1, 2, der(32)}));   // SHA-512 data of the wrong length
  EXPECT_FALSE(usable_for_smtp({3, 0, 0, der{}}));     // empty full data
  EXPECT_TRUE(usable_for_smtp({2, 0, 2, der(64)}));
  // One usable record among unusable ones decides.
  EXPECT_EQ(dane_verify({rr(1, 1, 1, k.leaf), rr(3, 1, 2, k.leaf)}, {k.leaf}, {}).match, dane_match::match);
}

TEST(Dane, CertificateNamesHost) {
  pki k;
  EXPECT_TRUE(certificate_names_host(k.leaf, "mx.example.net"));
  EXPECT_TRUE(certificate_names_host(k.leaf, "MX.Example.NET"));
  EXPECT_TRUE(certificate_names_host(k.leaf, "x.mail.example.net"));
  EXPECT_FALSE(certificate_names_host(k.leaf, "mail.example.net"));
  EXPECT_FALSE(certificate_names_host(k.leaf, ""));
  EXPECT_FALSE(certificate_names_host(der{1}, "mx.example.net"));
}
