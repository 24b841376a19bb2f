// Syntax of domain names and address literals as they appear in SMTP paths and
// EHLO (RFC 5321 4.1.2, 4.1.3; RFC 1035 labels; RFC 6531 U-labels under SMTPUTF8).
// Pure functions: no lookups happen here.
#pragma once
#include <optional>
#include <string>
#include <string_view>

namespace sealgate::dns {

// A domain of dot-separated labels: letters, digits, hyphens (not at a label's
// ends), each label 1..63 octets, the whole at most 253 octets without a final
// dot. With allow_utf8, octets >= 0x80 count as letters (RFC 6531 U-labels);
// such a name must also pass to_ascii_domain to be used.
bool is_valid_domain(std::string_view name, bool allow_utf8);

// The name as the DNS knows it: each U-label converted to its A-label by
// IDNA 2008 (RFC 5891, libidn2, NFC first), ASCII lower-cased. nullopt when a
// label is not valid IDNA or the text is not UTF-8. A name already in ASCII
// is only lower-cased.
std::optional<std::string> to_ascii_domain(std::string_view name);

// Well-formed UTF-8 (RFC 3629): no overlong forms, surrogates or code points
// past U+10FFFF.
bool is_valid_utf8(std::string_view text);

// "[192.0.2.1]" or "[IPv6:2001:db8::1]" (RFC 5321 4.1.3), checked by parsing
// the address itself.
bool is_address_literal(std::string_view text);

}  // namespace sealgate::dns
