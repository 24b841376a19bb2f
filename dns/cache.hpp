// The resolver's answer cache: raw answers kept for their TTL (already capped
// and chosen by cache_ttl), with an injectable clock so tests need not sleep.
// Owned by one strand; not thread-safe by itself.
#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "dns/message.hpp"

namespace sealgate::dns {

class answer_cache {
 public:
  using clock = std::chrono::steady_clock;
  using now_function = std::function<clock::time_point()>;

  struct hit {
    std::vector<uint8_t> message;
    bool trusted_ad = false;
    std::chrono::seconds remaining{0};
  };

  explicit answer_cache(size_t max_entries = 10000, now_function now = [] { return clock::now(); });

  // ttl zero or less stores nothing.
  void put(std::string_view name, rr_type type, std::vector<uint8_t> message, bool trusted_ad, std::chrono::seconds ttl);
  std::optional<hit> get(std::string_view name, rr_type type);
  size_t size() const { return entries_.size(); }

 private:
  struct entry {
    std::vector<uint8_t> message;
    bool trusted_ad = false;
    clock::time_point expires;
  };
  using key = std::pair<std::string, uint16_t>;
  void evict();

  size_t max_entries_;
  now_function now_;
  std::map<key, entry> entries_;
};

}  // namespace sealgate::dns
