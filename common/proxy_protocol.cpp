// PROXY protocol v2 parsing; see proxy_protocol.hpp. Every refusal names what
// was wrong: the listener logs it, and an operator who pointed a v1 sender or
// a plain client at a proxy_protocol listener learns why nothing answers.
#include "common/proxy_protocol.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>

namespace sealgate::proxy_protocol {
namespace {

// It holds a NUL and a CR LF pair on purpose: no text protocol and no C
// string can begin this way by accident.
constexpr std::array<uint8_t, 12> signature = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

// Byte 13, low nibble.
constexpr uint8_t command_local = 0x0;
constexpr uint8_t command_proxy = 0x1;
// Byte 14: family (high nibble) and transport (low nibble), the combinations
// the spec lists; any other must be refused.
constexpr uint8_t unspecified = 0x00;
constexpr uint8_t tcp_over_ipv4 = 0x11, udp_over_ipv4 = 0x12;
constexpr uint8_t tcp_over_ipv6 = 0x21, udp_over_ipv6 = 0x22;
constexpr uint8_t unix_stream = 0x31, unix_datagram = 0x32;
constexpr size_t ipv4_block = 12;  // source, destination, source port, destination port
constexpr size_t ipv6_block = 36;
constexpr uint8_t tlv_crc32c = 0x03;

std::string hex_byte(uint8_t b) {
  char text[5];
  std::snprintf(text, sizeof text, "0x%02X", b);
  return text;
}

uint16_t big_endian16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }

// The source and destination addresses at p, in that order; returns where
// the ports begin.
template <typename address_type>
const uint8_t* read_addresses(const uint8_t* p, header& h) {
  typename address_type::bytes_type source, destination;
  std::memcpy(source.data(), p, source.size());
  std::memcpy(destination.data(), p + source.size(), destination.size());
  h.source.address = address_type(source);
  h.destination.address = address_type(destination);
  return p + source.size() + destination.size();
}

header refuse(std::string reason) {
  header h;
  h.what = header::kind::refused;
  h.reason = std::move(reason);
  return h;
}

constexpr std::array<uint32_t, 256> crc32c_table = [] {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;  // Castagnoli, reflected
    t[i] = c;
  }
  return t;
}();

// The TLVs after the address block. Their contents mean nothing to us (ALPN,
// authority, the proxy's TLS details...), but a CRC32C present must match:
// the sender asked for the header to be checked, and a mismatch means it was
// damaged or forged on the way.
std::string check_tlvs(std::span<const uint8_t> whole, size_t at) {
  while (at < whole.size()) {
    if (whole.size() - at < 3) return "truncated TLV at offset " + std::to_string(at);
    const uint8_t type = whole[at];
    const size_t length = big_endian16(&whole[at + 1]);
    const size_t value_at = at + 3;
    if (whole.size() - value_at < length)
      return "TLV " + hex_byte(type) + " of " + std::to_string(length) + " bytes runs past the header";
    if (type == tlv_crc32c) {
      if (length != 4) return "CRC32C TLV of " + std::to_string(length) + " bytes (must be 4)";
      std::array<uint8_t, max_rest_size + fixed_size> copy{};
      std::copy(whole.begin(), whole.end(), copy.begin());
      std::fill_n(copy.begin() + static_cast<ptrdiff_t>(value_at), 4, 0);
      const uint32_t sent = static_cast<uint32_t>(whole[value_at]) << 24 | static_cast<uint32_t>(whole[value_at + 1]) << 16 |
                            static_cast<uint32_t>(whole[value_at + 2]) << 8 | whole[value_at + 3];
      if (crc32c(std::span(copy.data(), whole.size())) != sent) return "CRC32C mismatch";
    }
    at = value_at + length;
  }
  return {};
}

}  // namespace

uint32_t crc32c(std::span<const uint8_t> bytes) {
  uint32_t c = 0xFFFFFFFFu;
  for (uint8_t b : bytes) c = crc32c_table[(c ^ b) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

announced_length read_fixed_part(std::span<const uint8_t> first) {
  announced_length a;
  static constexpr char v1[] = "PROXY ";
  if (first.size() >= sizeof v1 - 1 && std::memcmp(first.data(), v1, sizeof v1 - 1) == 0) {
    a.refusal = "a PROXY protocol version 1 (text) header: only version 2 is accepted (HAProxy: send-proxy-v2)";
    return a;
  }
  if (first.size() < fixed_size) {
    a.refusal = "truncated: " + std::to_string(first.size()) + " of the 16 bytes of the fixed part";
    return a;
  }
  if (!std::equal(signature.begin(), signature.end(), first.begin())) {
    a.refusal = "no PROXY protocol version 2 signature";
    return a;
  }
  if (const unsigned version = first[12] >> 4; version != 2) {
    a.refusal = "version " + std::to_string(version) + ": only 2 is accepted";
    return a;
  }
  if (const uint8_t command = first[12] & 0x0F; command != command_local && command != command_proxy) {
    a.refusal = "unknown command " + hex_byte(command);
    return a;
  }
  a.rest = big_endian16(&first[14]);
  if (a.rest > max_rest_size)
    a.refusal = "length " + std::to_string(a.rest) + " is over the limit of " + std::to_string(max_rest_size);
  return a;
}

header parse(std::span<const uint8_t> whole) {
  const announced_length fixed = read_fixed_part(whole);
  if (!fixed.ok()) return refuse(fixed.refusal);
  if (whole.size() != fixed_size + fixed.rest)
    return refuse((whole.size() < fixed_size + fixed.rest ? "truncated: " : "too long: ") + std::to_string(whole.size()) +
                  " bytes for a header of " + std::to_string(fixed_size + fixed.rest));
  header h;
  // LOCAL is the proxy's own connection (a health check): the spec says to
  // use the real endpoints and discard the block whatever its family.
  if ((whole[12] & 0x0F) == command_local) {
    h.what = header::kind::local;
    return h;
  }
  size_t block = 0;
  switch (const uint8_t family = whole[13]) {
    case unspecified:
      // The proxy does not know the client (or will not say): discarded, as for LOCAL.
      h.what = header::kind::local;
      return h;
    case tcp_over_ipv4: block = ipv4_block; break;
    case tcp_over_ipv6: block = ipv6_block; break;
    case udp_over_ipv4:
    case udp_over_ipv6:
    case unix_datagram: return refuse("a datagram transport (" + hex_byte(family) + ") on a stream listener");
    case unix_stream: return refuse("a UNIX socket client (" + hex_byte(family) + "): no address to authorise");
    default: return refuse("unknown family and transport " + hex_byte(family));
  }
  if (fixed.rest < block)
    return refuse("an address block of " + std::to_string(fixed.rest) + " bytes where " + std::to_string(block) +
                  " are needed");
  const uint8_t* p = whole.data() + fixed_size;
  p = block == ipv4_block ? read_addresses<boost::asio::ip::address_v4>(p, h)
                          : read_addresses<boost::asio::ip::address_v6>(p, h);
  h.source.port = big_endian16(p);
  h.destination.port = big_endian16(p + 2);
  if (auto why = check_tlvs(whole, fixed_size + block); !why.empty()) return refuse(why);
  h.what = header::kind::proxied;
  return h;
}

}  // namespace sealgate::proxy_protocol
