// CIDR networks: relay.networks, the relay classes' networks, and the proxies
// trusted to name the client (listeners[].proxy_from, portal.trusted_proxies).
// IPv4-mapped IPv6 clients (::ffff:a.b.c.d) match IPv4 networks, so a
// dual-stack listener cannot be used to slip past an IPv4 rule.
#pragma once
#include <boost/asio/ip/address.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sealgate {

class ip_network {
 public:
  // "127.0.0.0/8", "::1/128", or a bare address (a /32 or /128). nullopt when
  // malformed or when host bits are set below the prefix (likely a typo).
  static std::optional<ip_network> parse(std::string_view text, std::string* why = nullptr);
  bool contains(const boost::asio::ip::address& a) const;
  std::string to_string() const;

 private:
  boost::asio::ip::address base_;
  unsigned prefix_ = 0;
};

// Whether any of networks contains a.
bool in_any(const std::vector<ip_network>& networks, const boost::asio::ip::address& a);

}  // namespace sealgate
