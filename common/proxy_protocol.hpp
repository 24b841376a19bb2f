// The PROXY protocol version 2 header (HAProxy's doc/proxy-protocol.txt) that
// a load balancer sends before the client's first byte, naming the client it
// accepted. A parser only: it never reads a socket, so the SMTP listener and
// the portal read the bytes themselves (exactly 16, then exactly the length
// announced: nothing of the client's own stream is consumed) and fuzzing
// reaches every branch. Version 1 (the text form) is refused, never guessed.
#pragma once
#include <boost/asio/ip/address.hpp>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace sealgate::proxy_protocol {

// The fixed part: 12-byte signature, version and command, family and
// transport, and the big-endian length of the rest.
constexpr size_t fixed_size = 16;
// More than an INET6 address block and a few TLVs ever need. HAProxy sends
// far less; a larger length is a broken or hostile sender, and bounding it
// bounds what a connection from a trusted proxy can make us buffer.
constexpr size_t max_rest_size = 1024;

// What the first fixed_size bytes say about the rest: how many bytes follow
// (0 to max_rest_size), or why the connection must be closed now.
struct announced_length {
  size_t rest = 0;
  std::string refusal;  // empty when the prefix is acceptable
  bool ok() const { return refusal.empty(); }
};
announced_length read_fixed_part(std::span<const uint8_t> first);

struct endpoint {
  boost::asio::ip::address address;
  uint16_t port = 0;
};

struct header {
  enum class kind {
    local,    // LOCAL (a health check), or PROXY with family UNSPEC: use the socket's own endpoints
    proxied,  // PROXY over TCP: source is the client the proxy accepted, destination the address it was sent to
    refused,  // close without a word; reason says why
  };
  kind what = kind::refused;
  endpoint source, destination;
  std::string reason;
};
// The whole header, fixed part and rest, exactly fixed_size + rest bytes.
header parse(std::span<const uint8_t> whole);

// CRC32C (Castagnoli), as the CRC32C TLV carries it; exposed for the tests.
uint32_t crc32c(std::span<const uint8_t> bytes);

}  // namespace sealgate::proxy_protocol
