// Reply parsing, EHLO keywords, dot-stuffing and the error category of the
// outbound SMTP client; see smtp_reply.hpp. Pure: no I/O, no logging.
#include "gateway/smtp_client/smtp_reply.hpp"

#include <cctype>
#include <cstring>
#include <utility>

namespace sealgate::gateway {

namespace {
class category_impl : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "sealgate.smtp_client"; }
  std::string message(int ev) const override {
    switch (static_cast<smtp_client_error>(ev)) {
      case smtp_client_error::timeout: return "timeout";
      case smtp_client_error::connection_closed: return "connection closed by the server";
      case smtp_client_error::line_too_long: return "reply line too long";
      case smtp_client_error::too_many_lines: return "reply with too many lines";
      case smtp_client_error::malformed_reply: return "malformed reply";
      case smtp_client_error::tls_handshake: return "TLS handshake failed";
      case smtp_client_error::not_connected: return "not connected";
      case smtp_client_error::unexpected_reply: return "unexpected reply";
      case smtp_client_error::content_unreadable: return "the message could not be read from the spool";
    }
    return "unknown error";
  }
};

bool digit(char c) { return c >= '0' && c <= '9'; }

std::string upper(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

// "d.d{1,3}.d{1,3}" followed by a space or the end (RFC 3463 2, RFC 2034 4).
size_t enhanced_length(std::string_view t) {
  size_t i = 0;
  if (t.size() < 5 || !digit(t[0]) || t[1] != '.') return 0;
  i = 2;
  for (int part = 0; part < 2; ++part) {
    size_t start = i;
    while (i < t.size() && digit(t[i]) && i - start < 3) ++i;
    if (i == start) return 0;
    if (part == 0) {
      if (i >= t.size() || t[i] != '.') return 0;
      ++i;
    }
  }
  if (i < t.size() && t[i] != ' ') return 0;
  return i;
}
}  // namespace

const boost::system::error_category& smtp_client_category() {
  static category_impl c;
  return c;
}
boost::system::error_code make_error_code(smtp_client_error e) { return {static_cast<int>(e), smtp_client_category()}; }

std::string remote_reply::text() const {
  std::string out = std::to_string(code);
  for (size_t i = 0; i < lines.size(); ++i) {
    out += i ? " / " : " ";
    for (char c : lines[i]) out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c;
  }
  return out;
}

boost::system::error_code reply_parser::feed(std::string_view line) {
  // RFC 5321 4.2: "NNN text" ends a reply, "NNN-text" continues it, all lines with the same code.
  if (done_ || line.size() < 3 || !digit(line[0]) || !digit(line[1]) || !digit(line[2]) || line[0] < '2' ||
      line[0] > '5' || (line.size() > 3 && line[3] != ' ' && line[3] != '-'))
    return smtp_client_error::malformed_reply;
  int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
  if (!reply_.lines.empty() && code != reply_.code) return smtp_client_error::malformed_reply;
  if (reply_.lines.size() >= max_lines_) return smtp_client_error::too_many_lines;
  reply_.code = code;
  std::string_view text = line.size() > 4 ? line.substr(4) : std::string_view{};
  if (reply_.lines.empty()) {
    // The enhanced code's class must agree with the reply's (RFC 3463 3.1).
    if (size_t n = enhanced_length(text); n && text[0] == line[0]) reply_.enhanced.assign(text.substr(0, n));
  }
  reply_.lines.emplace_back(text);
  done_ = line.size() == 3 || line[3] == ' ';
  return {};
}

remote_reply reply_parser::take() {
  done_ = false;
  return std::exchange(reply_, remote_reply{});
}

smtp_extensions parse_ehlo_reply(const remote_reply& ehlo) {
  smtp_extensions x;
  x.esmtp = ehlo.code == 250;
  // The first line is the greeting (the server's name); keywords follow, one per line.
  for (size_t i = 1; i < ehlo.lines.size(); ++i) {
    std::string_view l = ehlo.lines[i];
    size_t sp = l.find(' ');
    std::string kw = upper(l.substr(0, sp));
    std::string_view params = sp == std::string_view::npos ? std::string_view{} : l.substr(sp + 1);
    if (kw.empty()) continue;
    x.keywords.push_back(kw);
    if (kw == "STARTTLS") x.starttls = true;
    else if (kw == "PIPELINING") x.pipelining = true;
    else if (kw == "8BITMIME") x.eight_bit_mime = true;
    else if (kw == "SMTPUTF8") x.smtputf8 = true;
    else if (kw == "REQUIRETLS") x.requiretls = true;
    else if (kw == "ENHANCEDSTATUSCODES") x.enhanced_status_codes = true;
    else if (kw == "DSN") x.dsn = true;
    else if (kw == "CHUNKING") x.chunking = true;
    else if (kw == "SIZE") {
      uint64_t n = 0;
      bool ok = true;
      for (char c : params) {
        if (!digit(c) || n > (UINT64_MAX - 9) / 10) {
          ok = false;
          break;
        }
        n = n * 10 + static_cast<uint64_t>(c - '0');
      }
      x.size = ok ? n : 0;  // "SIZE" alone or garbage: no announced limit (RFC 1870 4)
    } else if (kw == "AUTH") {
      while (!params.empty()) {
        size_t e = params.find(' ');
        if (e != 0) x.auth.push_back(upper(params.substr(0, e)));
        if (e == std::string_view::npos) break;
        params.remove_prefix(e + 1);
      }
    }
  }
  return x;
}

std::string dot_stuff(std::string_view piece, bool& at_line_start, bool last, bool& pending_cr) {
  std::string out;
  out.reserve(piece.size() + piece.size() / 64 + 8);
  const char* p = piece.data();
  const char* end = p + piece.size();
  while (p < end) {
    char c = *p;
    if (pending_cr) {
      pending_cr = false;
      out += "\r\n";
      at_line_start = true;
      if (c == '\n') {  // the CRLF we just wrote
        ++p;
        continue;
      }
    }
    if (c == '\r') {
      pending_cr = true;
      ++p;
      continue;
    }
    if (c == '\n') {  // bare LF
      out += "\r\n";
      at_line_start = true;
      ++p;
      continue;
    }
    if (at_line_start && c == '.') out += '.';
    // The rest of the line up to its CR or LF goes out as it is, in one
    // append (memchr finds both ends quickly; a line normally ends in CRLF).
    const char* cr = static_cast<const char*>(std::memchr(p, '\r', static_cast<size_t>(end - p)));
    const char* stop = cr ? cr : end;
    const char* lf = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(stop - p)));
    if (lf) stop = lf;
    out.append(p, static_cast<size_t>(stop - p));
    at_line_start = false;
    p = stop;
  }
  if (last) {
    if (pending_cr) {
      out += "\r\n";
      at_line_start = true;
      pending_cr = false;
    }
    if (!at_line_start) out += "\r\n";
    out += ".\r\n";
  }
  return out;
}

}  // namespace sealgate::gateway
