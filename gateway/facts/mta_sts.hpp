// MTA-STS (RFC 8461): the `_mta-sts` TXT record, the policy file and the MX
// pattern rule, as pure functions (unit-tested and fuzzed); the fetching and
// caching live in probe.cpp. Never treats a failed fetch as "no policy" on
// its own: the caller keeps temporary failures apart.
#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
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

// The policy cache of RFC 8461 5.1: a fetched policy is kept for its max_age;
// it is used while the TXT id stays the same, and also when the TXT record
// disappears or cannot be looked up, or a new policy cannot be fetched, until
// it expires. Thread-safe; the clock is injectable for tests.
class sts_policy_cache {
 public:
  using clock = std::chrono::steady_clock;
  struct entry {
    std::string id;
    sts_policy policy;
    clock::time_point expires;
  };
  explicit sts_policy_cache(std::function<clock::time_point()> now = [] { return clock::now(); })
      : now_(std::move(now)) {}

  std::optional<entry> get(const std::string& domain) const;  // an unexpired policy, if any
  void put(const std::string& domain, std::string id, sts_policy policy);

  // What to do after the TXT lookup (txt_id: the valid id, if any).
  enum class step {
    use_cached,  // the cached policy holds (same id; or no usable TXT answer while it is unexpired)
    fetch,       // a new or changed id: fetch the policy
    none,        // no TXT record and nothing cached: the domain has no MTA-STS
    unknown,     // the TXT lookup failed and nothing is cached
  };
  static step plan(const std::optional<entry>& cached, bool txt_lookup_failed, const std::optional<std::string>& txt_id);

 private:
  std::function<clock::time_point()> now_;
  mutable std::mutex mutex_;
  std::map<std::string, entry> entries_;
};

}  // namespace sealgate::gateway
