// The resolver's own options, kept free of the gateway's config types so that
// dns/ never includes gateway/ (the gateway fills this from its YAML).
#pragma once
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sealgate::dns {

struct server_address {
  std::string ip;  // as written, without brackets
  uint16_t port = 53;
  bool ipv6 = false;
  bool loopback = false;  // 127.0.0.0/8 or ::1: the only servers whose AD bit we may believe
  std::string to_string() const;  // "127.0.0.1:5353" or "[::1]:53", the form c-ares takes
};

// "127.0.0.1", "127.0.0.1:5353", "::1", "[::1]:5353". Host names are refused:
// resolving the resolver's own address would need a resolver.
std::optional<server_address> parse_server_address(std::string_view text, std::string* why = nullptr);

struct resolver_options {
  std::vector<server_address> servers;            // empty: /etc/resolv.conf (c-ares defaults)
  std::chrono::seconds cache_max_ttl{3600};       // no answer is kept longer, whatever its TTL
  std::chrono::seconds negative_ttl{300};         // NXDOMAIN/NODATA without an SOA to take it from
  std::chrono::milliseconds timeout{5000};        // one whole lookup, all retries included
  size_t cache_entries = 10000;
};

}  // namespace sealgate::dns
