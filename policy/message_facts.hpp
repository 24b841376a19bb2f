// A small, pure RFC 5322 / MIME reader: the facts classification needs from a
// message (headers, Subject, decoded text, attachment names, size). It reads
// bytes in memory only, is bounds-checked, and never throws on bad input.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sealgate::policy {

struct message_facts {
  std::vector<std::pair<std::string, std::string>> headers;  // top-level, unfolded, in order
  std::string subject;                                       // RFC 2047 words decoded
  std::string text;                                          // decoded text/* parts, joined by "\n"
  std::vector<std::string> attachment_names;
  uint64_t size = 0;
};

// Limits that keep a hostile message from costing unbounded time or memory.
struct message_limits {
  size_t max_text = 4 * 1024 * 1024;  // decoded text kept for body/DLP scans
  int max_depth = 16;                 // nested multiparts
  size_t max_parts = 1000;
};

message_facts read_message(std::string_view raw, const message_limits& limits = {});

// Exposed for tests and for the portal's message view; all are lenient and
// skip what they cannot decode.
std::string decode_base64(std::string_view in);
std::string decode_quoted_printable(std::string_view in);
std::string decode_rfc2047(std::string_view in);
// The same, with each encoded word's bytes turned into text by to_text, given
// the word's charset label as written (RFC 2231 5 language suffix included).
using charset_decoder = std::string (*)(std::string_view charset, std::string_view bytes);
std::string decode_rfc2047(std::string_view in, charset_decoder to_text);

// The pieces of this reader the portal's message view (portal/web) walks MIME
// with, declared so that the project parses MIME structure one way. Lenient
// like the rest: what is not a header, parameter or delimiter is skipped.

using header_list = std::vector<std::pair<std::string, std::string>>;
// Unfolded header fields of an entity into headers (names and values
// trimmed); returns the body after the first empty line. A first line that is
// not a field makes the whole entity body; no empty line, no body.
std::string_view split_headers(std::string_view entity, header_list& headers);
// The first field of that name (ASCII case ignored), or nullptr.
const std::string* find_header(const header_list& headers, std::string_view name);

// A Content-Type or Content-Disposition value (RFC 2045 5.1, RFC 2183).
struct content_field {
  std::string value;  // lower-cased type/subtype or disposition
  std::vector<std::pair<std::string, std::string>> params;  // quotes removed, in order
  // A parameter with RFC 2231 extended values (name*=charset'lang'%XX) and
  // continuations (name*0, name*1*, ...) joined and percent-decoded; "" when
  // absent. charset, when given, receives the extended value's charset ("" for
  // a plain value): the bytes are returned as they are, not converted.
  std::string param(std::string_view name, std::string* charset = nullptr) const;
};
content_field parse_content_field(std::string_view value);

// Calls part with each body part of a multipart body in order (RFC 2046
// 5.1.1: the CRLF before a delimiter belongs to it), until part returns
// false. An unterminated last part is still given (less is known, not nothing).
void for_each_part(std::string_view body, std::string_view boundary, const std::function<bool(std::string_view)>& part);

}  // namespace sealgate::policy
