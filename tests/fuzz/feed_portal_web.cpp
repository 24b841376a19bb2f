// fuzz_portal_web: what the portal's internet-facing process reads from a
// browser (form bodies, multipart uploads, the Cookie header) and from a
// deposited message (the view, its attachments, HTML bodies), and the reply it
// composes from a browser's fields, whose header block must stay intact.
//
// Input: the first byte picks the parser (bits 0-2) and small limits (bit 3);
//   0  urlencoded body (the rest)
//   1  multipart: the first line is the Content-Type header, the rest the body
//   2  Cookie: the first line is the cookie's name, the rest the header
//   3  a message: the view and every attachment's bytes
//   4  HTML: the next byte is the output limit with small limits; then the HTML
//   5  reply: 8 bytes of date (little-endian), then fields separated by 0x1f:
//      from, from_name, to, to_name, reply_to, subject, message id replied to,
//      references, message_id, host, text, then (filename, data) pairs
//   6, 7  every text parser (urlencoded, cookie, HTML, file names) on the rest
#include <algorithm>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "portal/web/forms.hpp"
#include "portal/web/html.hpp"
#include "portal/web/message_view.hpp"
#include "portal/web/reply.hpp"
#include "portal/web/utf8.hpp"
#include "tests/fuzz/fuzz_input.hpp"
#include "tests/fuzz/fuzz_parsers.hpp"

namespace sealgate::fuzz {
namespace {

namespace portal = sealgate::portal;

bool is_format_character(char32_t cp) {
  return cp == 0x061C || (cp >= 0x200B && cp <= 0x200F) || (cp >= 0x202A && cp <= 0x202E) ||
         (cp >= 0x2060 && cp <= 0x2069) || cp == 0xFEFF;
}

bool has_unicode_control(std::string_view s) {
  for (char32_t cp : portal::decode_utf8(s))
    if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F)) return true;
  return false;
}

// What sanitize_file_name promises (message_view.hpp): a name safe to show and
// to put in a Content-Disposition, whatever the message or browser sent.
void check_file_name(std::string_view name) {
  SEALGATE_FUZZ_CHECK(!name.empty() && name.size() <= 200);
  SEALGATE_FUZZ_CHECK(portal::is_valid_utf8(name));
  SEALGATE_FUZZ_CHECK(name.find_first_of("/\\<>:\"|?*") == std::string_view::npos);
  SEALGATE_FUZZ_CHECK(!has_unicode_control(name));
  for (char32_t cp : portal::decode_utf8(name)) SEALGATE_FUZZ_CHECK(!is_format_character(cp));
  SEALGATE_FUZZ_CHECK(name.front() != '.' && name.front() != ' ' && name.back() != '.' && name.back() != ' ');
}

// Text the page shows: valid UTF-8 with no control characters but tab and LF.
void check_display_text(std::string_view s) {
  SEALGATE_FUZZ_CHECK(portal::is_valid_utf8(s));
  for (char32_t cp : portal::decode_utf8(s))
    SEALGATE_FUZZ_CHECK(cp == '\t' || cp == '\n' || !(cp < 0x20 || (cp >= 0x7F && cp <= 0x9F)));
}

void check_display_line(std::string_view s, size_t max_bytes) {
  SEALGATE_FUZZ_CHECK(s.size() <= max_bytes);
  SEALGATE_FUZZ_CHECK(portal::is_valid_utf8(s));
  SEALGATE_FUZZ_CHECK(!has_unicode_control(s));
}

void check_download_type(std::string_view type) {
  std::string served = portal::safe_download_type(type);
  // Nothing a browser would run in the portal's origin.
  for (std::string_view active : {"html", "svg", "xml", "script"})
    SEALGATE_FUZZ_CHECK(served.find(active) == std::string::npos);
}

void check_field_name(std::string_view name) {
  SEALGATE_FUZZ_CHECK(!name.empty() && name.size() <= 256 && !has_control(name) && portal::is_valid_utf8(name));
}

void feed_urlencoded(std::string_view body, bool small, parse_counts& counts) {
  size_t max_fields = small ? 3 : 20;
  auto form = portal::parse_urlencoded(body, max_fields);
  if (!form) {
    ++counts.portal_forms_refused;
    return;
  }
  SEALGATE_FUZZ_CHECK(form->size() <= max_fields);
  for (const auto& [name, value] : *form) {
    check_field_name(name);
    SEALGATE_FUZZ_CHECK(portal::is_valid_utf8(value));
  }
  ++counts.portal_forms_ok;
}

void feed_multipart(input_cursor& in, bool small, parse_counts& counts) {
  std::string_view content_type = in.line();
  std::string_view body = in.rest();
  portal::form_limits limits;
  if (small) {
    limits.max_parts = 4;
    limits.max_field = 32;
    limits.max_file_bytes = 64;
    limits.max_part_header = 128;
  }
  auto form = portal::parse_multipart(content_type, body, limits);
  if (!form) {
    ++counts.portal_forms_refused;
    return;
  }
  SEALGATE_FUZZ_CHECK(form->fields.size() + form->files.size() <= limits.max_parts);
  for (const auto& [name, value] : form->fields) {
    check_field_name(name);
    SEALGATE_FUZZ_CHECK(value.size() <= limits.max_field && portal::is_valid_utf8(value));
  }
  size_t file_bytes = 0;
  for (const auto& f : form->files) {
    check_field_name(f.field);
    check_file_name(f.filename);
    SEALGATE_FUZZ_CHECK(!has_control(f.content_type) && f.content_type.find(';') == std::string::npos);
    check_download_type(f.content_type);
    file_bytes += f.data.size();
  }
  SEALGATE_FUZZ_CHECK(file_bytes <= limits.max_file_bytes);
  ++counts.portal_forms_ok;
}

void feed_cookie(std::string_view header, std::string_view name, parse_counts& counts) {
  std::string value = portal::cookie_value(header, name);
  if (value.empty()) return;
  // A value comes from one "name=value" pair of the header: never from two.
  SEALGATE_FUZZ_CHECK(!name.empty() && value.find(';') == std::string::npos && value.size() < header.size());
  SEALGATE_FUZZ_CHECK(header.find(value) != std::string_view::npos);
  ++counts.portal_cookies;
}

void feed_view(std::string_view raw, bool small, parse_counts& counts) {
  portal::view_limits limits;
  if (small) {
    limits.max_header_block = 1024;
    limits.max_field = 24;
    limits.max_text = 48;
    limits.max_depth = 2;
    limits.max_parts = 6;
  }
  auto view = portal::read_message_view(raw, limits);
  if (!view) {
    ++counts.portal_views_refused;
    SEALGATE_FUZZ_CHECK(!portal::attachment_bytes(raw, 0, limits));
    return;
  }
  ++counts.portal_views;
  for (const std::string* field : {&view->from, &view->to, &view->cc, &view->date, &view->subject, &view->message_id})
    check_display_line(*field, limits.max_field);
  SEALGATE_FUZZ_CHECK(view->text.size() <= limits.max_text);
  check_display_text(view->text);
  SEALGATE_FUZZ_CHECK(view->attachments.size() <= limits.max_parts);
  for (size_t i = 0; i < view->attachments.size(); ++i) {
    const portal::attachment& a = view->attachments[i];
    SEALGATE_FUZZ_CHECK(a.index == i);
    check_file_name(a.name);
    // Shown names are final: sanitizing again changes nothing.
    SEALGATE_FUZZ_CHECK(portal::sanitize_file_name(a.name, i + 1) == a.name);
    SEALGATE_FUZZ_CHECK(!a.content_type.empty() && !has_control(a.content_type));
    check_download_type(a.content_type);
    // The size on the page is the size of the download.
    auto bytes = portal::attachment_bytes(raw, i, limits);
    SEALGATE_FUZZ_CHECK(bytes.has_value());
    SEALGATE_FUZZ_CHECK(bytes->size() == a.size);
    ++counts.portal_attachments;
  }
  SEALGATE_FUZZ_CHECK(!portal::attachment_bytes(raw, view->attachments.size(), limits));
}

void feed_html(std::string_view html, size_t max_out, parse_counts& counts) {
  std::string text = portal::html_to_text(html, max_out);
  SEALGATE_FUZZ_CHECK(text.size() <= max_out);
  check_display_text(text);
  std::string escaped = portal::html_escape(html);
  SEALGATE_FUZZ_CHECK(escaped.find_first_of("<>\"'") == std::string::npos);
  // Escaping the text the page shows, the page's own use.
  SEALGATE_FUZZ_CHECK(portal::html_escape(text).find_first_of("<>\"'") == std::string::npos);
  ++counts.portal_html;
}

// The text helpers on raw bytes: whatever comes in, valid UTF-8 comes out.
void feed_text(std::string_view bytes) {
  std::string repaired = portal::valid_utf8(bytes);
  SEALGATE_FUZZ_CHECK(portal::is_valid_utf8(repaired));
  if (portal::is_valid_utf8(bytes)) SEALGATE_FUZZ_CHECK(repaired == bytes);
  check_display_text(portal::display_text(bytes));
  check_display_line(portal::display_line(bytes, 40), 40);
  for (std::string_view charset : {"utf-8", "iso-8859-1", "iso-8859-15*de", "x-unknown"})
    SEALGATE_FUZZ_CHECK(portal::is_valid_utf8(portal::charset_to_utf8(charset, bytes)));
  std::string name = portal::sanitize_file_name(bytes, 7);
  check_file_name(name);
  SEALGATE_FUZZ_CHECK(portal::sanitize_file_name(name, 7) == name);
  check_download_type(bytes);
}

// compose_reply's header block: CRLF lines of at most 998 octets, each a field
// compose_reply writes or a folded continuation; nothing a field's author
// wrote can end the block early or add a field.
void check_reply_wire_form(std::string_view m, bool with_attachments) {
  SEALGATE_FUZZ_CHECK(!has_bare_newline(m) && m.ends_with("\r\n"));
  for (size_t start = 0; start < m.size();) {
    size_t eol = m.find("\r\n", start);
    SEALGATE_FUZZ_CHECK(eol - start <= 998);
    start = eol + 2;
  }
  for (unsigned char c : m) SEALGATE_FUZZ_CHECK(c >= 0x20 ? c != 0x7F : c == '\r' || c == '\n' || c == '\t');

  size_t end = m.find("\r\n\r\n");
  SEALGATE_FUZZ_CHECK(end != std::string_view::npos);
  std::string_view block = m.substr(0, end + 2);
  static constexpr std::string_view known[] = {"From",        "To",         "Reply-To",     "Subject",
                                               "Date",        "Message-ID", "In-Reply-To",  "References",
                                               "MIME-Version", "Content-Type", "Content-Transfer-Encoding"};
  int seen[std::size(known)] = {};
  bool first = true;
  for (size_t start = 0; start < block.size();) {
    size_t eol = block.find("\r\n", start);
    std::string_view line = block.substr(start, eol - start);
    start = eol + 2;
    SEALGATE_FUZZ_CHECK(!line.empty());
    if (line.front() == ' ' || line.front() == '\t') {
      // A continuation of the field above, with something in it (RFC 5322
      // 3.2.2: a line of white space only is obsolete syntax).
      SEALGATE_FUZZ_CHECK(!first && line.find_first_not_of(" \t") != std::string_view::npos);
      continue;
    }
    first = false;
    size_t colon = line.find(':');
    SEALGATE_FUZZ_CHECK(colon != std::string_view::npos);
    auto it = std::find(std::begin(known), std::end(known), line.substr(0, colon));
    SEALGATE_FUZZ_CHECK(it != std::end(known));
    ++seen[it - std::begin(known)];
  }
  for (size_t i = 0; i < std::size(known); ++i) {
    bool required = known[i] == "From" || known[i] == "To" || known[i] == "Subject" || known[i] == "Date" ||
                    known[i] == "Message-ID" || known[i] == "MIME-Version" || known[i] == "Content-Type";
    if (known[i] == "Content-Transfer-Encoding") required = !with_attachments;
    SEALGATE_FUZZ_CHECK(seen[i] <= 1);
    if (required) SEALGATE_FUZZ_CHECK(seen[i] == 1);
  }
}

void feed_reply(input_cursor& in, parse_counts& counts) {
  uint64_t date = 0;
  for (int i = 0; i < 8; ++i) date |= static_cast<uint64_t>(in.byte()) << (8 * i);
  std::string_view rest = in.rest();
  auto next = [&rest]() {
    size_t sep = rest.find('\x1f');
    std::string field(rest.substr(0, sep));
    rest = sep == std::string_view::npos ? std::string_view() : rest.substr(sep + 1);
    return field;
  };
  portal::reply_input r;
  r.date = static_cast<int64_t>(date);
  r.from = next();
  r.from_name = next();
  r.to = next();
  r.to_name = next();
  r.reply_to = next();
  r.original_subject = next();
  r.original_message_id = next();
  r.original_references = next();
  r.message_id = next();
  r.host = next();
  r.text = next();
  while (!rest.empty() && r.attachments.size() < 8) {
    portal::reply_attachment a;
    a.filename = next();
    a.data = next();
    r.attachments.push_back(std::move(a));
  }

  std::string m = portal::compose_reply(r);
  check_reply_wire_form(m, !r.attachments.empty());

  // Our own reader finds what was written: the text, each attachment under its
  // sanitized name with its bytes, and the subject as a reply's.
  auto view = portal::read_message_view(m);
  SEALGATE_FUZZ_CHECK(view.has_value());
  SEALGATE_FUZZ_CHECK(!view->truncated);
  std::string text = portal::display_text(r.text);
  // A single-part body that does not end in a line end gets one.
  SEALGATE_FUZZ_CHECK(view->text == text || (r.attachments.empty() && view->text == text + "\n"));
  SEALGATE_FUZZ_CHECK(view->attachments.size() == r.attachments.size());
  for (size_t i = 0; i < view->attachments.size() && i < r.attachments.size(); ++i) {
    SEALGATE_FUZZ_CHECK(view->attachments[i].name == portal::sanitize_file_name(r.attachments[i].filename, i + 1));
    SEALGATE_FUZZ_CHECK(portal::attachment_bytes(m, i) == r.attachments[i].data);
    ++counts.portal_attachments;
  }
  SEALGATE_FUZZ_CHECK(view->subject.size() >= 3 && (view->subject[0] == 'R' || view->subject[0] == 'r') &&
                      (view->subject[1] == 'E' || view->subject[1] == 'e') && view->subject[2] == ':');
  SEALGATE_FUZZ_CHECK(!view->message_id.empty());
  ++counts.portal_replies;
}

}  // namespace

void feed_portal_web(const uint8_t* data, size_t size, parse_counts& counts) {
  input_cursor in(data, size);
  uint8_t setup = in.byte();
  bool small = setup & 8;
  switch (setup & 7) {
    case 0:
      feed_urlencoded(in.rest(), small, counts);
      break;
    case 1:
      feed_multipart(in, small, counts);
      break;
    case 2: {
      std::string_view name = in.line();
      feed_cookie(in.rest(), name, counts);
      break;
    }
    case 3:
      feed_view(in.rest(), small, counts);
      break;
    case 4: {
      size_t max_out = small ? in.byte() : 1 << 20;
      feed_html(in.rest(), max_out, counts);
      break;
    }
    case 5:
      feed_reply(in, counts);
      break;
    default: {
      std::string_view rest = in.rest();
      feed_urlencoded(rest, small, counts);
      feed_cookie(rest, "__Host-sg", counts);
      feed_html(rest, small ? 64 : 1 << 20, counts);
      feed_text(rest);
      break;
    }
  }
}

}  // namespace sealgate::fuzz
