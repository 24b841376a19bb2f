// What a browser posts to the portal: urlencoded and multipart/form-data
// bodies, and the Cookie header. The input comes from the internet: every
// parser is strict (anything malformed is nullopt, never a guess), limited in
// counts and sizes, linear in the input, and never throws on bad input.
#pragma once
#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sealgate::portal {

// application/x-www-form-urlencoded (WHATWG URL 5.1): fields split on '&'
// (empty pieces skipped), name and value on the first '=' (none: value ""),
// '+' is a space, %XX a byte. nullopt when: a '%' is not followed by two hex
// digits; a decoded name is empty, over 256 bytes or holds a control
// character; a name or value is not valid UTF-8; a name occurs twice (our
// forms never repeat a name, and first-wins against last-wins is how
// parameter pollution slips past a check); there are more than max_fields.
std::optional<std::map<std::string, std::string>> parse_urlencoded(std::string_view body, size_t max_fields);

struct form_file {
  std::string field;         // the form field's name
  std::string filename;      // sanitize_file_name of what the browser sent
  std::string content_type;  // as the browser declared it (lower case, no parameters); not to be trusted
  std::string data;
};

struct multipart_form {
  std::map<std::string, std::string> fields;
  std::vector<form_file> files;  // in the order sent; several may share a field (<input multiple>)
};

struct form_limits {
  size_t max_parts = 32;                    // parts of any kind, empty file inputs included
  size_t max_field = 64 * 1024;             // one text field's value
  size_t max_file_bytes = 25 * 1024 * 1024; // all files together
  size_t max_part_header = 8 * 1024;        // one part's header block
};

// multipart/form-data (RFC 7578 over RFC 2046 5.1). The boundary comes from
// content_type_header (quoted or not, 1-70 characters of RFC 2046 bchars).
// The body must open with the first delimiter (no preamble: browsers send
// none), use CRLF, and close with the final delimiter (an epilogue after it
// is ignored). A part needs Content-Disposition: form-data with a non-empty
// name; a filename (or RFC 5987 filename*, preferred) makes it a file, and a
// file part with an empty filename and no data (a file input left empty) is
// skipped. Text fields follow parse_urlencoded's rules (valid UTF-8, names
// unique); files are bytes. nullopt on anything malformed: a missing or
// invalid boundary, a delimiter followed by anything but CRLF or "--",
// folded or nameless part header lines, a repeated disposition parameter, a
// Content-Transfer-Encoding other than 7bit/8bit/binary, or a limit passed.
std::optional<multipart_form> parse_multipart(std::string_view content_type_header, std::string_view body,
                                              const form_limits& limits = {});

// The value of cookie name in a Cookie header (RFC 6265 5.4: "a=b; c=d"),
// surrounding double quotes removed; "" when absent, and "" too when the
// name occurs more than once: a cookie set for a parent domain or another
// path (cookie tossing) must not be able to stand in for ours.
std::string cookie_value(std::string_view cookie_header, std::string_view name);

}  // namespace sealgate::portal
