// Text the portal can put on a page or in a header: valid UTF-8 from bytes in
// any of the charsets mail uses, without the control characters that would
// let a message rearrange what the recipient sees. Pure functions on memory;
// they never throw on bad input and run in linear time.
#pragma once
#include <string>
#include <string_view>

namespace sealgate::portal {

// Appends the UTF-8 form of code_point; a surrogate or a value above
// U+10FFFF becomes U+FFFD.
void append_utf8(std::string& out, char32_t code_point);

// bytes with every ill-formed UTF-8 sequence replaced by U+FFFD (one per
// maximal subpart, Unicode 15 3.9, as browsers do); overlong forms and
// surrogates count as ill-formed.
std::string valid_utf8(std::string_view bytes);
bool is_valid_utf8(std::string_view bytes);
// The code points of bytes, each ill-formed sequence as one U+FFFD.
std::u32string decode_utf8(std::string_view bytes);

// The longest prefix of s no longer than max_bytes that does not end inside
// a UTF-8 sequence (s is expected to be valid UTF-8).
std::string_view utf8_prefix(std::string_view s, size_t max_bytes);

// bytes in the charset a MIME label names, as valid UTF-8. UTF-8 and
// US-ASCII are kept; ISO-8859-1 (decoded as windows-1252, as the WHATWG
// Encoding Standard does, since mail labelled latin-1 is written on Windows)
// and ISO-8859-15 are converted; any other label keeps the bytes with invalid
// sequences replaced. An RFC 2231 language suffix ("utf-8*en") is ignored.
std::string charset_to_utf8(std::string_view charset, std::string_view bytes);

// A body for display: valid UTF-8, line ends as LF (CRLF and bare CR alike),
// no control characters but tab and line feed.
std::string display_text(std::string_view bytes);
// One header value for display: valid UTF-8 on one line (CR, LF and tab
// become spaces, other controls are dropped), trimmed, at most max_bytes.
std::string display_line(std::string_view bytes, size_t max_bytes);

}  // namespace sealgate::portal
