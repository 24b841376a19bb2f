// Text vocabulary every folder shares, written once: ASCII case folding (mail
// names and keywords compare without regard to ASCII case; other octets of
// UTF-8 stay as they are), the domain of an address, base64 (RFC 4648 4).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sealgate {

// A-Z to a-z; every other octet unchanged.
std::string lower_ascii(std::string_view s);
constexpr char lower_ascii(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }
bool iequals_ascii(std::string_view a, std::string_view b);

// The part after the last '@', lower case (ASCII); "" without an '@'.
std::string domain_of(std::string_view address);

std::string base64_encode(std::string_view data);
// SHA-256 of data in lower-case hex: how the policy, the audit chain and
// their readers name bytes.
std::string sha256_hex(std::string_view data);
// base64url (RFC 4648 5) without padding: tokens in links, the loop stamp's MAC.
// The decoder refuses padding, other characters and non-canonical endings.
std::string base64url_encode(std::string_view data);
std::optional<std::string> base64url_decode(std::string_view text);

// & < > " ' as entities: safe in HTML text and in quoted attributes (the
// portal's pages, the notification's HTML version).
std::string html_escape(std::string_view text);

// A JSON string literal; octets >= 0x80 and control characters as \u00XX, so
// the output is always valid JSON whatever a remote server sent.
std::string json_string(std::string_view s);
// Strict: rejects characters outside the alphabet and bad padding; nullopt-like
// failure is reported through ok.
std::string base64_decode(std::string_view text, bool& ok);

// t (unix seconds) in UTC through strftime's format: iso_utc for machines and
// logs, readable_utc for people (the portal's pages and mails).
inline constexpr const char* iso_utc = "%Y-%m-%dT%H:%M:%SZ";
inline constexpr const char* readable_utc = "%d %B %Y, %H:%M UTC";
std::string utc_time(int64_t t, const char* format);

}  // namespace sealgate
