// The client of one portal request behind an HTTP load balancer: the TCP
// peer, unless the peer is a proxy the operator trusts (portal.
// trusted_proxies), in which case X-Forwarded-For names it. Pure: no socket,
// no log; the rate limiter and the log lines use what it returns.
#pragma once
#include <boost/asio/ip/address.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/ip_network.hpp"

namespace sealgate::portal {

struct forwarded_client {
  boost::asio::ip::address address;
  // Set when an element of X-Forwarded-For was not an address: the walk
  // stopped there and address is the peer.
  std::optional<std::string> malformed;
};

// fields: every X-Forwarded-For field of the request, in order (several
// fields are one list, RFC 9110 5.3). Walked right to left, as each proxy
// appends the address it received the request from: trusted hops are
// skipped, the first untrusted address is the client. Anything left of it
// was written by the client itself and is not believed. Every hop trusted:
// the leftmost one.
forwarded_client client_of(const boost::asio::ip::address& peer, const std::vector<std::string_view>& fields,
                           const std::vector<ip_network>& trusted_proxies);

}  // namespace sealgate::portal
