// The resolver end to end on one io_context: c-ares on Asio against a fake
// DNS server on 127.0.0.1 whose replies each test writes, so that caching,
// failures, hostile replies and timeouts are checked without real peers.
#include <gtest/gtest.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <functional>

#include "dns/resolver.hpp"
#include "dns_test_util.hpp"

using namespace sealgate::dns;
namespace asio = boost::asio;
using sealgate::dns::testing::wire;
using namespace std::chrono_literals;

namespace {

// The reply to a query: its id and question, our flags and rcode, then answer
// records (owner: a pointer to the question name).
std::vector<uint8_t> reply_to(std::span<const uint8_t> query, uint16_t flags, uint8_t rcode, uint16_t answers,
                              const std::vector<uint8_t>& records, uint16_t authority = 0) {
  size_t end = 12;
  while (end < query.size() && query[end] != 0) end += 1 + query[end];
  end += 1 + 4;
  std::vector<uint8_t> r(query.begin(), query.begin() + static_cast<ptrdiff_t>(std::min(end, query.size())));
  uint16_t f = static_cast<uint16_t>(0x8180 | flags | rcode);
  r[2] = static_cast<uint8_t>(f >> 8);
  r[3] = static_cast<uint8_t>(f);
  r[6] = static_cast<uint8_t>(answers >> 8);
  r[7] = static_cast<uint8_t>(answers);
  r[8] = static_cast<uint8_t>(authority >> 8);
  r[9] = static_cast<uint8_t>(authority);
  r[10] = r[11] = 0;
  r.insert(r.end(), records.begin(), records.end());
  return r;
}

std::vector<uint8_t> a_record(uint32_t ttl, uint32_t address) {
  wire w;
  w.pointer(12).u16(1).u16(1).u32(ttl).u16(4).u32(address);
  return w.b;
}

struct fake_server {
  explicit fake_server(asio::io_context& io) : socket(io, asio::ip::udp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {}
  asio::ip::udp::socket socket;
  std::function<std::vector<uint8_t>(std::span<const uint8_t>)> reply;  // empty: stay silent
  int queries = 0;
  uint16_t port() const { return socket.local_endpoint().port(); }
};

asio::awaitable<void> serve(fake_server* s) {
  std::array<uint8_t, 4096> buf;
  asio::ip::udp::endpoint from;
  for (;;) {
    auto [ec, n] = co_await s->socket.async_receive_from(asio::buffer(buf), from, asio::as_tuple(asio::use_awaitable));
    if (ec) co_return;
    ++s->queries;
    auto r = s->reply(std::span<const uint8_t>(buf.data(), n));
    if (!r.empty()) co_await s->socket.async_send_to(asio::buffer(r), from, asio::as_tuple(asio::use_awaitable));
  }
}

class DnsResolver : public ::testing::Test {
 protected:
  DnsResolver() : server(io) {}
  resolver_options options(std::chrono::milliseconds timeout = 2000ms) {
    resolver_options o;
    o.servers.push_back(*parse_server_address("127.0.0.1:" + std::to_string(server.port())));
    o.timeout = timeout;
    return o;
  }
  // Runs body to completion on io, with the fake server alongside.
  void run(std::function<asio::awaitable<void>()> body) {
    asio::co_spawn(io, serve(&server), asio::detached);
    bool done = false;
    std::exception_ptr failure;
    asio::co_spawn(io, body(), [&](std::exception_ptr e) {
      failure = e;
      done = true;
      server.socket.close();
    });
    io.run_for(20s);
    ASSERT_TRUE(done) << "lookups did not finish";
    if (failure) std::rethrow_exception(failure);
  }
  asio::io_context io;
  fake_server server;
};

}  // namespace

TEST_F(DnsResolver, AnswersAreCachedForTheirTtl) {
  server.reply = [](auto q) { return reply_to(q, 0, 0, 1, a_record(300, 0x7f000002)); };
  resolver res(io.get_executor(), options());
  EXPECT_TRUE(res.trusts_ad());
  a_result first, second;
  run([&]() -> asio::awaitable<void> {
    first = co_await res.resolve_a("host.test");
    second = co_await res.resolve_a("HOST.test.");
  });
  ASSERT_EQ(first.status, outcome::found) << first.error;
  EXPECT_EQ(first.records.at(0).to_string(), "127.0.0.2");
  EXPECT_EQ(first.ttl, 300u);
  EXPECT_EQ(second.status, outcome::found);
  EXPECT_LE(second.ttl, 300u);
  EXPECT_EQ(server.queries, 1);
}

TEST_F(DnsResolver, NegativeAnswersAreCachedTemporaryFailuresAreNot) {
  int servfails = 0;
  server.reply = [&](auto q) {
    std::string name(reinterpret_cast<const char*>(q.data()) + 13, 4);
    if (name == "fail") {
      ++servfails;
      return reply_to(q, 0, 2, 0, {});
    }
    wire soa;
    wire rdata;
    rdata.name("ns.test").name("h.test").u32(1).u32(1).u32(1).u32(1).u32(90);
    soa.name("test").u16(6).u16(1).u32(900).u16(static_cast<uint16_t>(rdata.size()));
    soa.b.insert(soa.b.end(), rdata.b.begin(), rdata.b.end());
    return reply_to(q, 0, 3, 0, soa.b, 1);
  };
  resolver res(io.get_executor(), options());
  a_result gone1, gone2, fail1, fail2;
  int servfails_after_first = 0;
  run([&]() -> asio::awaitable<void> {
    gone1 = co_await res.resolve_a("gone.test");
    gone2 = co_await res.resolve_a("gone.test");
    fail1 = co_await res.resolve_a("fail.test");
    servfails_after_first = servfails;
    fail2 = co_await res.resolve_a("fail.test");
  });
  EXPECT_EQ(gone1.status, outcome::absent);
  EXPECT_EQ(gone1.why_absent, absence::nxdomain);
  EXPECT_EQ(gone1.ttl, 90u);  // RFC 2308: min(SOA TTL 900, MINIMUM 90)
  EXPECT_EQ(gone2.status, outcome::absent);
  EXPECT_EQ(fail1.status, outcome::temporary_failure);
  // c-ares 1.18 retries a SERVFAIL and then reports its initial error status
  // rather than the rcode; the reason text says so.
  EXPECT_EQ(fail1.error, "no server answered (SERVFAIL, REFUSED or connection refused)");
  EXPECT_EQ(fail2.status, outcome::temporary_failure);
  EXPECT_GE(servfails_after_first, 1);
  EXPECT_GT(servfails, servfails_after_first);  // the second lookup asked again: nothing was cached
  EXPECT_EQ(server.queries - servfails, 1);  // gone.test asked once
}

TEST_F(DnsResolver, HostileReplyIsTemporaryFailure) {
  server.reply = [](auto q) {
    wire bad;  // an answer whose rdata runs past the end of the message
    bad.pointer(12).u16(1).u16(1).u32(60).u16(200).u32(0x7f000001);
    return reply_to(q, 0, 0, 1, bad.b);
  };
  resolver res(io.get_executor(), options());
  a_result r;
  run([&]() -> asio::awaitable<void> { r = co_await res.resolve_a("host.test"); });
  EXPECT_EQ(r.status, outcome::temporary_failure);
  EXPECT_EQ(r.error, "malformed answer: rdata past the end");
}

TEST_F(DnsResolver, SilentServerTimesOut) {
  server.reply = [](auto) { return std::vector<uint8_t>{}; };
  resolver res(io.get_executor(), options(300ms));
  mx_set r;
  auto start = std::chrono::steady_clock::now();
  run([&]() -> asio::awaitable<void> { r = co_await res.mx_hosts("example.test"); });
  auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(r.status, mx_outcome::temporary_failure);
  EXPECT_EQ(r.error, "timeout");
  EXPECT_LT(elapsed, 3s);
}

TEST_F(DnsResolver, AdBitBelievedFromLoopbackOnly) {
  server.reply = [](auto q) { return reply_to(q, sealgate::dns::testing::ad_flag, 0, 1, a_record(60, 0x7f000002)); };
  auto loopback_only = options();
  resolver res(io.get_executor(), loopback_only);
  a_result r;
  run([&]() -> asio::awaitable<void> { r = co_await res.resolve_a("host.test"); });
  EXPECT_TRUE(r.secure);

  // A resolver list with any non-loopback server: nothing it says is secure.
  // (Only constructed: no query leaves the machine.)
  auto mixed = loopback_only;
  mixed.servers.push_back(*parse_server_address("192.0.2.53"));
  resolver remote(io.get_executor(), mixed);
  EXPECT_FALSE(remote.trusts_ad());
  EXPECT_EQ(remote.servers(), (std::vector<std::string>{loopback_only.servers[0].to_string(), "192.0.2.53:53"}));
}

TEST_F(DnsResolver, ManyConcurrentLookups) {
  server.reply = [](auto q) { return reply_to(q, 0, 0, 1, a_record(60, 0x7f000009)); };
  resolver res(io.get_executor(), options());
  int found = 0;
  run([&]() -> asio::awaitable<void> {
    auto one = [](resolver* r, std::string name, int* count) -> asio::awaitable<void> {
      auto a = co_await r->resolve_a(name);
      if (a.status == outcome::found) ++*count;
    };
    for (int i = 0; i < 50; ++i)
      asio::co_spawn(co_await asio::this_coro::executor, one(&res, "h" + std::to_string(i) + ".test", &found),
                     asio::detached);
    asio::steady_timer t(co_await asio::this_coro::executor);
    for (int waited = 0; found < 50 && waited < 100; ++waited) {
      t.expires_after(50ms);
      co_await t.async_wait(asio::use_awaitable);
    }
  });
  EXPECT_EQ(found, 50);
  EXPECT_EQ(server.queries, 50);
}
