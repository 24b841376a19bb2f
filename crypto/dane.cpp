// RFC 7672 TLSA matching; see dane.hpp. Every certificate is parsed here from
// DER with OpenSSL and freed before returning; never trusts a record it cannot
// use, never reads the network.
#include "crypto/dane.hpp"

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>

namespace sealgate::crypto {
namespace {

struct x509_free_t {
  void operator()(X509* x) const { X509_free(x); }
};
using x509_ptr = std::unique_ptr<X509, x509_free_t>;

x509_ptr parse(const std::vector<unsigned char>& der) {
  const unsigned char* p = der.data();
  return x509_ptr(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
}

std::vector<unsigned char> selected(X509* cert, uint8_t selector) {
  std::vector<unsigned char> out;
  int n = selector == 0 ? i2d_X509(cert, nullptr) : i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), nullptr);
  if (n <= 0) return out;
  out.resize(static_cast<size_t>(n));
  unsigned char* p = out.data();
  if (selector == 0) i2d_X509(cert, &p);
  else i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &p);
  return out;
}

std::vector<unsigned char> digest(const std::vector<unsigned char>& in, uint8_t matching_type) {
  if (matching_type == 0) return in;
  const EVP_MD* md = matching_type == 1 ? EVP_sha256() : EVP_sha512();
  std::vector<unsigned char> out(static_cast<size_t>(EVP_MD_get_size(md)));
  unsigned int len = 0;
  if (EVP_Digest(in.data(), in.size(), out.data(), &len, md, nullptr) != 1) return {};
  out.resize(len);
  return out;
}

std::vector<unsigned char> association(X509* cert, uint8_t selector, uint8_t matching_type) {
  auto s = selected(cert, selector);
  return s.empty() ? s : digest(s, matching_type);
}

// chain[0..upto] is a signature chain: each certificate issued and signed by
// the next. Stops DANE-TA from matching a CA certificate that the server
// merely appended without it having issued the leaf.
bool signed_chain(const std::vector<x509_ptr>& certs, size_t upto) {
  for (size_t k = 0; k < upto; ++k) {
    if (X509_check_issued(certs[k + 1].get(), certs[k].get()) != X509_V_OK) return false;
    EVP_PKEY* key = X509_get0_pubkey(certs[k + 1].get());
    if (!key || X509_verify(certs[k].get(), key) != 1) return false;
  }
  return true;
}

std::string describe(const tlsa_rr& r) {
  return std::to_string(r.usage) + " " + std::to_string(r.selector) + " " + std::to_string(r.matching_type);
}

}  // namespace

std::string_view to_string(dane_match m) {
  switch (m) {
    case dane_match::match: return "match";
    case dane_match::mismatch: return "mismatch";
    case dane_match::unusable: return "unusable";
  }
  return "?";
}

bool usable_for_smtp(const tlsa_rr& r) {
  if (r.usage != 2 && r.usage != 3) return false;
  if (r.selector > 1) return false;
  switch (r.matching_type) {
    case 0: return !r.data.empty();
    case 1: return r.data.size() == 32;
    case 2: return r.data.size() == 64;
    default: return false;
  }
}

std::vector<unsigned char> tlsa_association(const std::vector<unsigned char>& cert_der, uint8_t selector,
                                            uint8_t matching_type) {
  auto cert = parse(cert_der);
  if (!cert || selector > 1 || matching_type > 2) return {};
  return association(cert.get(), selector, matching_type);
}

dane_result dane_verify(const std::vector<tlsa_rr>& records, const std::vector<std::vector<unsigned char>>& chain,
                        const std::vector<std::string>& names) {
  std::vector<const tlsa_rr*> usable;
  for (const auto& r : records)
    if (usable_for_smtp(r)) usable.push_back(&r);
  if (usable.empty()) return {dane_match::unusable, "no TLSA record usable for SMTP (RFC 7672 3.1: usages 2 and 3 only)"};
  if (chain.empty()) return {dane_match::mismatch, "the server sent no certificate"};
  std::vector<x509_ptr> certs;
  for (const auto& der : chain) {
    auto c = parse(der);
    if (!c) return {dane_match::mismatch, "a certificate of the chain does not parse"};
    certs.push_back(std::move(c));
  }

  // DANE-EE first: it needs nothing but the leaf.
  for (const tlsa_rr* r : usable) {
    if (r->usage != 3) continue;
    if (association(certs[0].get(), r->selector, r->matching_type) == r->data)
      return {dane_match::match, "DANE-EE " + describe(*r) + " matches the server certificate"};
  }
  bool ta_matched_unsigned = false, ta_matched_wrong_name = false;
  for (const tlsa_rr* r : usable) {
    if (r->usage != 2) continue;
    // The trust anchor must be in the chain the server sent (RFC 7672 3.1.2
    // asks servers to include it); the leaf itself cannot be its own TA.
    for (size_t i = 1; i < certs.size(); ++i) {
      if (association(certs[i].get(), r->selector, r->matching_type) != r->data) continue;
      if (!signed_chain(certs, i)) {
        ta_matched_unsigned = true;
        continue;
      }
      bool named = false;
      for (const auto& n : names)
        named |= !n.empty() && X509_check_host(certs[0].get(), n.data(), n.size(), X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS,
                                               nullptr) == 1;
      if (!named) {
        ta_matched_wrong_name = true;
        continue;
      }
      // RFC 7672 3.1.2 leaves expiry of DANE-TA chains to the client; an expired leaf is refused.
      if (X509_cmp_current_time(X509_get0_notAfter(certs[0].get())) < 0) {
        return {dane_match::mismatch, "DANE-TA " + describe(*r) + " matches, but the server certificate has expired"};
      }
      return {dane_match::match, "DANE-TA " + describe(*r) + " matches chain certificate " + std::to_string(i)};
    }
  }
  if (ta_matched_wrong_name) return {dane_match::mismatch, "DANE-TA matched, but the server certificate does not name the MX host"};
  if (ta_matched_unsigned) return {dane_match::mismatch, "DANE-TA matched a certificate that did not issue the chain"};
  return {dane_match::mismatch, "no usable TLSA record matches the server's certificate chain"};
}

}  // namespace sealgate::crypto
