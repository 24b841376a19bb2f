// The verified HTTPS GET's failure paths that need no certificate: a server
// that accepts and never speaks (the whole-fetch deadline), nothing listening,
// no address. The verified paths run against a real HTTPS server in
// tests/integration/probe_test.py (MTA-STS).
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "crypto/https_get.hpp"
#include "crypto/tls_context.hpp"

namespace asio = boost::asio;
using namespace sealgate::crypto;

namespace {
https_response fetch(asio::io_context& io, https_request req) {
  https_response out;
  asio::co_spawn(io, https_get(std::move(req)), [&](std::exception_ptr e, https_response r) {
    if (e) ADD_FAILURE() << "https_get threw";
    out = std::move(r);
  });
  io.run();
  return out;
}

https_request request_to(asio::ip::tcp::endpoint ep) {
  https_request req;
  req.host = "mta-sts.example.test";
  req.port = ep.port();
  req.target = "/.well-known/mta-sts.txt";
  req.addresses = {ep.address()};
  req.timeout = std::chrono::milliseconds(800);
  req.context = make_client_context("");
  return req;
}
}  // namespace

TEST(HttpsGet, SilentServerHitsTheDeadline) {
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.3.41"), 0});
  asio::ip::tcp::socket accepted(io);
  acceptor.async_accept(accepted, [](boost::system::error_code) {});  // accepts, never answers the ClientHello
  auto start = std::chrono::steady_clock::now();
  auto r = fetch(io, request_to(acceptor.local_endpoint()));
  auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.error, "TLS handshake: timeout");
  EXPECT_GE(elapsed, std::chrono::milliseconds(700));
  EXPECT_LT(elapsed, std::chrono::seconds(3));
}

TEST(HttpsGet, NothingListeningAndNoAddress) {
  asio::io_context io;
  asio::ip::tcp::endpoint ep;
  {
    asio::ip::tcp::acceptor a(io, {asio::ip::make_address("127.0.3.41"), 0});
    ep = a.local_endpoint();
  }
  auto r = fetch(io, request_to(ep));
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.error, "connect: Connection refused");
  io.restart();
  auto req = request_to(ep);
  req.addresses.clear();
  EXPECT_EQ(fetch(io, req).error, "connect: no address");
}
