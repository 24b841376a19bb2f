// Typed lookup results and the rules applied to them: decoding an answer into
// records, how long it may be cached (RFC 2308), MX ordering with null MX
// (RFC 7505) and the implicit MX (RFC 5321 5.1). Pure functions, no I/O.
#pragma once
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/address_v4.hpp>
#include <boost/asio/ip/address_v6.hpp>
#include <chrono>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "dns/message.hpp"
#include "dns/options.hpp"

namespace sealgate::dns {

template <typename T>
struct lookup_result {
  outcome status = outcome::temporary_failure;
  absence why_absent = absence::none;
  std::vector<T> records;
  uint32_t ttl = 0;      // smallest TTL of the answer (remaining, when it came from the cache)
  bool secure = false;   // AD bit set by a resolver we trust (every server on loopback)
  std::string error;     // why, for a temporary failure
};

using a_result = lookup_result<boost::asio::ip::address_v4>;
using aaaa_result = lookup_result<boost::asio::ip::address_v6>;
using mx_result = lookup_result<mx_record>;
using txt_result = lookup_result<std::string>;
using tlsa_result = lookup_result<tlsa_record>;
using smimea_result = lookup_result<tlsa_record>;
using openpgpkey_result = lookup_result<std::vector<uint8_t>>;

// The A and AAAA records of a host together. found when either has an
// address; a temporary failure when neither has one and either lookup
// failed; proven absent only when both proved it. secure only when neither
// failed and both were DNSSEC-secure (RFC 7672 2.2.2 needs that for TLSA).
struct address_set {
  outcome status = outcome::temporary_failure;
  absence why_absent = absence::none;  // of the A answer, when absent
  std::vector<boost::asio::ip::address> list;  // A first, then AAAA
  bool secure = false;
  std::string error;  // the failed lookup's reason, when temporary
};
address_set merge_addresses(const a_result& a, const aaaa_result& aaaa);

// Decodes a raw answer to (name, type). A record of the wanted type that does
// not parse makes the whole answer a temporary failure: a partial set could
// hide the record that matters (a TLSA record, the null MX).
a_result decode_a(std::span<const uint8_t> message, std::string_view name, bool trust_ad);
aaaa_result decode_aaaa(std::span<const uint8_t> message, std::string_view name, bool trust_ad);
mx_result decode_mx(std::span<const uint8_t> message, std::string_view name, bool trust_ad);
txt_result decode_txt(std::span<const uint8_t> message, std::string_view name, bool trust_ad);
tlsa_result decode_tlsa(std::span<const uint8_t> message, std::string_view name, bool trust_ad);
smimea_result decode_smimea(std::span<const uint8_t> message, std::string_view name, bool trust_ad);
openpgpkey_result decode_openpgpkey(std::span<const uint8_t> message, std::string_view name, bool trust_ad);

// How long an answer may be cached: found, the smallest TTL; proven absent,
// the SOA's negative TTL when the authority section has one, else
// options.negative_ttl (RFC 2308 5); both capped at options.cache_max_ttl.
// Temporary failures are never cached (zero).
std::chrono::seconds cache_ttl(std::span<const uint8_t> message, std::string_view name, rr_type type,
                               const resolver_options& options);

// Where mail for a domain goes.
enum class mx_outcome {
  hosts,              // deliver to `hosts`, in order
  null_mx,            // RFC 7505: the domain takes no mail; a permanent failure
  no_such_domain,     // NXDOMAIN, or no MX and no address records: permanent
  temporary_failure,  // try later
};
std::string_view to_string(mx_outcome o);

struct mx_host {
  std::string name;
  uint16_t preference = 0;
};
struct mx_set {
  mx_outcome status = mx_outcome::temporary_failure;
  std::vector<mx_host> hosts;
  bool implicit = false;  // no MX records: the domain itself (RFC 5321 5.1)
  uint32_t ttl = 0;
  bool secure = false;
  std::string error;
};

// MX records in preference order, random among equal preferences (RFC 5321
// 5.1); a single "0 ." is a null MX; proven absence of MX records gives the
// implicit MX, which finish_implicit_mx then checks against A/AAAA.
mx_set order_mx(const mx_result& mx, std::string_view domain, std::mt19937& random);
mx_set finish_implicit_mx(mx_set set, const a_result& a, const aaaa_result& aaaa);

}  // namespace sealgate::dns
