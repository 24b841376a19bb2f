// The portal's client behind a load balancer (portal/web/forwarded): a table
// of peers and X-Forwarded-For fields, and the address the rate limit and the
// logs must use.
#include "portal/web/forwarded.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

namespace {

using sealgate::ip_network;

struct forwarded_case {
  const char* name;
  const char* peer;
  std::vector<std::string_view> fields;
  const char* client;
  std::optional<std::string> malformed;  // the element that stopped the walk
};

}  // namespace

TEST(PortalForwarded, Table) {
  // Two proxies in the chain: a CDN's 203.0.113.0/24 in front of our own 10.0.0.5.
  const std::vector<ip_network> trusted = {*ip_network::parse("10.0.0.5"), *ip_network::parse("203.0.113.0/24"),
                                           *ip_network::parse("2001:db8:f::/48")};
  const std::vector<forwarded_case> cases = {
      {"untrusted peer: header ignored", "192.0.2.9", {"198.51.100.1"}, "192.0.2.9", std::nullopt},
      {"trusted peer without the header", "10.0.0.5", {}, "10.0.0.5", std::nullopt},
      {"one hop", "10.0.0.5", {"198.51.100.1"}, "198.51.100.1", std::nullopt},
      {"client-written entries left of the real one", "10.0.0.5", {"1.2.3.4, 198.51.100.1"}, "198.51.100.1", std::nullopt},
      {"trusted hops skipped", "10.0.0.5", {"198.51.100.1, 203.0.113.7"}, "198.51.100.1", std::nullopt},
      {"a spoofed trusted-looking entry stays spoofed", "10.0.0.5", {"203.0.113.9, 198.51.100.1"}, "198.51.100.1", std::nullopt},
      {"several fields are one list, in order", "10.0.0.5", {"198.51.100.1", "203.0.113.7"}, "198.51.100.1", std::nullopt},
      {"several fields, the client in the last", "10.0.0.5", {"203.0.113.7", "198.51.100.1"}, "198.51.100.1", std::nullopt},
      {"every hop trusted: the leftmost", "10.0.0.5", {"203.0.113.8, 203.0.113.7"}, "203.0.113.8", std::nullopt},
      {"spaces and tabs around elements", "10.0.0.5", {" 198.51.100.1 ,\t203.0.113.7\t"}, "198.51.100.1", std::nullopt},
      {"IPv6 client", "10.0.0.5", {"2001:db8::7"}, "2001:db8::7", std::nullopt},
      {"IPv6 client in brackets", "10.0.0.5", {"[2001:db8::7]"}, "2001:db8::7", std::nullopt},
      {"IPv6 trusted hop", "10.0.0.5", {"198.51.100.1, 2001:db8:f::2"}, "198.51.100.1", std::nullopt},
      {"IPv4-mapped peer is the IPv4 proxy", "::ffff:10.0.0.5", {"198.51.100.1"}, "198.51.100.1", std::nullopt},
      {"IPv4-mapped client", "10.0.0.5", {"::ffff:198.51.100.1"}, "198.51.100.1", std::nullopt},
      {"malformed at the right end: the peer", "10.0.0.5", {"198.51.100.1, bogus"}, "10.0.0.5", "bogus"},
      {"malformed behind a trusted hop: the peer", "10.0.0.5", {"bogus, 203.0.113.7"}, "10.0.0.5", "bogus"},
      {"malformed left of the client: not reached", "10.0.0.5", {"bogus, 198.51.100.1"}, "198.51.100.1", std::nullopt},
      {"a port is not an address", "10.0.0.5", {"198.51.100.1:4711"}, "10.0.0.5", "198.51.100.1:4711"},
      {"unknown (RFC 7239) is not an address", "10.0.0.5", {"unknown"}, "10.0.0.5", "unknown"},
      {"empty element", "10.0.0.5", {"198.51.100.1,,203.0.113.7"}, "10.0.0.5", ""},
      {"empty field", "10.0.0.5", {""}, "10.0.0.5", ""},
      {"a zone is the proxy's interface", "10.0.0.5", {"fe80::1%eth0"}, "10.0.0.5", "fe80::1%eth0"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto r = sealgate::portal::client_of(boost::asio::ip::make_address(c.peer), c.fields, trusted);
    EXPECT_EQ(r.address.to_string(), c.client);
    EXPECT_EQ(r.malformed, c.malformed);
  }
}

TEST(PortalForwarded, NoTrustedProxiesMeansThePeer) {
  auto r = sealgate::portal::client_of(boost::asio::ip::make_address("10.0.0.5"), {"198.51.100.1"}, {});
  EXPECT_EQ(r.address.to_string(), "10.0.0.5");
  EXPECT_FALSE(r.malformed);
}
