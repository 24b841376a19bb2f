// Parsing of resolver addresses for the dns options; no lookups happen here.
#include "dns/options.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>

namespace sealgate::dns {

std::string server_address::to_string() const {
  return (ipv6 ? "[" + ip + "]" : ip) + ":" + std::to_string(port);
}

std::optional<server_address> parse_server_address(std::string_view text, std::string* why) {
  auto fail = [why](const char* w) -> std::optional<server_address> {
    if (why) *why = w;
    return std::nullopt;
  };
  server_address s;
  std::string_view host = text, port;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos) return fail("missing ']'");
    host = text.substr(1, close - 1);
    std::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return fail("expected ':PORT' after ']'");
      port = rest.substr(1);
      if (port.empty()) return fail("empty port");
    }
  } else if (auto colon = text.find(':'); colon != std::string_view::npos && text.find(':', colon + 1) == std::string_view::npos) {
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (port.empty()) return fail("empty port");
  }
  if (!port.empty()) {
    unsigned p = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (ec != std::errc{} || end != port.data() + port.size() || p == 0 || p > 65535) return fail("bad port");
    s.port = static_cast<uint16_t>(p);
  }
  s.ip = std::string(host);
  unsigned char buf[16];
  // inet_pton stops at a NUL, which YAML can carry ("\0"): refuse it here.
  if (s.ip.find('\0') != std::string::npos) {
    return fail("not an IP address");
  } else if (::inet_pton(AF_INET, s.ip.c_str(), buf) == 1) {
    s.loopback = buf[0] == 127;
  } else if (::inet_pton(AF_INET6, s.ip.c_str(), buf) == 1) {
    s.ipv6 = true;
    static const unsigned char one[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    s.loopback = std::equal(buf, buf + 16, one);
  } else {
    return fail("not an IP address");
  }
  return s;
}

}  // namespace sealgate::dns
