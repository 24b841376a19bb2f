// See forwarded.hpp.
#include "portal/web/forwarded.hpp"

namespace sealgate::portal {
namespace ip = boost::asio::ip;
namespace {

ip::address unmapped(const ip::address& a) {
  if (a.is_v6() && a.to_v6().is_v4_mapped()) return ip::make_address_v4(ip::v4_mapped, a.to_v6());
  return a;
}

std::string_view trimmed(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// An element as proxies write it: a bare IPv4 or IPv6 address, IPv6 perhaps
// in brackets. Ports, "unknown" and obfuscated names (RFC 7239's vocabulary)
// are not addresses a rate limit can be keyed by.
bool parse_element(std::string_view text, ip::address& out) {
  if (text.size() > 2 && text.front() == '[' && text.back() == ']') text = text.substr(1, text.size() - 2);
  if (text.empty() || text.size() > 45) return false;
  boost::system::error_code ec;
  out = ip::make_address(std::string(text), ec);
  // A zone ("fe80::1%eth0") names an interface of the proxy, not a client.
  return !ec && !(out.is_v6() && out.to_v6().scope_id() != 0);
}

}  // namespace

forwarded_client client_of(const ip::address& peer, const std::vector<std::string_view>& fields,
                           const std::vector<ip_network>& trusted_proxies) {
  forwarded_client result{unmapped(peer), {}};
  if (fields.empty() || !in_any(trusted_proxies, result.address)) return result;
  std::vector<std::string_view> elements;
  for (std::string_view field : fields) {
    while (true) {
      auto comma = field.find(',');
      elements.push_back(trimmed(field.substr(0, comma)));
      if (comma == std::string_view::npos) break;
      field.remove_prefix(comma + 1);
    }
  }
  ip::address candidate = result.address;
  for (auto it = elements.rbegin(); it != elements.rend(); ++it) {
    ip::address hop;
    if (!parse_element(*it, hop)) {
      result.malformed = std::string(it->substr(0, 64));
      return result;
    }
    candidate = unmapped(hop);
    if (!in_any(trusted_proxies, candidate)) break;
  }
  result.address = candidate;
  return result;
}

}  // namespace sealgate::portal
