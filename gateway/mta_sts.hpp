// MTA-STS (RFC 8461): the `_mta-sts` TXT record, the policy file and the MX
// pattern rule, as pure functions (unit-tested and fuzzed); the fetching and
// caching live in probe.cpp. Never treats a failed fetch as "no policy" on
// its own: the caller keeps temporary failures apart.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sealgate::gateway {

// RFC 8461 3.1: "v=STSv1; id=<1*32 alphanumerics>;" and optional extension
// fields. nullopt (why says why) when the record is not a valid STS record.
std::optional<std::string> parse_sts_txt_id(std::string_view record, std::string* why = nullptr);

// RFC 8461 3.1: of all TXT records at _mta-sts.<domain>, those beginning with
// "v=STSv1" count; exactly one must remain and be valid, otherwise the domain
// has no MTA-STS.
std::optional<std::string> select_sts_id(const std::vector<std::string>& records, std::string* why = nullptr);

enum class sts_mode { none, testing, enforce };
std::string_view to_string(sts_mode m);

struct sts_policy {
  sts_mode mode = sts_mode::none;
  uint32_t max_age = 0;            // seconds, at most 31557600 (RFC 8461 3.2)
  std::vector<std::string> mx;     // patterns, lower case, no trailing dot
};

// RFC 8461 3.2: "key: value" lines (CRLF or LF); version STSv1, mode and
// max_age required, at least one mx unless mode is none; unknown keys ignored.
// nullopt (why says why) for anything else.
std::optional<sts_policy> parse_sts_policy(std::string_view text, std::string* why = nullptr);

// RFC 8461 4.1: a pattern "mx.example.com" matches that host only; "*.example.com"
// matches exactly one more label ("a.example.com", not "example.com" nor
// "a.b.example.com"). Case-insensitive; one trailing dot ignored.
bool sts_mx_matches(std::string_view pattern, std::string_view host);
bool sts_mx_allowed(const sts_policy& p, std::string_view host);

}  // namespace sealgate::gateway
