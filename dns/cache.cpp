// See cache.hpp. Expired entries are dropped when met and when the cache is full.
#include "dns/cache.hpp"

#include <algorithm>

namespace sealgate::dns {

answer_cache::answer_cache(size_t max_entries, now_function now) : max_entries_(max_entries), now_(std::move(now)) {}

void answer_cache::put(std::string_view name, rr_type type, std::vector<uint8_t> message, bool trusted_ad,
                       std::chrono::seconds ttl) {
  if (ttl <= std::chrono::seconds{0} || max_entries_ == 0) return;
  key k{canonical_name(name), static_cast<uint16_t>(type)};
  if (entries_.size() >= max_entries_ && !entries_.count(k)) evict();
  entries_[k] = entry{std::move(message), trusted_ad, now_() + ttl};
}

std::optional<answer_cache::hit> answer_cache::get(std::string_view name, rr_type type) {
  auto it = entries_.find(key{canonical_name(name), static_cast<uint16_t>(type)});
  if (it == entries_.end()) return std::nullopt;
  auto now = now_();
  if (it->second.expires <= now) {
    entries_.erase(it);
    return std::nullopt;
  }
  auto remaining = std::chrono::ceil<std::chrono::seconds>(it->second.expires - now);
  return hit{it->second.message, it->second.trusted_ad, remaining};
}

void answer_cache::evict() {
  auto now = now_();
  std::erase_if(entries_, [now](const auto& kv) { return kv.second.expires <= now; });
  if (entries_.size() < max_entries_) return;
  // Still full: drop the entry closest to expiry, the one worth least.
  auto oldest = std::min_element(entries_.begin(), entries_.end(),
                                 [](const auto& a, const auto& b) { return a.second.expires < b.second.expires; });
  entries_.erase(oldest);
}

}  // namespace sealgate::dns
