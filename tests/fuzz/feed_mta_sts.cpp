// fuzz_mta_sts: what a domain publishes for MTA-STS (gateway/mta_sts): the
// _mta-sts TXT record and the policy file fetched over HTTPS. Checks the
// limits RFC 8461 3.2 sets on an accepted policy, which delivery relies on.
#include <string>
#include <string_view>
#include <vector>

#include "gateway/facts/mta_sts.hpp"
#include "tests/fuzz/fuzz_parsers.hpp"

namespace sealgate::fuzz {

void feed_mta_sts(const uint8_t* data, size_t size, parse_counts& counts) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  std::string why;
  if (auto id = gateway::parse_sts_txt_id(text, &why)) {
    ++counts.sts_txt_ok;
    // RFC 8461 3.1: the id is 1 to 32 alphanumerics.
    SEALGATE_FUZZ_CHECK(!id->empty() && id->size() <= 32);
  }
  // The same bytes as several TXT strings at _mta-sts (split at newlines),
  // as the resolver hands them to select_sts_id.
  std::vector<std::string> records;
  for (size_t start = 0; start <= text.size() && records.size() < 16;) {
    size_t nl = text.find('\n', start);
    records.emplace_back(text.substr(start, nl == std::string_view::npos ? std::string_view::npos : nl - start));
    if (nl == std::string_view::npos) break;
    start = nl + 1;
  }
  (void)gateway::select_sts_id(records, &why);

  if (auto p = gateway::parse_sts_policy(text, &why)) {
    ++counts.sts_policy_ok;
    SEALGATE_FUZZ_CHECK(p->max_age <= 31557600);
    SEALGATE_FUZZ_CHECK(p->mode == gateway::sts_mode::none || !p->mx.empty());
    for (const auto& m : p->mx) {
      (void)gateway::sts_mx_matches(m, "mx.example.net");
      // A pattern always matches the host it names, unless it is a wildcard.
      if (!m.empty() && m[0] != '*') SEALGATE_FUZZ_CHECK(gateway::sts_mx_matches(m, m));
    }
    (void)gateway::sts_mx_allowed(*p, "a.example.net.");
    // Host names from the input against each pattern: MX names come from DNS.
    for (const auto& r : records) (void)gateway::sts_mx_allowed(*p, r);
  }
}

}  // namespace sealgate::fuzz
