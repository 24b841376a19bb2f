// MIME splitting and wrapping for encryption; see mime.hpp. Works on views of
// the original octets and copies them unchanged; bounds-checked, no decoding.
#include "crypto/mime.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <stdexcept>

namespace sealgate::crypto {
namespace {

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return lower(x) == lower(y); });
}

bool istarts_with(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

// RFC 5322 2.2: field names are printable US-ASCII except colon.
bool field_name_char(char c) { return c > 32 && c < 127 && c != ':'; }

// The fields a reader sees and that the protected-headers convention copies inside.
bool user_facing(std::string_view name) {
  for (std::string_view n : {"subject", "from", "to", "cc", "reply-to", "date", "message-id"})
    if (iequals(name, n)) return true;
  return false;
}

bool content_field(std::string_view name) { return istarts_with(name, "content-"); }

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) s.remove_suffix(1);
  return s;
}

}  // namespace

std::string header_field::value() const {
  std::string_view v = raw.substr(std::min(raw.size(), name.size() + 1));
  std::string out;
  for (char c : v)
    if (c != '\r' && c != '\n') out += c;  // unfolding (RFC 5322 2.2.3) removes only the CRLFs
  return std::string(trim(out));
}

std::optional<split_message> split(std::string_view message) {
  split_message m;
  size_t pos = 0;
  while (pos < message.size()) {
    size_t eol = message.find("\r\n", pos);
    size_t next = eol == std::string_view::npos ? message.size() : eol + 2;
    std::string_view line = message.substr(pos, (eol == std::string_view::npos ? message.size() : eol) - pos);
    if (line.empty()) {  // the empty line ends the header block (RFC 5322 2.1)
      m.body = message.substr(next);
      return m;
    }
    if (line[0] == ' ' || line[0] == '\t') {
      if (m.fields.empty()) return std::nullopt;  // a continuation with nothing to continue
      auto& f = m.fields.back();
      f.raw = std::string_view(f.raw.data(), f.raw.size() + (next - pos));
    } else {
      size_t colon = 0;
      while (colon < line.size() && field_name_char(line[colon])) ++colon;
      if (colon == 0 || colon >= line.size() || line[colon] != ':') return std::nullopt;
      m.fields.push_back(header_field{std::string(line.substr(0, colon)), message.substr(pos, next - pos)});
    }
    pos = next;
  }
  return m;  // headers only, no body
}

std::string to_crlf(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 32);
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\n' && (i == 0 || text[i - 1] != '\r')) out += '\r';
    out += text[i];
  }
  return out;
}

std::string media_type(std::string_view content_type) {
  std::string_view t = trim(content_type.substr(0, content_type.find(';')));
  std::string out;
  for (char c : t)
    if (c != ' ' && c != '\t') out += lower(c);
  return out;
}

std::optional<std::string> parameter(std::string_view content_type, std::string_view name) {
  size_t pos = content_type.find(';');
  while (pos != std::string_view::npos && pos < content_type.size()) {
    ++pos;
    size_t eq = content_type.find('=', pos);
    if (eq == std::string_view::npos) return std::nullopt;
    std::string_view key = trim(content_type.substr(pos, eq - pos));
    size_t vpos = eq + 1;
    while (vpos < content_type.size() && (content_type[vpos] == ' ' || content_type[vpos] == '\t')) ++vpos;
    std::string value;
    size_t end;
    if (vpos < content_type.size() && content_type[vpos] == '"') {  // quoted-string (RFC 2045 5.1)
      end = vpos + 1;
      while (end < content_type.size() && content_type[end] != '"') {
        if (content_type[end] == '\\' && end + 1 < content_type.size()) ++end;
        value += content_type[end++];
      }
      end = content_type.find(';', end);
    } else {
      end = content_type.find(';', vpos);
      value = std::string(trim(content_type.substr(vpos, end == std::string_view::npos ? std::string_view::npos : end - vpos)));
    }
    if (iequals(key, name)) return value;
    pos = end;
  }
  return std::nullopt;
}

bool already_encrypted(const split_message& m) {
  for (const auto& f : m.fields) {
    if (!iequals(f.name, "content-type")) continue;
    std::string v = f.value(), type = media_type(v);
    if (type == "multipart/encrypted") return true;
    if (type == "application/pkcs7-mime" || type == "application/x-pkcs7-mime") {
      auto st = parameter(v, "smime-type");
      if (!st) return true;
      std::string s;
      for (char c : *st) s += lower(c);
      return s == "enveloped-data" || s == "authenveloped-data";
    }
    return false;
  }
  return false;
}

wrapped wrap(const split_message& m, const header_options& options) {
  wrapped w;
  std::string content;
  bool has_type = false;
  for (const auto& f : m.fields) {
    if (content_field(f.name)) {
      if (options.protect && iequals(f.name, "content-type")) {
        // The marker goes before the field's final CRLF, as one more parameter.
        std::string_view raw = f.raw;
        bool crlf = raw.size() >= 2 && raw.substr(raw.size() - 2) == "\r\n";
        if (crlf) raw.remove_suffix(2);
        content += std::string(raw) + "; protected-headers=\"v1\"\r\n";
      } else {
        content += f.raw;
        if (f.raw.size() < 2 || f.raw.substr(f.raw.size() - 2) != "\r\n") content += "\r\n";
      }
      has_type |= iequals(f.name, "content-type");
      continue;
    }
    if (iequals(f.name, "mime-version")) continue;  // the outer message gets its own
    if (options.protect && user_facing(f.name)) {
      w.inner += f.raw;
      if (f.raw.size() < 2 || f.raw.substr(f.raw.size() - 2) != "\r\n") w.inner += "\r\n";
    }
    if (options.protect && iequals(f.name, "subject")) {
      w.outer_headers += "Subject: " + options.subject + "\r\n";
    } else {
      w.outer_headers += f.raw;
      if (f.raw.size() < 2 || f.raw.substr(f.raw.size() - 2) != "\r\n") w.outer_headers += "\r\n";
    }
  }
  if (options.protect && !has_type)  // RFC 2045 5.2's default, made explicit to carry the marker
    content += "Content-Type: text/plain; charset=us-ascii; protected-headers=\"v1\"\r\n";
  w.inner += content;
  w.inner += "\r\n";
  w.inner += m.body;
  return w;
}

std::variant<split_message, encrypt_result> prepare(std::string_view message, size_t recipients) {
  encrypt_result r;
  auto m = split(message);
  if (!m) {
    r.error = "the header is not RFC 5322 (a line that is neither a field nor a continuation)";
    return r;
  }
  if (already_encrypted(*m)) {  // RFC 8551 3.7 allows nesting, but twice the work buys the reader nothing
    r.state = encrypt_result::status::already_encrypted;
    r.message = std::string(message);
    return r;
  }
  if (recipients == 0) {
    r.error = "no recipients";
    return r;
  }
  return std::move(*m);
}

std::string base64_lines(std::string_view data) {
  std::string out;
  out.reserve(data.size() / 57 * 78 + 80);
  std::array<unsigned char, 80> buf;
  for (size_t pos = 0; pos < data.size(); pos += 57) {
    size_t n = std::min<size_t>(57, data.size() - pos);
    int len = EVP_EncodeBlock(buf.data(), reinterpret_cast<const unsigned char*>(data.data() + pos), static_cast<int>(n));
    out.append(reinterpret_cast<const char*>(buf.data()), static_cast<size_t>(len));
    out += "\r\n";
  }
  return out;
}

std::string make_boundary() {
  std::array<unsigned char, 12> r;
  if (RAND_bytes(r.data(), static_cast<int>(r.size())) != 1) throw std::runtime_error("RAND_bytes failed");
  static const char digits[] = "0123456789abcdef";
  std::string b = "=_sealgate_";
  for (unsigned char c : r) {
    b += digits[c >> 4];
    b += digits[c & 15];
  }
  return b;
}

}  // namespace sealgate::crypto
