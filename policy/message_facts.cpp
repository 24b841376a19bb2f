// RFC 5322 / MIME reader for classification; see message_facts.hpp. Every
// index is checked against the input's size; malformed structure degrades to
// "less is known", never to an exception or a read past the end.
#include "policy/message_facts.hpp"

#include "common/text.hpp"

#include <algorithm>
#include <cctype>
#include <functional>

namespace sealgate::policy {
namespace {


bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return lower_ascii(x) == lower_ascii(y); });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r' || s.front() == '\n')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) s.remove_suffix(1);
  return s;
}

// One line without its CRLF or LF; advances pos past the line end.
std::string_view next_line(std::string_view s, size_t& pos) {
  size_t start = pos;
  size_t nl = s.find('\n', pos);
  size_t end = nl == std::string_view::npos ? s.size() : nl;
  pos = nl == std::string_view::npos ? s.size() : nl + 1;
  std::string_view line = s.substr(start, end - start);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string percent_decode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

class walker {
 public:
  walker(message_facts& out, const message_limits& limits) : out_(out), limits_(limits) {}

  void entity(std::string_view raw, int depth, bool top) {
    if (depth > limits_.max_depth || ++parts_ > limits_.max_parts) return;
    header_list headers;
    std::string_view body = split_headers(raw, headers);
    if (top) out_.headers = headers;
    content_field type = parse_content_field(find_header(headers, "Content-Type") ? *find_header(headers, "Content-Type") : "text/plain");
    if (type.value.empty()) type.value = "text/plain";
    content_field disp;
    if (auto d = find_header(headers, "Content-Disposition")) disp = parse_content_field(*d);
    std::string name = disp.param("filename");
    if (name.empty()) name = type.param("name");
    if (!name.empty()) out_.attachment_names.push_back(decode_rfc2047(name));

    if (type.value.rfind("multipart/", 0) == 0) {
      std::string boundary = type.param("boundary");
      if (!boundary.empty()) multipart(body, boundary, depth);
      return;
    }
    if (type.value == "message/rfc822" || type.value == "message/global") {
      entity(body, depth + 1, false);
      return;
    }
    if (type.value.rfind("text/", 0) != 0) return;
    std::string cte;
    if (auto c = find_header(headers, "Content-Transfer-Encoding"))
      for (char ch : trim(*c)) cte += lower_ascii(ch);
    std::string decoded = cte == "base64" ? decode_base64(body)
                          : cte == "quoted-printable" ? decode_quoted_printable(body)
                                                      : std::string(body);
    append_text(decoded);
  }

 private:
  void append_text(std::string_view t) {
    if (out_.text.size() >= limits_.max_text) return;
    if (!out_.text.empty()) out_.text += '\n';
    out_.text.append(t.substr(0, limits_.max_text - std::min(limits_.max_text, out_.text.size())));
  }

  void multipart(std::string_view body, const std::string& boundary, int depth) {
    for_each_part(body, boundary, [&](std::string_view part) {
      entity(part, depth + 1, false);
      return true;
    });
  }

  message_facts& out_;
  const message_limits& limits_;
  size_t parts_ = 0;
};

}  // namespace

std::string_view split_headers(std::string_view entity, header_list& headers) {
  size_t pos = 0;
  while (pos < entity.size()) {
    size_t line_start = pos;
    std::string_view line = next_line(entity, pos);
    if (line.empty()) return entity.substr(pos);
    if ((line.front() == ' ' || line.front() == '\t') && !headers.empty()) {
      headers.back().second += " ";
      headers.back().second += trim(line);
      continue;
    }
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      // Not a header: treat the rest as body (a message without a header block).
      if (headers.empty()) return entity.substr(line_start);
      continue;
    }
    headers.emplace_back(std::string(trim(line.substr(0, colon))), std::string(trim(line.substr(colon + 1))));
  }
  return {};
}

const std::string* find_header(const header_list& h, std::string_view name) {
  for (const auto& [n, v] : h)
    if (iequals(n, name)) return &v;
  return nullptr;
}

std::string content_field::param(std::string_view name, std::string* charset) const {
  // RFC 2231: name*=charset'lang'pct-encoded, and name*0, name*1... continuations.
  std::string plain, extended, extended_charset;
  bool have_plain = false, have_ext = false;
  for (const auto& [k, v] : params) {
    if (iequals(k, name)) {
      plain = v;
      have_plain = true;
      continue;
    }
    if (k.size() <= name.size() || !iequals(std::string_view(k).substr(0, name.size()), name) || k[name.size()] != '*')
      continue;
    std::string_view rest = std::string_view(k).substr(name.size() + 1);
    bool encoded = !rest.empty() && rest.back() == '*';
    if (encoded) rest.remove_suffix(1);
    if (!rest.empty() && !std::all_of(rest.begin(), rest.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }))
      continue;
    // "name*" is one encoded value; "name*0*" starts encoded continuations.
    bool decode = rest.empty() || encoded;
    std::string_view val = v;
    if (rest.empty() || (encoded && rest == "0")) {
      size_t q1 = val.find('\'');
      size_t q2 = q1 == std::string_view::npos ? q1 : val.find('\'', q1 + 1);
      if (q2 != std::string_view::npos) {
        extended_charset = val.substr(0, q1);
        val = val.substr(q2 + 1);
      }
    }
    extended += decode ? percent_decode(val) : std::string(val);
    have_ext = true;
  }
  if (charset) *charset = have_ext ? extended_charset : std::string();
  return have_ext ? extended : have_plain ? plain : std::string();
}

content_field parse_content_field(std::string_view s) {
  content_field f;
  size_t semi = s.find(';');
  std::string_view v = trim(s.substr(0, semi));
  for (char c : v) f.value += lower_ascii(c);
  size_t pos = semi == std::string_view::npos ? s.size() : semi + 1;
  while (pos < s.size()) {
    while (pos < s.size() && (s[pos] == ' ' || s[pos] == '\t' || s[pos] == ';')) ++pos;
    size_t eq = s.find('=', pos);
    if (eq == std::string_view::npos) break;
    std::string key(trim(s.substr(pos, eq - pos)));
    pos = eq + 1;
    while (pos < s.size() && (s[pos] == ' ' || s[pos] == '\t')) ++pos;
    std::string val;
    if (pos < s.size() && s[pos] == '"') {
      ++pos;
      while (pos < s.size() && s[pos] != '"') {
        if (s[pos] == '\\' && pos + 1 < s.size()) ++pos;
        val += s[pos++];
      }
      if (pos < s.size()) ++pos;  // closing quote
    } else {
      size_t end = s.find(';', pos);
      if (end == std::string_view::npos) end = s.size();
      val = std::string(trim(s.substr(pos, end - pos)));
      pos = end;
    }
    size_t end = s.find(';', pos);
    pos = end == std::string_view::npos ? s.size() : end + 1;
    f.params.emplace_back(std::move(key), std::move(val));
  }
  return f;
}

void for_each_part(std::string_view body, std::string_view boundary, const std::function<bool(std::string_view)>& part) {
  std::string delim = "--" + std::string(boundary);
  size_t pos = 0;
  size_t part_start = std::string_view::npos;
  while (pos < body.size()) {
    size_t line_start = pos;
    std::string_view line = next_line(body, pos);
    if (line.size() >= delim.size() && line.compare(0, delim.size(), delim) == 0) {
      std::string_view rest = trim(line.substr(delim.size()));
      if (rest.empty() || rest == "--") {
        if (part_start != std::string_view::npos) {
          size_t end = line_start;
          // The CRLF before the delimiter belongs to the delimiter (RFC 2046 5.1.1).
          if (end > part_start && body[end - 1] == '\n') --end;
          if (end > part_start && body[end - 1] == '\r') --end;
          if (!part(body.substr(part_start, end - part_start))) return;
        }
        if (rest == "--") return;
        part_start = pos;
      }
    }
  }
  // Unterminated: read what is there rather than nothing.
  if (part_start != std::string_view::npos && part_start < body.size()) part(body.substr(part_start));
}

std::string decode_base64(std::string_view in) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v;
    if (c >= 'A' && c <= 'Z') v = c - 'A';
    else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
    else if (c >= '0' && c <= '9') v = c - '0' + 52;
    else if (c == '+') v = 62;
    else if (c == '/') v = 63;
    else if (c == '=') break;
    else continue;  // line breaks and junk are skipped, as RFC 2045 6.8 asks
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return out;
}

std::string decode_quoted_printable(std::string_view in) {
  std::string out;
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c != '=') {
      if (c == '\r' && i + 1 < in.size() && in[i + 1] == '\n') continue;  // CRLF becomes LF
      out += c;
      continue;
    }
    if (i + 2 < in.size() && hex_value(in[i + 1]) >= 0 && hex_value(in[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(in[i + 1]) * 16 + hex_value(in[i + 2]));
      i += 2;
    } else if (i + 1 < in.size() && (in[i + 1] == '\n' || in[i + 1] == '\r')) {
      // Soft line break (RFC 2045 6.7 rule 5), with transport padding skipped.
      ++i;
      if (in[i] == '\r' && i + 1 < in.size() && in[i + 1] == '\n') ++i;
    } else {
      out += c;  // a stray or truncated "=": kept literally (RFC 2045 6.7 note 1)
    }
  }
  return out;
}

std::string decode_rfc2047(std::string_view in) {
  // Charset bytes are kept as they are (no conversion): classification
  // compares ASCII tags and patterns.
  return decode_rfc2047(in, [](std::string_view, std::string_view bytes) { return std::string(bytes); });
}

std::string decode_rfc2047(std::string_view in, charset_decoder to_text) {
  // =?charset?B|Q?text?=
  std::string out;
  size_t pos = 0;
  bool last_was_word = false;
  while (pos < in.size()) {
    size_t start = in.find("=?", pos);
    if (start == std::string_view::npos) {
      out.append(in.substr(pos));
      break;
    }
    size_t q1 = in.find('?', start + 2);
    size_t q2 = q1 == std::string_view::npos ? q1 : in.find('?', q1 + 1);
    if (q2 != std::string_view::npos && q2 != q1 + 2) {  // not "=?charset?X?"
      out.append(in.substr(pos, start + 2 - pos));
      pos = start + 2;
      last_was_word = false;
      continue;
    }
    size_t end = q2 == std::string_view::npos ? q2 : in.find("?=", q2 + 1);
    if (end == std::string_view::npos) {
      // No word can be complete after this point either, so the rest is
      // literal. Stopping here (and searching for "?=" only after a well-formed
      // start) keeps the scan linear: "=?a?q?x" repeated would otherwise
      // search to the end once per repetition.
      out.append(in.substr(pos));
      break;
    }
    std::string_view between = in.substr(pos, start - pos);
    // Whitespace between two encoded words is not part of the text (RFC 2047 6.2).
    if (!(last_was_word && trim(between).empty())) out.append(between);
    char enc = lower_ascii(in[q1 + 1]);
    std::string_view charset = in.substr(start + 2, q1 - start - 2);
    std::string_view text = in.substr(q2 + 1, end - q2 - 1);
    if (enc == 'b') {
      out += to_text(charset, decode_base64(text));
    } else if (enc == 'q') {
      std::string t(text);
      std::replace(t.begin(), t.end(), '_', ' ');
      out += to_text(charset, decode_quoted_printable(t));
    } else {
      out.append(in.substr(start, end + 2 - start));
    }
    pos = end + 2;
    last_was_word = true;
  }
  return out;
}

message_facts read_message(std::string_view raw, const message_limits& limits) {
  message_facts m;
  m.size = raw.size();
  walker w(m, limits);
  w.entity(raw, 0, true);
  for (const auto& [n, v] : m.headers)
    if (iequals(n, "Subject")) {
      m.subject = decode_rfc2047(v);
      break;
    }
  return m;
}

}  // namespace sealgate::policy
