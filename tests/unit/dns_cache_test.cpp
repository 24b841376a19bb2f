// The answer cache with an injected clock, and the RFC 2308 lifetimes chosen
// for positive and negative answers.
#include <gtest/gtest.h>

#include "dns/cache.hpp"
#include "dns/lookup.hpp"
#include "dns_test_util.hpp"

using namespace sealgate::dns;
namespace t = sealgate::dns::testing;
using namespace std::chrono_literals;

namespace {
struct fake_clock {
  answer_cache::clock::time_point now{};
  answer_cache::now_function fn() {
    return [this] { return now; };
  }
};
}  // namespace

TEST(DnsCache, HonoursTtl) {
  fake_clock c;
  answer_cache cache(100, c.fn());
  cache.put("Example.Test.", rr_type::mx, {1, 2, 3}, true, 300s);
  c.now += 299s;
  auto hit = cache.get("example.test", rr_type::mx);
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->remaining, 1s);
  EXPECT_EQ(hit->message, (std::vector<uint8_t>{1, 2, 3}));
  EXPECT_TRUE(hit->trusted_ad);
  EXPECT_FALSE(cache.get("example.test", rr_type::a));  // the type is part of the key
  c.now += 1s;
  EXPECT_FALSE(cache.get("example.test", rr_type::mx));
  EXPECT_EQ(cache.size(), 0u);
}

TEST(DnsCache, ZeroTtlIsNotStored) {
  fake_clock c;
  answer_cache cache(100, c.fn());
  cache.put("a.test", rr_type::a, {1}, false, 0s);
  EXPECT_FALSE(cache.get("a.test", rr_type::a));
}

TEST(DnsCache, FullCacheDropsExpiredThenSoonestToExpire) {
  fake_clock c;
  answer_cache cache(2, c.fn());
  cache.put("a.test", rr_type::a, {1}, false, 10s);
  cache.put("b.test", rr_type::a, {2}, false, 100s);
  cache.put("c.test", rr_type::a, {3}, false, 50s);  // full: a.test goes, it expires first
  EXPECT_FALSE(cache.get("a.test", rr_type::a));
  EXPECT_TRUE(cache.get("b.test", rr_type::a));
  EXPECT_TRUE(cache.get("c.test", rr_type::a));
  c.now += 60s;  // c.test expired
  cache.put("d.test", rr_type::a, {4}, false, 10s);
  EXPECT_TRUE(cache.get("b.test", rr_type::a));
  EXPECT_TRUE(cache.get("d.test", rr_type::a));
}

TEST(DnsCacheTtl, PositiveAnswersUseTheSmallestTtlCapped) {
  resolver_options o;
  EXPECT_EQ(cache_ttl(t::mx_answer(), "example.test", rr_type::mx, o), 200s);
  o.cache_max_ttl = 60s;
  EXPECT_EQ(cache_ttl(t::mx_answer(), "example.test", rr_type::mx, o), 60s);
}

TEST(DnsCacheTtl, NegativeAnswersUseTheSoaOrTheDefault) {
  resolver_options o;  // negative_ttl 5 min, cap 1 h
  // RFC 2308 5: min(SOA TTL, SOA MINIMUM).
  EXPECT_EQ(cache_ttl(t::negative_answer("gone.test", 1, 3, 900, 60), "gone.test", rr_type::a, o), 60s);
  EXPECT_EQ(cache_ttl(t::negative_answer("gone.test", 1, 0, 30, 600), "gone.test", rr_type::a, o), 30s);
  EXPECT_EQ(cache_ttl(t::negative_answer("gone.test", 1, 3, 86400, 86400), "gone.test", rr_type::a, o), 3600s);
  // No SOA in the authority section: the configured default.
  EXPECT_EQ(cache_ttl(t::negative_answer("gone.test", 1, 3, 0, 0, false), "gone.test", rr_type::a, o), 300s);
  o.negative_ttl = 42s;
  EXPECT_EQ(cache_ttl(t::negative_answer("gone.test", 1, 0, 0, 0, false), "gone.test", rr_type::a, o), 42s);
}

TEST(DnsCacheTtl, TemporaryFailuresAreNotCached) {
  resolver_options o;
  EXPECT_EQ(cache_ttl(t::negative_answer("x.test", 1, 2, 900, 900), "x.test", rr_type::a, o), 0s);  // SERVFAIL
  EXPECT_EQ(cache_ttl(t::mx_answer(t::tc_flag), "example.test", rr_type::mx, o), 0s);
  EXPECT_EQ(cache_ttl(std::vector<uint8_t>{1, 2, 3}, "x.test", rr_type::a, o), 0s);
}
