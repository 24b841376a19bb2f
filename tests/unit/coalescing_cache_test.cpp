// The coalescing cache: 1,000 concurrent requests for one key cost one
// computation; the value is cached for its TTL; a TTL of zero only
// coalesces; an injected clock expires entries.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>

#include "gateway/facts/coalescing_cache.hpp"

using sealgate::gateway::coalescing_cache;
namespace asio = boost::asio;
using cache = coalescing_cache<int>;

namespace {
struct counters {
  std::atomic<int> leaders{0}, shared{0}, sum{0};
};

// A leader takes a while (a timer) so that every other request arrives while it works.
asio::awaitable<void> request(cache* c, std::string key, counters* n, std::chrono::seconds ttl) {
  auto t = co_await c->acquire(key);
  if (t.leader) {
    ++n->leaders;
    asio::steady_timer timer(co_await asio::this_coro::executor, std::chrono::milliseconds(50));
    co_await timer.async_wait(asio::use_awaitable);
    c->publish(key, 42, ttl);
    n->sum += 42;
  } else {
    ++n->shared;
    n->sum += t.value.value_or(-1000000);
  }
}

void log_failure(std::exception_ptr e) {
  if (e) ADD_FAILURE() << "coroutine threw";
}
}  // namespace

TEST(CoalescingCache, ThousandConcurrentRequestsOneComputation) {
  asio::io_context io;
  cache c;
  counters n;
  for (int i = 0; i < 1000; ++i) asio::co_spawn(io, request(&c, "mx.example.net", &n, std::chrono::seconds(60)), log_failure);
  io.run();
  EXPECT_EQ(c.computations(), 1u);
  EXPECT_EQ(n.leaders, 1);
  EXPECT_EQ(n.shared, 999);
  EXPECT_EQ(n.sum, 42000);
}

TEST(CoalescingCache, ThreadsAndStrandsToo) {
  asio::thread_pool pool(4);
  cache c;
  counters n;
  for (int i = 0; i < 1000; ++i)
    asio::co_spawn(asio::make_strand(pool), request(&c, "k", &n, std::chrono::seconds(60)), log_failure);
  pool.join();
  EXPECT_EQ(c.computations(), 1u);
  EXPECT_EQ(n.sum, 42000);
}

TEST(CoalescingCache, TtlAndExpiry) {
  auto now = cache::clock::now();
  cache c([&] { return now; });
  asio::io_context io;
  counters n;
  asio::co_spawn(io, request(&c, "k", &n, std::chrono::seconds(10)), log_failure);
  io.run();
  io.restart();
  asio::co_spawn(io, request(&c, "k", &n, std::chrono::seconds(10)), log_failure);
  io.run();
  io.restart();
  EXPECT_EQ(c.computations(), 1u) << "cached within the TTL";
  now += std::chrono::seconds(11);
  asio::co_spawn(io, request(&c, "k", &n, std::chrono::seconds(10)), log_failure);
  io.run();
  io.restart();
  EXPECT_EQ(c.computations(), 2u) << "computed again once expired";
  asio::co_spawn(io, request(&c, "other", &n, std::chrono::seconds(0)), log_failure);
  io.run();
  io.restart();
  asio::co_spawn(io, request(&c, "other", &n, std::chrono::seconds(0)), log_failure);
  io.run();
  EXPECT_EQ(c.computations(), 4u) << "TTL 0 coalesces concurrent requests only";
}
