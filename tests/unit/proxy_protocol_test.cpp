// The PROXY protocol v2 parser (common/proxy_protocol): one table of headers,
// each with what the listener must do with it and, for a refusal, the words
// the log line carries.
#include "common/proxy_protocol.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace pp = sealgate::proxy_protocol;
using bytes = std::vector<uint8_t>;

namespace {

const bytes signature = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

// A header: version and command byte, family byte, then rest (its length is
// filled in unless told otherwise).
bytes header(uint8_t version_command, uint8_t family, const bytes& rest, int length = -1) {
  bytes h = signature;
  h.push_back(version_command);
  h.push_back(family);
  const size_t n = length < 0 ? rest.size() : static_cast<size_t>(length);
  h.push_back(static_cast<uint8_t>(n >> 8));
  h.push_back(static_cast<uint8_t>(n));
  h.insert(h.end(), rest.begin(), rest.end());
  return h;
}

// 192.0.2.7:40000 -> 198.51.100.1:25, as HAProxy writes it for a TCP4 client.
const bytes ipv4_block = {192, 0, 2, 7, 198, 51, 100, 1, 0x9C, 0x40, 0x00, 0x19};
// [2001:db8::7]:40000 -> [2001:db8::1]:587
const bytes ipv6_block = {0x20, 0x01, 0x0D, 0xB8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7,
                          0x20, 0x01, 0x0D, 0xB8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
                          0x9C, 0x40, 0x02, 0x4B};

bytes operator+(bytes a, const bytes& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

bytes text(std::string_view s) { return bytes(s.begin(), s.end()); }

// The IPv4 header with a CRC32C TLV (after a NOOP TLV), the checksum
// computed over the header with the field zero, then changed by `damage`.
bytes with_crc32c(uint32_t damage) {
  bytes h = header(0x21, 0x11, ipv4_block + bytes{0x04, 0x00, 0x02, 'x', 'y'} + bytes{0x03, 0x00, 0x04, 0, 0, 0, 0});
  uint32_t crc = pp::crc32c(h) ^ damage;
  for (int i = 0; i < 4; ++i) h[h.size() - 4 + static_cast<size_t>(i)] = static_cast<uint8_t>(crc >> (24 - 8 * i));
  return h;
}

struct parse_case {
  const char* name;
  bytes input;
  pp::header::kind expected;
  std::string source;       // address:port for proxied
  std::string reason_part;  // for refused
};

std::string endpoint_text(const pp::endpoint& e) { return e.address.to_string() + ":" + std::to_string(e.port); }

}  // namespace

TEST(ProxyProtocol, Table) {
  // An SSL TLV (0x20) that brings the rest to exactly the cap, and one past it.
  const bytes longest = ipv4_block + bytes{0x20, 0x03, 0xF1} + bytes(1009, 0);
  const bytes too_long = ipv4_block + bytes{0x20, 0x03, 0xF2} + bytes(1010, 0);
  const std::vector<parse_case> cases = {
      {"local health check", header(0x20, 0x00, {}), pp::header::kind::local, "", ""},
      {"local discards any block", header(0x20, 0x11, ipv4_block), pp::header::kind::local, "", ""},
      {"tcp4", header(0x21, 0x11, ipv4_block), pp::header::kind::proxied, "192.0.2.7:40000", ""},
      {"tcp6", header(0x21, 0x21, ipv6_block), pp::header::kind::proxied, "2001:db8::7:40000", ""},
      {"unspec under PROXY: socket endpoints", header(0x21, 0x00, bytes(5, 0)), pp::header::kind::local, "", ""},
      {"TLVs skipped", header(0x21, 0x11, ipv4_block + bytes{0x01, 0x00, 0x02, 'h', '2'} + bytes{0x05, 0x00, 0x00}),
       pp::header::kind::proxied, "192.0.2.7:40000", ""},
      {"CRC32C good", with_crc32c(0), pp::header::kind::proxied, "192.0.2.7:40000", ""},
      {"CRC32C bad", with_crc32c(1), pp::header::kind::refused, "", "CRC32C mismatch"},
      {"CRC32C of 3 bytes", header(0x21, 0x11, ipv4_block + bytes{0x03, 0x00, 0x03, 0, 0, 0}),
       pp::header::kind::refused, "", "CRC32C TLV of 3 bytes"},
      {"TLV past the end", header(0x21, 0x11, ipv4_block + bytes{0x01, 0x00, 0x09, 'h'}), pp::header::kind::refused,
       "", "runs past the header"},
      {"TLV cut in its own header", header(0x21, 0x11, ipv4_block + bytes{0x01, 0x00}), pp::header::kind::refused, "",
       "truncated TLV"},
      {"tcp4 with a short address block", header(0x21, 0x11, bytes(11, 0)), pp::header::kind::refused, "",
       "an address block of 11 bytes where 12 are needed"},
      {"tcp6 with an IPv4 block", header(0x21, 0x21, ipv4_block), pp::header::kind::refused, "",
       "where 36 are needed"},
      {"truncated fixed part", bytes(signature.begin(), signature.end()) + bytes{0x21, 0x11}, pp::header::kind::refused,
       "", "truncated: 14 of the 16 bytes"},
      {"truncated rest", header(0x21, 0x11, bytes(ipv4_block.begin(), ipv4_block.begin() + 8), 12),
       pp::header::kind::refused, "", "truncated: 24 bytes for a header of 28"},
      {"more than announced", header(0x21, 0x11, ipv4_block + bytes{'E'}, 12), pp::header::kind::refused, "",
       "too long: 29 bytes"},
      {"bad signature", text("EHLO client.example\r\n"), pp::header::kind::refused, "",
       "no PROXY protocol version 2 signature"},
      {"TLS ClientHello instead", bytes{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xFC, 0x03, 0x03, 0, 0, 0, 0, 0},
       pp::header::kind::refused, "", "no PROXY protocol version 2 signature"},
      {"version 1 binary", header(0x11, 0x11, ipv4_block), pp::header::kind::refused, "", "version 1: only 2"},
      {"version 3", header(0x31, 0x11, ipv4_block), pp::header::kind::refused, "", "version 3: only 2"},
      {"command 2", header(0x22, 0x11, ipv4_block), pp::header::kind::refused, "", "unknown command 0x02"},
      {"length at the cap", header(0x21, 0x11, longest), pp::header::kind::proxied, "192.0.2.7:40000", ""},
      {"length over the cap", header(0x21, 0x11, too_long), pp::header::kind::refused, "",
       "length 1025 is over the limit of 1024"},
      {"udp4", header(0x21, 0x12, ipv4_block), pp::header::kind::refused, "", "a datagram transport (0x12)"},
      {"udp6", header(0x21, 0x22, ipv6_block), pp::header::kind::refused, "", "a datagram transport (0x22)"},
      {"unix stream", header(0x21, 0x31, bytes(216, 0)), pp::header::kind::refused, "", "a UNIX socket client (0x31)"},
      {"unix datagram", header(0x21, 0x32, bytes(216, 0)), pp::header::kind::refused, "", "a datagram transport (0x32)"},
      {"inet without transport", header(0x21, 0x10, ipv4_block), pp::header::kind::refused, "",
       "unknown family and transport 0x10"},
      {"v1 text refused", text("PROXY TCP4 192.0.2.7 198.51.100.1 40000 25\r\n"), pp::header::kind::refused, "",
       "version 1 (text) header: only version 2 is accepted"},
      {"v1 unknown refused", text("PROXY UNKNOWN\r\n"), pp::header::kind::refused, "", "version 1 (text)"},
      {"empty", {}, pp::header::kind::refused, "", "truncated: 0 of the 16 bytes"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto h = pp::parse(c.input);
    EXPECT_EQ(h.what, c.expected) << h.reason;
    if (c.expected == pp::header::kind::proxied) {
      EXPECT_EQ(endpoint_text(h.source), c.source);
    }
    if (c.expected == pp::header::kind::refused) {
      EXPECT_NE(h.reason.find(c.reason_part), std::string::npos) << h.reason;
    }
  }
}

TEST(ProxyProtocol, DestinationOfTcp4AndTcp6) {
  auto v4 = pp::parse(header(0x21, 0x11, ipv4_block));
  EXPECT_EQ(endpoint_text(v4.destination), "198.51.100.1:25");
  auto v6 = pp::parse(header(0x21, 0x21, ipv6_block));
  EXPECT_EQ(endpoint_text(v6.destination), "2001:db8::1:587");
}

TEST(ProxyProtocol, FixedPartTellsWhatFollows) {
  // The listener reads 16 bytes, asks how many follow, reads exactly those.
  auto h = header(0x21, 0x21, ipv6_block + bytes{0x04, 0x00, 0x01, 0});
  auto a = pp::read_fixed_part(std::span(h).first(pp::fixed_size));
  ASSERT_TRUE(a.ok()) << a.refusal;
  EXPECT_EQ(a.rest, 40u);
  auto local = pp::read_fixed_part(header(0x20, 0x00, {}));
  ASSERT_TRUE(local.ok());
  EXPECT_EQ(local.rest, 0u);
  // Refused before anything more is read: the cap, the command, v1.
  EXPECT_FALSE(pp::read_fixed_part(header(0x21, 0x11, {}, 1025)).ok());
  EXPECT_TRUE(pp::read_fixed_part(header(0x21, 0x11, {}, 1024)).ok());
  EXPECT_FALSE(pp::read_fixed_part(header(0x2F, 0x11, {})).ok());
  EXPECT_FALSE(pp::read_fixed_part(text("PROXY TCP6 2001:db8::7 ")).ok());
}

TEST(ProxyProtocol, Crc32cKnownAnswer) {
  // RFC 3720 B.4: 32 bytes of zeros, and the digits "123456789" (the usual check value).
  EXPECT_EQ(pp::crc32c(bytes(32, 0)), 0x8A9136AAu);
  EXPECT_EQ(pp::crc32c(text("123456789")), 0xE3069283u);
}
