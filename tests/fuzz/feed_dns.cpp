// fuzz_dns: DNS answers as a resolver hands them to us (dns/message, dns/lookup).
// Feeds, never checks results beyond counting them: the point is that hostile
// bytes end as clean refusals, never as an out-of-bounds read or a loop.
#include <random>
#include <span>
#include <string>

#include "dns/lookup.hpp"
#include "dns/message.hpp"
#include "tests/fuzz/fuzz_parsers.hpp"

namespace sealgate::fuzz {

void feed_dns(const uint8_t* data, size_t size, parse_counts& counts) {
  std::span<const uint8_t> bytes(data, size);
  auto r = dns::parse_response(bytes);
  if (!r.ok) {
    ++counts.dns_refused;
    return;
  }
  ++counts.dns_ok;
  // Decode against the question the message claims, so that the record
  // readers see the answers rather than stopping at "another question".
  std::string q = r.question_name;
  for (bool secure : {true, false}) {
    (void)dns::decode_a(bytes, q, secure);
    (void)dns::decode_aaaa(bytes, q, secure);
    (void)dns::decode_txt(bytes, q, secure);
    (void)dns::decode_tlsa(bytes, q, secure);
    (void)dns::decode_smimea(bytes, q, secure);
    (void)dns::decode_openpgpkey(bytes, q, secure);
  }
  // The MX walk that delivery runs on these answers: order_mx promises
  // preference order, and the implicit MX only once A/AAAA are known.
  std::mt19937 random(static_cast<uint32_t>(size));
  auto mx = dns::decode_mx(bytes, q, true);
  auto set = dns::order_mx(mx, q, random);
  if (set.status == dns::mx_outcome::hosts && !set.implicit)
    for (size_t i = 1; i < set.hosts.size(); ++i)
      SEALGATE_FUZZ_CHECK(set.hosts[i - 1].preference <= set.hosts[i].preference);
  if (set.implicit) (void)dns::finish_implicit_mx(set, dns::decode_a(bytes, q, true), dns::decode_aaaa(bytes, q, true));
  dns::resolver_options opt;
  for (auto t : {dns::rr_type::a, dns::rr_type::mx, dns::rr_type::tlsa, dns::rr_type::txt}) (void)dns::cache_ttl(bytes, q, t, opt);
}

}  // namespace sealgate::fuzz
