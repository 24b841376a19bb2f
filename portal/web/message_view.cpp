// The portal's reading of a deposited message; see message_view.hpp. MIME is
// walked with policy/'s reader pieces (the same header, parameter and
// multipart parsing classification uses); this file decides what the
// recipient sees: which part is the body, which parts are attachments, and
// how names and text are made safe to show. Limits are checked before work:
// the header block's size before it is split, depth and part count before a
// multipart is entered.
#include "portal/web/message_view.hpp"

#include "common/text.hpp"
#include "policy/message_facts.hpp"
#include "portal/web/html.hpp"
#include "portal/web/utf8.hpp"

#include <algorithm>

namespace sealgate::portal {
namespace {

namespace pol = sealgate::policy;

constexpr size_t npos = std::string_view::npos;

// One leaf entity, as found: its body still in its transfer encoding.
struct leaf {
  std::string_view body;
  std::string media_type;  // lower case type/subtype
  std::string charset;
  std::string transfer_encoding;  // lower case
  bool attachment_disposition = false;
  std::string name;  // decoded to UTF-8, not sanitized; "" when the part has none
};

struct parsed_message {
  pol::header_list headers;  // the message's own
  std::vector<leaf> leaves;  // in document order
  bool truncated = false;
};

bool token_char(char c) {
  // RFC 2045 5.1 token: printable ASCII but tspecials and space.
  return c > 32 && c < 127 && std::string_view("()<>@,;:\\\"/[]?=").find(c) == npos;
}

bool valid_media_type(std::string_view t) {
  size_t slash = t.find('/');
  if (slash == npos || slash == 0 || slash + 1 == t.size()) return false;
  std::string_view type = t.substr(0, slash), subtype = t.substr(slash + 1);
  return std::all_of(type.begin(), type.end(), token_char) && std::all_of(subtype.begin(), subtype.end(), token_char);
}

// Whether split_headers would find the end of this entity's header block
// within limit bytes, decided without copying the block: a hostile message
// with megabytes of header fields is refused before they are unfolded.
bool header_block_within(std::string_view raw, size_t limit) {
  if (raw.size() <= limit) return true;
  std::string_view head = raw.substr(0, limit + 3);
  if (head.starts_with("\n") || head.starts_with("\r\n")) return true;
  if (head.find("\n\n") != npos || head.find("\n\r\n") != npos) return true;
  // A first line that is not a field means there is no header block at all.
  size_t eol = head.find('\n');
  if (eol == npos) return false;
  size_t colon = head.substr(0, eol).find(':');
  return colon == npos || colon == 0;
}

// A UTF-8 word's bytes are kept as they are until the whole value is
// repaired: some mailers split one character across two encoded words.
std::string word_to_utf8(std::string_view charset, std::string_view bytes) {
  std::string label = lower_ascii(charset.substr(0, charset.find('*')));
  if (label == "utf-8" || label == "utf8") return std::string(bytes);
  return charset_to_utf8(charset, bytes);
}

std::string decode_header_words(std::string_view raw) {
  return valid_utf8(pol::decode_rfc2047(raw, word_to_utf8));
}

// filename (Content-Disposition, RFC 2183) before name (Content-Type, the
// older form many clients still write); each in its RFC 2231 form when given
// (charset converted), else with RFC 2047 words decoded (not standard in a
// parameter, but what Outlook and others write).
std::string part_name(const pol::content_field& disposition, const pol::content_field& type) {
  std::string charset;
  std::string raw = disposition.param("filename", &charset);
  if (raw.empty()) raw = type.param("name", &charset);
  if (raw.empty()) return {};
  // A hostile name is cut before any work; 4 KiB is far more than 200 bytes shown.
  if (raw.size() > 4096) raw.resize(4096);
  return charset.empty() ? decode_header_words(raw) : charset_to_utf8(charset, raw);
}

class mime_walker {
 public:
  mime_walker(const view_limits& limits, parsed_message& out) : limits_(limits), out_(out) {}

  // false when the message's own header block is over the limit (a part's
  // only marks the view truncated).
  bool entity(std::string_view raw, int depth, bool top) {
    ++parts_;
    if (!header_block_within(raw, limits_.max_header_block)) {
      out_.truncated = true;
      return !top;
    }
    pol::header_list headers;
    std::string_view body = pol::split_headers(raw, headers);
    const std::string* content_type = pol::find_header(headers, "Content-Type");
    pol::content_field type = pol::parse_content_field(content_type ? *content_type : "text/plain");
    if (!valid_media_type(type.value)) type = pol::parse_content_field("text/plain");  // RFC 2045 5.2

    std::string boundary = type.value.starts_with("multipart/") ? type.param("boundary") : std::string();
    if (!boundary.empty()) {
      multipart(body, boundary, depth);
    } else {
      // A multipart without a boundary cannot be split: its text is shown as
      // it is (RFC 2045 5.2 treats an invalid Content-Type as text/plain).
      if (type.value.starts_with("multipart/")) type = pol::parse_content_field("text/plain");
      add_leaf(headers, type, body);
    }
    if (top) out_.headers = std::move(headers);
    return true;
  }

 private:
  void multipart(std::string_view body, const std::string& boundary, int depth) {
    if (depth + 1 > limits_.max_depth) {
      out_.truncated = true;
      return;
    }
    pol::for_each_part(body, boundary, [&](std::string_view part) {
      if (parts_ >= limits_.max_parts) {
        out_.truncated = true;
        return false;
      }
      entity(part, depth + 1, false);
      return true;
    });
  }

  void add_leaf(const pol::header_list& headers, const pol::content_field& type, std::string_view body) {
    leaf l;
    l.body = body;
    l.media_type = type.value;
    l.charset = type.param("charset");
    if (const std::string* cte = pol::find_header(headers, "Content-Transfer-Encoding")) l.transfer_encoding = lower_ascii(*cte);
    pol::content_field disposition;
    if (const std::string* d = pol::find_header(headers, "Content-Disposition")) disposition = pol::parse_content_field(*d);
    l.attachment_disposition = disposition.value == "attachment";
    l.name = part_name(disposition, type);
    out_.leaves.push_back(std::move(l));
  }

  const view_limits& limits_;
  parsed_message& out_;
  size_t parts_ = 0;
};

// Where each part of the view comes from: leaf numbers of the body and of
// the attachments, in the order the view lists them.
struct message_layout {
  parsed_message parsed;
  size_t body = npos;
  bool body_is_html = false;
  std::vector<size_t> attachments;
};

bool body_candidate(const leaf& l, std::string_view media_type) {
  return l.media_type == media_type && !l.attachment_disposition && l.name.empty();
}

std::optional<message_layout> lay_out(std::string_view raw, const view_limits& limits) {
  if (raw.size() > limits.max_message) return std::nullopt;
  message_layout m;
  mime_walker walker(limits, m.parsed);
  if (!walker.entity(raw, 0, true)) return std::nullopt;
  const auto& leaves = m.parsed.leaves;
  for (size_t i = 0; i < leaves.size() && m.body == npos; ++i)
    if (body_candidate(leaves[i], "text/plain")) m.body = i;
  for (size_t i = 0; i < leaves.size() && m.body == npos; ++i)
    if (body_candidate(leaves[i], "text/html")) {
      m.body = i;
      m.body_is_html = true;
    }
  for (size_t i = 0; i < leaves.size(); ++i) {
    const leaf& l = leaves[i];
    if (i == m.body) continue;
    bool text_twin = l.media_type == "text/plain" || l.media_type == "text/html";
    if (l.attachment_disposition || !l.name.empty() || !text_twin) m.attachments.push_back(i);
  }
  return m;
}

std::string decode_transfer(const leaf& l) {
  if (l.transfer_encoding == "base64") return pol::decode_base64(l.body);
  if (l.transfer_encoding == "quoted-printable") return pol::decode_quoted_printable(l.body);
  return std::string(l.body);  // 7bit, 8bit, binary, and encodings we do not know
}

// decode_transfer(l).size() without holding the decoded bytes for base64,
// the encoding of nearly every large attachment: decode_base64 yields one
// byte per 8 bits of alphabet characters before the first '='.
uint64_t decoded_size(const leaf& l) {
  if (l.transfer_encoding != "base64") return decode_transfer(l).size();
  uint64_t sextets = 0;
  for (char c : l.body) {
    if (c == '=') break;
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/') ++sextets;
  }
  return sextets * 6 / 8;
}

std::string extension_for(std::string_view media_type) {
  static constexpr std::pair<std::string_view, std::string_view> extensions[] = {
      {"application/pdf", ".pdf"}, {"image/png", ".png"},      {"image/jpeg", ".jpg"},      {"image/gif", ".gif"},
      {"image/webp", ".webp"},     {"text/plain", ".txt"},     {"text/html", ".html"},      {"text/calendar", ".ics"},
      {"text/csv", ".csv"},        {"message/rfc822", ".eml"}, {"message/global", ".eml"}, {"application/zip", ".zip"}};
  for (const auto& [type, extension] : extensions)
    if (type == media_type) return std::string(extension);
  return {};
}

std::string header_for_display(const pol::header_list& headers, std::string_view name, bool encoded_words,
                               const view_limits& limits) {
  const std::string* value = pol::find_header(headers, name);
  if (!value) return {};
  // Encoded words take at most about four bytes per byte they carry, so a cut
  // at four times the limit loses nothing shown and bounds the decoding.
  std::string_view raw = std::string_view(*value).substr(0, limits.max_field * 4);
  return display_line(encoded_words ? decode_header_words(raw) : std::string(raw), limits.max_field);
}

bool is_format_character(char32_t cp) {
  // Bidirectional controls and marks, zero-width characters, BOM: invisible,
  // and able to reorder or hide what a name appears to say.
  return cp == 0x061C || (cp >= 0x200B && cp <= 0x200F) || (cp >= 0x202A && cp <= 0x202E) ||
         (cp >= 0x2060 && cp <= 0x2069) || cp == 0xFEFF;
}

std::string_view trim_dots_and_spaces(std::string_view s, bool front) {
  if (front)
    while (!s.empty() && (s.front() == '.' || s.front() == ' ')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == '.' || s.back() == ' ')) s.remove_suffix(1);
  return s;
}

}  // namespace

std::string sanitize_file_name(std::string_view name, size_t number) {
  constexpr size_t max_name = 200;
  std::string clean;
  for (char32_t cp : decode_utf8(name.substr(0, 4096))) {
    if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) || is_format_character(cp)) continue;
    if (std::u32string_view(U"/\\<>:\"|?*").find(cp) != std::u32string_view::npos) cp = '_';
    append_utf8(clean, cp);
  }
  std::string_view s = trim_dots_and_spaces(clean, true);
  std::string out;
  if (s.size() <= max_name) {
    out = s;
  } else {
    // Keep a short extension: "report-…-final.pdf" cut in the middle still opens.
    size_t dot = s.rfind('.');
    std::string_view extension = dot == npos || dot == 0 ? std::string_view() : s.substr(dot);
    if (extension.size() > 16 || extension.find(' ') != npos) extension = {};
    std::string_view stem = extension.empty() ? s : s.substr(0, dot);
    out = trim_dots_and_spaces(utf8_prefix(stem, max_name - extension.size()), false);
    out += extension;
  }
  if (out.empty()) out = "attachment-" + std::to_string(number);
  return out;
}

std::string safe_download_type(std::string_view content_type) {
  std::string type = lower_ascii(content_type.substr(0, content_type.find(';')));
  type.erase(std::remove_if(type.begin(), type.end(), [](char c) { return c == ' ' || c == '\t'; }), type.end());
  // Types a browser shows or saves without running anything in our origin.
  // Never text/html, image/svg+xml, XML or script types: those would run in
  // the portal's origin if a browser ever displayed them.
  static constexpr std::pair<std::string_view, std::string_view> allowed[] = {
      {"application/pdf", "application/pdf"},
      {"image/png", "image/png"},
      {"image/jpeg", "image/jpeg"},
      {"image/jpg", "image/jpeg"},
      {"image/pjpeg", "image/jpeg"},
      {"image/gif", "image/gif"},
      {"image/webp", "image/webp"},
      {"text/plain", "text/plain; charset=utf-8"},
      {"text/csv", "text/csv"},
      {"text/calendar", "text/calendar"},
      {"application/zip", "application/zip"},
      {"application/x-zip-compressed", "application/zip"},
      {"application/msword", "application/msword"},
      {"application/vnd.ms-excel", "application/vnd.ms-excel"},
      {"application/vnd.ms-powerpoint", "application/vnd.ms-powerpoint"},
      {"application/rtf", "application/rtf"},
      {"application/vnd.openxmlformats-officedocument.wordprocessingml.document",
       "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
      {"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
       "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
      {"application/vnd.openxmlformats-officedocument.presentationml.presentation",
       "application/vnd.openxmlformats-officedocument.presentationml.presentation"},
      {"application/vnd.oasis.opendocument.text", "application/vnd.oasis.opendocument.text"},
      {"application/vnd.oasis.opendocument.spreadsheet", "application/vnd.oasis.opendocument.spreadsheet"},
      {"application/vnd.oasis.opendocument.presentation", "application/vnd.oasis.opendocument.presentation"},
  };
  for (const auto& [declared, served] : allowed)
    if (type == declared) return std::string(served);
  return "application/octet-stream";
}

std::optional<message_view> read_message_view(std::string_view rfc5322, const view_limits& limits) {
  auto layout = lay_out(rfc5322, limits);
  if (!layout) return std::nullopt;
  const parsed_message& parsed = layout->parsed;
  message_view view;
  view.from = header_for_display(parsed.headers, "From", true, limits);
  view.to = header_for_display(parsed.headers, "To", true, limits);
  view.cc = header_for_display(parsed.headers, "Cc", true, limits);
  view.subject = header_for_display(parsed.headers, "Subject", true, limits);
  view.date = header_for_display(parsed.headers, "Date", false, limits);
  view.message_id = header_for_display(parsed.headers, "Message-ID", false, limits);
  view.truncated = parsed.truncated;

  if (layout->body != npos) {
    const leaf& body = parsed.leaves[layout->body];
    std::string utf8 = charset_to_utf8(body.charset, decode_transfer(body));
    // One byte over the limit tells a cut text from one that fits exactly.
    view.text = layout->body_is_html ? html_to_text(utf8, limits.max_text + 1) : display_text(utf8);
    view.text_from_html = layout->body_is_html;
    if (view.text.size() > limits.max_text) {
      view.text = std::string(utf8_prefix(view.text, limits.max_text));
      view.truncated = true;
    }
  }

  for (size_t n = 0; n < layout->attachments.size(); ++n) {
    const leaf& l = parsed.leaves[layout->attachments[n]];
    attachment a;
    a.index = n;
    a.content_type = l.media_type;
    a.size = decoded_size(l);
    a.name = l.name.empty() ? "attachment-" + std::to_string(n + 1) + extension_for(l.media_type)
                            : sanitize_file_name(l.name, n + 1);
    view.attachments.push_back(std::move(a));
  }
  return view;
}

std::optional<std::string> attachment_bytes(std::string_view rfc5322, size_t index, const view_limits& limits) {
  auto layout = lay_out(rfc5322, limits);
  if (!layout || index >= layout->attachments.size()) return std::nullopt;
  return decode_transfer(layout->parsed.leaves[layout->attachments[index]]);
}

}  // namespace sealgate::portal
