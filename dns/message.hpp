// DNS wire format (RFC 1035 4.1, RFC 6891 EDNS, RFC 4035 AD/DO): builds our
// queries and parses answers into typed records. Parsing is bounds-checked on
// every octet: a malformed, truncated or hostile message becomes a temporary
// failure, never a read past the buffer or an endless compression loop.
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sealgate::dns {

// Record types we ask for (RFC 1035, 3596, 6698, 7929, 8162).
enum class rr_type : uint16_t {
  a = 1, cname = 5, soa = 6, mx = 15, txt = 16, aaaa = 28, opt = 41, smimea = 53, openpgpkey = 61, tlsa = 52
};
std::string_view to_string(rr_type t);
std::optional<rr_type> parse_rr_type(std::string_view name);  // "MX", "tlsa", ... (case-insensitive)

// The three outcomes every fact keeps apart (docs/architecture.md): only a
// proven absence may lower what a recipient gets.
enum class outcome { found, absent, temporary_failure };
enum class absence { none, nxdomain, nodata };
std::string_view to_string(outcome o);
std::string_view to_string(absence a);

// A query with RD, the AD bit (RFC 6840 5.7: ask for the AD bit without DO
// semantics) and an EDNS OPT record with DO set (RFC 3225) so that a
// validating resolver tells us whether the answer is secure.
std::vector<uint8_t> build_query(std::string_view name, rr_type type, uint16_t id, uint16_t udp_size = 1232);

// One resource record of the answer section, rdata still in the message (names
// in rdata may point anywhere in it through compression).
struct record {
  std::string owner;  // lower case, no trailing dot, "" for the root
  uint16_t type = 0;
  uint32_t ttl = 0;
  size_t rdata_offset = 0;
  size_t rdata_length = 0;
  std::string cname_target;  // for CNAME records, decoded at parse time
};

// A parsed response. When ok is false, `error` says why and nothing else may
// be trusted.
struct response {
  bool ok = false;
  std::string error;
  uint16_t id = 0;
  uint8_t rcode = 0;  // with EDNS extended bits folded in
  bool truncated = false;
  bool authentic_data = false;  // the AD bit as sent; whether to believe it is the resolver's decision
  std::string question_name;
  uint16_t question_type = 0;
  std::vector<record> answers;
  std::optional<uint32_t> soa_negative_ttl;  // RFC 2308 5: min(SOA TTL, SOA MINIMUM) from the authority section
};

response parse_response(std::span<const uint8_t> message);

// What the answers say about (qname, qtype) after following CNAMEs from qname
// (at most 8, RFC 1034 3.6.2): the records of the wanted type at the end of the
// chain and the smallest TTL along it.
struct rrset {
  outcome status = outcome::temporary_failure;
  absence why_absent = absence::none;
  std::string error;  // for temporary_failure
  std::string canonical_name;
  std::vector<const record*> records;
  uint32_t min_ttl = 0;
};
rrset select_answer(const response& r, std::string_view qname, rr_type qtype);

// Typed rdata readers; each returns nullopt when the rdata is malformed.
struct mx_record {
  uint16_t preference = 0;
  std::string exchange;  // lower case, no trailing dot; "" is the root (null MX, RFC 7505)
  bool operator==(const mx_record&) const = default;
};
struct tlsa_record {  // also SMIMEA, which shares TLSA's rdata (RFC 8162 2)
  uint8_t usage = 0, selector = 0, matching_type = 0;
  std::vector<uint8_t> data;
  bool operator==(const tlsa_record&) const = default;
};
std::optional<std::array<uint8_t, 4>> read_a(std::span<const uint8_t> msg, const record& rr);
std::optional<std::array<uint8_t, 16>> read_aaaa(std::span<const uint8_t> msg, const record& rr);
std::optional<mx_record> read_mx(std::span<const uint8_t> msg, const record& rr);
std::optional<std::string> read_txt(std::span<const uint8_t> msg, const record& rr);  // character-strings joined
std::optional<tlsa_record> read_tlsa(std::span<const uint8_t> msg, const record& rr);
std::optional<std::vector<uint8_t>> read_openpgpkey(std::span<const uint8_t> msg, const record& rr);

// Lower-cases ASCII and drops one trailing dot, so that names compare as DNS does.
std::string canonical_name(std::string_view name);

}  // namespace sealgate::dns
