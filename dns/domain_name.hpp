// Syntax of domain names and address literals as they appear in SMTP paths and
// EHLO (RFC 5321 4.1.2, 4.1.3; RFC 1035 labels; RFC 6531 U-labels under SMTPUTF8).
// Pure functions: no lookups happen here.
#pragma once
#include <string_view>

namespace sealgate::dns {

// A domain of dot-separated labels: letters, digits, hyphens (not at a label's
// ends), each label 1..63 octets, the whole at most 253 octets without a final
// dot. With allow_utf8, octets >= 0x80 count as letters (RFC 6531 U-labels);
// their validity as IDNA is the next hop's business.
bool is_valid_domain(std::string_view name, bool allow_utf8);

// "[192.0.2.1]" or "[IPv6:2001:db8::1]" (RFC 5321 4.1.3), checked by parsing
// the address itself.
bool is_address_literal(std::string_view text);

}  // namespace sealgate::dns
