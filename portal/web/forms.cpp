// Form bodies and cookies from the browser; see forms.hpp. Strict by choice:
// the portal's own pages are the only legitimate senders, so whatever they
// would not send is refused rather than interpreted.
#include "portal/web/forms.hpp"

#include "common/text.hpp"
#include "policy/message_facts.hpp"
#include "portal/web/message_view.hpp"
#include "portal/web/utf8.hpp"

#include <algorithm>

namespace sealgate::portal {
namespace {

namespace pol = sealgate::policy;

constexpr size_t npos = std::string_view::npos;
constexpr size_t max_name = 256;

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// %XX decoding, '+' as a space when plus_is_space; nullopt on a '%' without
// two hex digits after it.
std::optional<std::string> percent_decode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%') {
      if (i + 2 >= s.size() || hex_value(s[i + 1]) < 0 || hex_value(s[i + 2]) < 0) return std::nullopt;
      out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

bool has_control(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7F; });
}

bool valid_field_name(std::string_view name) {
  return !name.empty() && name.size() <= max_name && !has_control(name) && is_valid_utf8(name);
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// RFC 2046 5.1.1 bchars: what a boundary may be made of.
bool boundary_char(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         std::string_view("'()+_,-./:=? ").find(c) != npos;
}

std::optional<std::string> form_boundary(std::string_view content_type_header) {
  pol::content_field type = pol::parse_content_field(content_type_header);
  if (type.value != "multipart/form-data") return std::nullopt;
  std::optional<std::string> boundary;
  for (const auto& [key, value] : type.params) {
    if (!iequals_ascii(key, "boundary")) continue;
    if (boundary) return std::nullopt;  // two boundaries: which one would the sender mean?
    boundary = value;
  }
  if (!boundary || boundary->empty() || boundary->size() > 70 || boundary->back() == ' ' ||
      !std::all_of(boundary->begin(), boundary->end(), boundary_char))
    return std::nullopt;
  return boundary;
}

bool token_char(char c) { return c > 32 && c < 127 && std::string_view("()<>@,;:\\\"/[]?=").find(c) == npos; }

// What a part's header block says (RFC 7578 4.2, 4.4, 4.7).
struct part_header {
  std::string name;
  bool is_file = false;
  std::string filename;  // decoded to UTF-8, not sanitized
  std::string content_type = "application/octet-stream";
};

// filename* (RFC 5987 3.2: charset'language'%XX...), UTF-8 or ISO-8859-1.
std::optional<std::string> extended_value(std::string_view v) {
  size_t q1 = v.find('\'');
  size_t q2 = q1 == npos ? npos : v.find('\'', q1 + 1);
  if (q2 == npos) return std::nullopt;
  std::string charset = lower_ascii(v.substr(0, q1));
  if (charset != "utf-8" && charset != "iso-8859-1") return std::nullopt;
  auto bytes = percent_decode(v.substr(q2 + 1), false);
  if (!bytes) return std::nullopt;
  if (charset == "utf-8" && !is_valid_utf8(*bytes)) return std::nullopt;
  return charset_to_utf8(charset, *bytes);
}

std::optional<part_header> parse_disposition(std::string_view value) {
  pol::content_field d = pol::parse_content_field(value);
  if (d.value != "form-data") return std::nullopt;
  part_header h;
  int names = 0, filenames = 0, extended = 0;
  std::string filename, filename_ext;
  for (const auto& [key, v] : d.params) {
    if (iequals_ascii(key, "name")) {
      ++names;
      h.name = v;
    } else if (iequals_ascii(key, "filename")) {
      ++filenames;
      filename = v;
    } else if (iequals_ascii(key, "filename*")) {
      ++extended;
      auto decoded = extended_value(v);
      if (!decoded) return std::nullopt;
      filename_ext = std::move(*decoded);
    } else if (lower_ascii(key).starts_with("name*") || lower_ascii(key).starts_with("filename*")) {
      return std::nullopt;  // RFC 2231 continuations: no browser sends them, and they would be a second name
    }
  }
  if (names != 1 || filenames > 1 || extended > 1 || !valid_field_name(h.name)) return std::nullopt;
  h.is_file = filenames + extended > 0;
  // RFC 6266 4.3: the extended form, when understood, wins.
  h.filename = extended ? filename_ext : valid_utf8(filename);
  return h;
}

std::optional<part_header> parse_part_header(std::string_view block) {
  std::optional<part_header> header;
  bool have_type = false;
  std::string content_type;
  size_t pos = 0;
  while (pos < block.size()) {
    size_t eol = block.find("\r\n", pos);
    if (eol == npos) return std::nullopt;
    std::string_view line = block.substr(pos, eol - pos);
    pos = eol + 2;
    if (line.find_first_of("\r\n") != npos) return std::nullopt;  // bare CR or LF
    size_t colon = line.find(':');
    if (colon == npos || colon == 0) return std::nullopt;  // also a folded line: RFC 7578 senders never fold
    std::string_view name = line.substr(0, colon);
    if (!std::all_of(name.begin(), name.end(), token_char)) return std::nullopt;
    std::string_view value = trim(line.substr(colon + 1));
    if (iequals_ascii(name, "Content-Disposition")) {
      if (header) return std::nullopt;
      header = parse_disposition(value);
      if (!header) return std::nullopt;
    } else if (iequals_ascii(name, "Content-Type")) {
      if (have_type) return std::nullopt;
      have_type = true;
      content_type = pol::parse_content_field(value).value;
    } else if (iequals_ascii(name, "Content-Transfer-Encoding")) {
      // RFC 7578 4.7: deprecated; an encoded body would be stored encoded.
      std::string cte = lower_ascii(value);
      if (cte != "7bit" && cte != "8bit" && cte != "binary") return std::nullopt;
    }
    // Other fields are ignored (RFC 7578 4.8).
  }
  if (!header) return std::nullopt;
  size_t slash = content_type.find('/');
  if (have_type && slash != npos && slash > 0 && slash + 1 < content_type.size() &&
      std::all_of(content_type.begin(), content_type.end(), [](char c) { return token_char(c) || c == '/'; }))
    header->content_type = content_type;
  return header;
}

}  // namespace

std::optional<std::map<std::string, std::string>> parse_urlencoded(std::string_view body, size_t max_fields) {
  std::map<std::string, std::string> fields;
  size_t count = 0;
  size_t pos = 0;
  while (pos <= body.size()) {
    size_t amp = body.find('&', pos);
    if (amp == npos) amp = body.size();
    std::string_view piece = body.substr(pos, amp - pos);
    pos = amp + 1;
    if (piece.empty()) continue;
    if (++count > max_fields) return std::nullopt;
    size_t eq = piece.find('=');
    auto name = percent_decode(piece.substr(0, eq), true);
    auto value = percent_decode(eq == npos ? std::string_view() : piece.substr(eq + 1), true);
    if (!name || !value || !valid_field_name(*name) || !is_valid_utf8(*value)) return std::nullopt;
    if (!fields.emplace(std::move(*name), std::move(*value)).second) return std::nullopt;
  }
  return fields;
}

std::optional<multipart_form> parse_multipart(std::string_view content_type_header, std::string_view body,
                                              const form_limits& limits) {
  auto boundary = form_boundary(content_type_header);
  if (!boundary) return std::nullopt;
  const std::string dash_boundary = "--" + *boundary;
  const std::string delimiter = "\r\n" + dash_boundary;  // RFC 2046 5.1.1: the CRLF belongs to the delimiter
  if (!body.starts_with(dash_boundary)) return std::nullopt;
  size_t pos = dash_boundary.size();
  multipart_form form;
  size_t parts = 0;
  size_t file_bytes = 0;
  while (true) {
    // Just past a delimiter: "--" closes; otherwise transport padding, then CRLF.
    if (body.substr(pos, 2) == "--") return form;
    while (pos < body.size() && (body[pos] == ' ' || body[pos] == '\t')) ++pos;
    if (body.substr(pos, 2) != "\r\n") return std::nullopt;
    pos += 2;
    if (++parts > limits.max_parts) return std::nullopt;

    size_t header_end;  // just past the header block's last CRLF
    if (body.substr(pos, 2) == "\r\n") {
      header_end = pos;
    } else {
      size_t blank = body.substr(pos, limits.max_part_header + 4).find("\r\n\r\n");
      if (blank == npos) return std::nullopt;
      header_end = pos + blank + 2;
    }
    auto header = parse_part_header(body.substr(pos, header_end - pos));
    if (!header) return std::nullopt;
    pos = header_end + 2;

    size_t end = body.find(delimiter, pos);
    if (end == npos) return std::nullopt;  // no delimiter after this part: the body was cut
    std::string_view content = body.substr(pos, end - pos);
    pos = end + delimiter.size();

    if (!header->is_file) {
      if (content.size() > limits.max_field || !is_valid_utf8(content)) return std::nullopt;
      if (!form.fields.emplace(header->name, std::string(content)).second) return std::nullopt;
      continue;
    }
    if (header->filename.empty() && content.empty()) continue;  // a file input left empty
    if (content.size() > limits.max_file_bytes - file_bytes) return std::nullopt;
    file_bytes += content.size();
    form.files.push_back(form_file{header->name, sanitize_file_name(header->filename, form.files.size() + 1),
                                   header->content_type, std::string(content)});
  }
}

std::string cookie_value(std::string_view cookie_header, std::string_view name) {
  if (name.empty()) return {};
  std::string_view found;
  int matches = 0;
  size_t pos = 0;
  while (pos <= cookie_header.size()) {
    size_t semi = cookie_header.find(';', pos);
    if (semi == npos) semi = cookie_header.size();
    std::string_view pair = trim(cookie_header.substr(pos, semi - pos));
    pos = semi + 1;
    size_t eq = pair.find('=');
    if (eq == npos || trim(pair.substr(0, eq)) != name) continue;
    ++matches;
    found = trim(pair.substr(eq + 1));
    if (found.size() >= 2 && found.front() == '"' && found.back() == '"') found = found.substr(1, found.size() - 2);
  }
  return matches == 1 ? std::string(found) : std::string();
}

}  // namespace sealgate::portal
