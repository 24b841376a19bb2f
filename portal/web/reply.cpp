// Composing the portal reply; see reply.hpp. Header values pass through one
// of a few builders (address, phrase, unstructured text, msg-id), each of
// which drops line breaks and controls before anything is written, and every
// line is folded or encoded to stay within RFC 5322 2.1.1's 998 octets.
#include "portal/web/reply.hpp"

#include "common/text.hpp"
#include "portal/web/message_view.hpp"
#include "portal/web/utf8.hpp"

#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <random>

namespace sealgate::portal {
namespace {

constexpr size_t npos = std::string_view::npos;
constexpr char hex_digits[] = "0123456789ABCDEF";

std::string random_hex(size_t bytes) {
  std::string raw(bytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(bytes)) != 1) {
    // Uniqueness, not secrecy, is what a Message-ID or a boundary needs.
    std::random_device device;
    for (char& c : raw) c = static_cast<char>(device());
  }
  static constexpr char lower_hex[] = "0123456789abcdef";
  std::string out;
  for (char c : raw) {
    out += lower_hex[static_cast<unsigned char>(c) >> 4];
    out += lower_hex[static_cast<unsigned char>(c) & 0x0F];
  }
  return out;
}

bool printable_ascii(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c < 0x7F; });
}

// An unstructured value: one line of valid UTF-8, no controls, single spaces.
std::string unstructured(std::string_view s, size_t max_bytes) {
  std::string line = display_line(s, max_bytes);
  std::string out;
  for (char c : line)
    if (!(c == ' ' && !out.empty() && out.back() == ' ')) out += c;
  return out;
}

// An addr-spec with nothing that could end it, add a second one or open a
// comment or group: no white space, controls, <>()[],;:"\ . At most 512
// bytes after the repair too: each invalid byte becomes three (U+FFFD).
std::string address(std::string_view s) {
  std::string out;
  for (char c : valid_utf8(s.substr(0, 512)))
    if (static_cast<unsigned char>(c) > 0x20 && c != 0x7F && std::string_view("<>()[],;:\"\\").find(c) == npos) out += c;
  return std::string(utf8_prefix(out, 512));
}

// RFC 2047 "B" words of UTF-8, each at most 75 characters and holding whole
// characters (RFC 2047 2 and 5), separated by folding white space.
std::string encoded_words(std::string_view text) {
  constexpr size_t chunk = 39;  // 52 base64 characters: 64 with "=?utf-8?B?" and "?="
  std::string out;
  while (!text.empty()) {
    std::string_view piece = utf8_prefix(text, chunk);
    if (piece.empty()) piece = text.substr(0, 1);  // not UTF-8 after all: still make progress
    if (!out.empty()) out += "\r\n ";
    out += "=?utf-8?B?" + base64_encode(piece) + "?=";
    text.remove_prefix(piece.size());
  }
  return out;
}

// A display name: a quoted-string when plain ASCII, encoded words otherwise.
std::string phrase(std::string_view name) {
  std::string text = unstructured(name, 256);
  if (text.empty()) return {};
  if (!printable_ascii(text) || text.find("=?") != npos) return encoded_words(text);
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string mailbox(std::string_view name, std::string_view addr) {
  std::string display = phrase(name);
  std::string spec = address(addr);
  if (display.empty()) return spec;
  // A quoted name (up to 514 bytes) and an address (up to 512) can pass 998
  // octets on one line: then the address goes on a folded line of its own.
  size_t last_line = display.size() - (display.rfind('\n') == npos ? 0 : display.rfind('\n') + 1);
  bool fits = std::string_view("Reply-To: ").size() + last_line + 2 + spec.size() + 1 <= 998;
  return display + (fits ? " <" : "\r\n <") + spec + ">";
}

// "Name: value" folded at spaces before column 78 where there is a space.
std::string folded_field(std::string_view name, std::string_view value) {
  std::string out = std::string(name) + ":";
  size_t line = out.size();
  size_t pos = 0;
  while (pos < value.size()) {
    size_t space = value.find(' ', pos);
    std::string_view word = value.substr(pos, space == npos ? npos : space - pos);
    pos = space == npos ? value.size() : space + 1;
    if (line + 1 + word.size() > 78 && line > name.size() + 1) {
      out += "\r\n";
      line = 0;
    }
    out += ' ';
    out += word;
    line += 1 + word.size();
  }
  return out + "\r\n";
}

bool starts_with_re(std::string_view s) { return s.size() >= 3 && iequals_ascii(s.substr(0, 3), "re:"); }

std::string subject_field(std::string_view original) {
  std::string subject = unstructured(original, 2000);
  std::string_view rest = subject;
  std::string prefix = "Re:";
  if (starts_with_re(rest)) {
    prefix = std::string(rest.substr(0, 3));
    rest.remove_prefix(3);
  }
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  if (rest.empty()) return "Subject: " + prefix + "\r\n";
  // Plain ASCII folds at spaces; anything else, an "=?" that a reader would
  // take for an encoded word, or a word too long to fold is encoded.
  bool plain = printable_ascii(rest) && rest.find("=?") == npos;
  for (size_t pos = 0; plain && pos < rest.size();) {
    size_t space = rest.find(' ', pos);
    size_t end = space == npos ? rest.size() : space;
    if (end - pos > 900) plain = false;
    pos = end + 1;
  }
  if (plain) return folded_field("Subject", prefix + " " + std::string(rest));
  return "Subject: " + prefix + " " + encoded_words(rest) + "\r\n";
}

// A msg-id (RFC 5322 3.6.4) "<left@right>" of printable ASCII, or "".
std::string msg_id(std::string_view s) {
  size_t open = s.find('<');
  std::string_view inner = s;
  if (open != npos) {
    size_t close = s.find('>', open + 1);
    if (close == npos) return {};
    inner = s.substr(open + 1, close - open - 1);
  } else {
    while (!inner.empty() && inner.front() == ' ') inner.remove_prefix(1);
    while (!inner.empty() && inner.back() == ' ') inner.remove_suffix(1);
  }
  if (inner.empty() || inner.size() > 250 || inner.find('@') == npos) return {};
  if (!std::all_of(inner.begin(), inner.end(), [](char c) { return c > 0x20 && c < 0x7F && c != '<' && c != '>'; }))
    return {};
  return "<" + std::string(inner) + ">";
}

// The parent's References plus its Message-ID (RFC 5322 3.6.4); a long chain
// keeps its first id (the thread's root) and the most recent ones.
std::vector<std::string> references(std::string_view original_references, const std::string& parent) {
  constexpr size_t keep = 20;
  std::vector<std::string> ids;
  for (size_t pos = 0; pos < original_references.size();) {
    size_t open = original_references.find('<', pos);
    if (open == npos) break;
    size_t close = original_references.find('>', open + 1);
    if (close == npos) break;
    std::string id = msg_id(original_references.substr(open, close - open + 1));
    if (!id.empty()) ids.push_back(std::move(id));
    pos = close + 1;
  }
  if (!parent.empty() && (ids.empty() || ids.back() != parent)) ids.push_back(parent);
  if (ids.size() > keep) ids.erase(ids.begin() + 1, ids.end() - (keep - 1));
  return ids;
}

// Quoted-printable (RFC 2045 6.7) of text with LF line ends: CRLF hard
// breaks, "=" soft breaks keeping lines at 76 characters, white space before
// a line end encoded, and "From " at a line start encoded so that no mbox
// along the way rewrites it.
std::string quoted_printable(std::string_view text) {
  std::string out;
  size_t line = 0;
  auto put = [&](std::string_view token) {
    if (line + token.size() > 75) {
      out += "=\r\n";
      line = 0;
    }
    out += token;
    line += token.size();
  };
  bool line_start = true;
  for (size_t i = 0; i < text.size(); ++i) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c == '\n') {
      out += "\r\n";
      line = 0;
      line_start = true;
      continue;
    }
    bool before_line_end = i + 1 == text.size() || text[i + 1] == '\n';
    bool literal = (c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && !before_line_end);
    if (line_start && text.substr(i, 5) == "From ") literal = false;
    line_start = false;
    if (literal) {
      put(std::string_view(reinterpret_cast<const char*>(&text[i]), 1));
    } else {
      char encoded[3] = {'=', hex_digits[c >> 4], hex_digits[c & 0x0F]};
      put(std::string_view(encoded, 3));
    }
  }
  return out;
}

std::string base64_lines(std::string_view data) {
  std::string encoded = base64_encode(data);
  std::string out;
  out.reserve(encoded.size() + encoded.size() / 38 + 2);
  for (size_t pos = 0; pos < encoded.size(); pos += 76) {
    out.append(encoded, pos, 76);
    out += "\r\n";
  }
  return out;
}

bool attribute_char(char c) {
  // RFC 2231 7 / RFC 5987 3.2.1 attr-char.
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         std::string_view("!#$&+-.^_`|~").find(c) != npos;
}

// "; key=..." on its own folded line: a quoted value when short plain ASCII,
// else RFC 2231 utf-8 percent-encoding, split into continuations (key*0*,
// key*1*, ...) of at most 48 characters that never cut a %XX, so that
// each line stays within 78.
std::string parameter(std::string_view key, std::string_view value) {
  bool quotable = printable_ascii(value) && value.find_first_of("\"\\") == npos && key.size() + value.size() <= 60;
  if (quotable) return ";\r\n " + std::string(key) + "=\"" + std::string(value) + "\"";
  std::vector<std::string> sections(1);
  for (char c : value) {
    std::string token = attribute_char(c) ? std::string(1, c)
                                          : std::string{'%', hex_digits[static_cast<unsigned char>(c) >> 4],
                                                        hex_digits[static_cast<unsigned char>(c) & 0x0F]};
    if (sections.back().size() + token.size() > 48) sections.emplace_back();
    sections.back() += token;
  }
  if (sections.size() == 1) return ";\r\n " + std::string(key) + "*=utf-8''" + sections[0];
  std::string out;
  for (size_t i = 0; i < sections.size(); ++i)
    out += ";\r\n " + std::string(key) + "*" + std::to_string(i) + "*=" + (i == 0 ? "utf-8''" : "") + sections[i];
  return out;
}

std::string text_part_header() {
  return "Content-Type: text/plain; charset=utf-8\r\n"
         "Content-Transfer-Encoding: quoted-printable\r\n";
}

}  // namespace

std::string new_message_id(std::string_view host) {
  std::string clean;
  for (char c : host.substr(0, 253))
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-') clean += c;
  if (clean.empty()) clean = "localhost";
  return "<" + random_hex(16) + "@" + clean + ">";
}

std::string rfc5322_date(int64_t unix_time) {
  using namespace std::chrono;
  static constexpr const char* day_names[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* month_names[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  sys_seconds time{seconds{std::clamp<int64_t>(unix_time, 0, 253402300799)}};  // to 9999-12-31T23:59:59
  sys_days day = floor<days>(time);
  year_month_day date{day};
  hh_mm_ss clock{time - day};
  char out[40];
  std::snprintf(out, sizeof out, "%s, %02u %s %04d %02d:%02d:%02d +0000", day_names[weekday{day}.c_encoding()],
                static_cast<unsigned>(date.day()), month_names[static_cast<unsigned>(date.month()) - 1],
                static_cast<int>(date.year()), static_cast<int>(clock.hours().count()),
                static_cast<int>(clock.minutes().count()), static_cast<int>(clock.seconds().count()));
  return out;
}

std::string sniff_content_type(std::string_view filename, std::string_view data) {
  size_t dot = filename.rfind('.');
  std::string extension = dot == npos ? std::string() : lower_ascii(filename.substr(dot + 1));
  if (data.starts_with("%PDF-")) return "application/pdf";
  if (data.starts_with("\x89PNG\r\n\x1a\n")) return "image/png";
  if (data.starts_with("\xFF\xD8\xFF")) return "image/jpeg";
  if (data.starts_with("GIF87a") || data.starts_with("GIF89a")) return "image/gif";
  if (data.starts_with(std::string_view("PK\x03\x04", 4))) {
    // Office Open XML and OpenDocument files are ZIP archives; the name tells which.
    static constexpr std::pair<std::string_view, std::string_view> zipped[] = {
        {"docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
        {"xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
        {"pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation"},
        {"odt", "application/vnd.oasis.opendocument.text"},
        {"ods", "application/vnd.oasis.opendocument.spreadsheet"},
        {"odp", "application/vnd.oasis.opendocument.presentation"}};
    for (const auto& [ext, type] : zipped)
      if (extension == ext) return std::string(type);
    return "application/zip";
  }
  bool text = data.find('\0') == npos && is_valid_utf8(data);
  if (text && extension == "txt") return "text/plain; charset=utf-8";
  if (text && extension == "csv") return "text/csv";
  return "application/octet-stream";
}

std::string compose_reply(const reply_input& input) {
  std::string parent = msg_id(input.original_message_id);
  std::string own_id = msg_id(input.message_id);
  if (own_id.empty()) own_id = new_message_id(input.host);

  std::string m;
  m += "From: " + mailbox(input.from_name, input.from) + "\r\n";
  m += "To: " + mailbox(input.to_name, input.to) + "\r\n";
  if (!input.reply_to.empty()) m += "Reply-To: " + mailbox("", input.reply_to) + "\r\n";
  m += subject_field(input.original_subject);
  m += "Date: " + rfc5322_date(input.date) + "\r\n";
  m += "Message-ID: " + own_id + "\r\n";
  if (!parent.empty()) m += "In-Reply-To: " + parent + "\r\n";
  std::vector<std::string> chain = references(input.original_references, parent);
  if (!chain.empty()) {
    m += "References:";
    for (size_t i = 0; i < chain.size(); ++i) m += (i == 0 ? " " : "\r\n ") + chain[i];
    m += "\r\n";
  }
  m += "MIME-Version: 1.0\r\n";

  std::string body = quoted_printable(display_text(input.text));
  if (input.attachments.empty()) {
    m += text_part_header() + "\r\n" + body;
    if (!body.empty() && !body.ends_with("\r\n")) m += "\r\n";
    return m;
  }
  // "=_" occurs in neither base64 nor quoted-printable output, so no part can
  // contain the boundary.
  std::string boundary = "=_" + random_hex(16);
  m += "Content-Type: multipart/mixed;\r\n boundary=\"" + boundary + "\"\r\n\r\n";
  m += "--" + boundary + "\r\n" + text_part_header() + "\r\n" + body + "\r\n";
  for (size_t i = 0; i < input.attachments.size(); ++i) {
    const reply_attachment& a = input.attachments[i];
    std::string name = sanitize_file_name(a.filename, i + 1);
    m += "--" + boundary + "\r\n";
    m += "Content-Type: " + sniff_content_type(name, a.data) + parameter("name", name) + "\r\n";
    m += "Content-Disposition: attachment" + parameter("filename", name) + "\r\n";
    m += "Content-Transfer-Encoding: base64\r\n\r\n";
    // An empty file still gets its empty line: the CRLF before the next
    // delimiter belongs to the delimiter, not to the header block.
    m += a.data.empty() ? "\r\n" : base64_lines(a.data);
  }
  m += "--" + boundary + "--\r\n";
  return m;
}

}  // namespace sealgate::portal
