// Hand-built DNS messages for the dns/ unit tests: every octet is spelled out
// so that tests can also build the malformed ones a hostile server would send.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sealgate::dns::testing {

struct wire {
  std::vector<uint8_t> b;
  wire& u8(uint8_t v) {
    b.push_back(v);
    return *this;
  }
  wire& u16(uint16_t v) { return u8(static_cast<uint8_t>(v >> 8)).u8(static_cast<uint8_t>(v)); }
  wire& u32(uint32_t v) { return u16(static_cast<uint16_t>(v >> 16)).u16(static_cast<uint16_t>(v)); }
  wire& bytes(std::string_view s) {
    b.insert(b.end(), s.begin(), s.end());
    return *this;
  }
  // Uncompressed name "a.b.c" (or "" for the root).
  wire& name(std::string_view n) {
    while (!n.empty()) {
      auto dot = n.find('.');
      auto label = n.substr(0, dot);
      u8(static_cast<uint8_t>(label.size())).bytes(label);
      n = dot == std::string_view::npos ? std::string_view{} : n.substr(dot + 1);
    }
    return u8(0);
  }
  wire& pointer(uint16_t offset) { return u16(static_cast<uint16_t>(0xC000 | offset)); }
  // Header of a response: QR, RD, RA plus the given extra flags and rcode.
  wire& header(uint16_t extra_flags, uint8_t rcode, uint16_t an, uint16_t ns = 0, uint16_t ar = 0) {
    return u16(0x1234).u16(static_cast<uint16_t>(0x8180 | extra_flags | rcode)).u16(1).u16(an).u16(ns).u16(ar);
  }
  wire& question(std::string_view n, uint16_t type) { return name(n).u16(type).u16(1); }
  // Record header with owner as a pointer to offset 12 (the question name).
  wire& rr_at_question(uint16_t type, uint32_t ttl, uint16_t rdlength) {
    return pointer(12).u16(type).u16(1).u32(ttl).u16(rdlength);
  }
  size_t size() const { return b.size(); }
};

constexpr uint16_t ad_flag = 0x0020;
constexpr uint16_t tc_flag = 0x0200;

// example.test MX: "10 mx1.example.test", "20 mx2" (compressed against the question).
inline std::vector<uint8_t> mx_answer(uint16_t flags = 0) {
  wire w;
  w.header(flags, 0, 2).question("example.test", 15);
  w.rr_at_question(15, 300, 2 + 4 + 2).u16(10).u8(3).bytes("mx1").pointer(12);
  w.rr_at_question(15, 200, 2 + 4 + 2).u16(20).u8(3).bytes("mx2").pointer(12);
  return w.b;
}

// A negative answer with an SOA (TTL soa_ttl, MINIMUM minimum) in the authority section.
inline std::vector<uint8_t> negative_answer(std::string_view qname, uint16_t qtype, uint8_t rcode, uint32_t soa_ttl,
                                            uint32_t minimum, bool with_soa = true) {
  wire w;
  w.header(0, rcode, 0, with_soa ? 1 : 0).question(qname, qtype);
  if (with_soa) {
    wire rdata;
    rdata.name("ns.test").name("hostmaster.test").u32(1).u32(3600).u32(600).u32(86400).u32(minimum);
    w.name("test").u16(6).u16(1).u32(soa_ttl).u16(static_cast<uint16_t>(rdata.size())).b.insert(w.b.end(), rdata.b.begin(),
                                                                                               rdata.b.end());
  }
  return w.b;
}

}  // namespace sealgate::dns::testing
