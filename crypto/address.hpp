// Mail addresses as key discovery sees them: matching a key's user ID or a
// certificate's address against a recipient, and the DNS owner names of
// RFC 7929 and RFC 8162. Pure functions; never touches the network.
#pragma once
#include <optional>
#include <string>
#include <string_view>

namespace sealgate::crypto {

struct mail_address {
  std::string local;
  std::string domain;  // lower case
};
// Splits at the last '@'; nullopt when either side is empty.
std::optional<mail_address> parse_address(std::string_view address);

// The local part compares exactly (RFC 5321 2.4: only the receiving host may
// interpret it); the domain without regard to case. With fold_plus_tag the
// "+tag" of both local parts is ignored (alice+news@ is alice@).
bool address_matches(std::string_view candidate, std::string_view wanted, bool fold_plus_tag);

// SHA-256 of the local part, first 28 octets in hex, then the label and the
// domain: RFC 7929 3 ("_openpgpkey") and RFC 8162 3 ("_smimecert").
std::string openpgpkey_name(std::string_view address);
std::string smimea_name(std::string_view address);

}  // namespace sealgate::crypto
