// DANE for SMTP (RFC 7672): matches TLSA records against the certificate chain
// an MX presented. Pure functions over DER bytes; no I/O, no DNS. Must never
// call a chain matched on a record it cannot use (usages 0 and 1, unknown
// selectors or matching types).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sealgate::crypto {

struct tlsa_rr {
  uint8_t usage = 0, selector = 0, matching_type = 0;
  std::vector<unsigned char> data;
};

enum class dane_match {
  match,     // a usable record matched (DANE-EE: the leaf; DANE-TA: a CA in the chain, signatures and name checked)
  mismatch,  // usable records exist and none matched
  unusable,  // no record is usable for SMTP (RFC 7672 3.1: only DANE-TA(2) and DANE-EE(3))
};
std::string_view to_string(dane_match m);

struct dane_result {
  dane_match match = dane_match::unusable;
  std::string detail;  // which record matched, or why nothing did
};

// A record is usable for SMTP when its usage is 2 or 3 (RFC 7672 3.1.3: PKIX-TA
// and PKIX-EE are not), its selector 0 (certificate) or 1 (SubjectPublicKeyInfo),
// and its matching type 0 (full), 1 (SHA2-256) or 2 (SHA2-512) with data of the
// right length.
bool usable_for_smtp(const tlsa_rr& r);

// chain: DER certificates as the server sent them, leaf first. names: the
// reference identifiers for DANE-TA (RFC 7672 3.2.2: the MX host name, and the
// TLSA base domain when CNAMEs were followed). DANE-EE ignores names and
// validity dates (RFC 7672 3.1.1); DANE-TA checks that the leaf chains to the
// matched certificate by signatures and that the leaf names one of `names`.
dane_result dane_verify(const std::vector<tlsa_rr>& records, const std::vector<std::vector<unsigned char>>& chain,
                        const std::vector<std::string>& names);

// The association data a record with (selector, matching_type) would carry for
// cert (DER); empty when the certificate cannot be parsed. For tests and for
// `sealgate probe` to show what would match.
std::vector<unsigned char> tlsa_association(const std::vector<unsigned char>& cert_der, uint8_t selector,
                                            uint8_t matching_type);

}  // namespace sealgate::crypto
