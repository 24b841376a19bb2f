#include "gateway/mail/headers.hpp"

#include "common/text.hpp"

namespace sealgate::gateway {

std::string header_block(std::string_view content) {
  size_t end = content.find("\r\n\r\n");
  if (end == std::string_view::npos) return std::string(content);
  return std::string(content.substr(0, end + 2));
}

std::string header_field(std::string_view headers, std::string_view name) {
  std::string want = lower_ascii(name) + ":";
  size_t pos = 0;
  while (pos < headers.size()) {
    size_t eol = headers.find("\r\n", pos);
    if (eol == std::string_view::npos) eol = headers.size();
    if (eol - pos >= want.size() && lower_ascii(headers.substr(pos, want.size())) == want) {
      std::string value(headers.substr(pos + want.size(), eol - pos - want.size()));
      // Folded continuation lines (RFC 5322 2.2.3).
      while (eol + 2 < headers.size() && (headers[eol + 2] == ' ' || headers[eol + 2] == '\t')) {
        size_t next = headers.find("\r\n", eol + 2);
        if (next == std::string_view::npos) next = headers.size();
        value += headers.substr(eol + 2, next - eol - 2);
        eol = next;
      }
      size_t b = value.find_first_not_of(" \t"), e = value.find_last_not_of(" \t");
      value = b == std::string::npos ? "" : value.substr(b, e - b + 1);
      if (value.size() > 998) value.resize(998);
      return value;
    }
    pos = eol + 2;
  }
  return "";
}

std::string rfc5322_date_now() { return rfc5322_date(std::time(nullptr)); }

std::string rfc5322_date(std::time_t t) {
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S +0000", &tm);
  return buf;
}

}  // namespace sealgate::gateway
