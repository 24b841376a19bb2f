// See status_server.hpp. One coroutine per connection on its own strand; a
// scrape is small (some KiB), so the text is made on the connection's strand.
#include "gateway/daemon/status_server.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include "common/log.hpp"
#include "common/metrics.hpp"

namespace sealgate::gateway {
namespace {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

constexpr auto read_timeout = std::chrono::seconds(10);
constexpr auto write_timeout = std::chrono::seconds(10);
constexpr auto idle_timeout = std::chrono::seconds(60);

http::response<http::string_body> answer(const http::request<http::empty_body>& req, const readiness& ready) {
  http::response<http::string_body> res;
  res.version(req.version());
  res.keep_alive(req.keep_alive());
  res.set(http::field::content_type, "text/plain; charset=utf-8");
  res.set(http::field::cache_control, "no-store");
  const auto target = req.target();
  if (req.method() != http::verb::get && req.method() != http::verb::head) {
    res.result(http::status::method_not_allowed);
    res.set(http::field::allow, "GET, HEAD");
    res.body() = "GET or HEAD\n";
  } else if (target == "/metrics") {
    // Text format 0.0.4, as every Prometheus server scrapes it.
    res.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
    res.body() = metrics::get().text();
  } else if (target == "/healthz") {
    res.body() = "ok\n";
  } else if (target == "/readyz") {
    std::string missing;
    if (ready.stopping) missing += "stopping\n";
    if (!ready.spool_recovered) missing += "spool not recovered\n";
    if (!ready.database_open) missing += "database not open\n";
    if (!ready.policy_loaded) missing += "policy not loaded\n";
    res.result(missing.empty() ? http::status::ok : http::status::service_unavailable);
    res.body() = missing.empty() ? "ready\n" : missing;
  } else {
    res.result(http::status::not_found);
    res.body() = "not found: /metrics, /healthz, /readyz\n";
  }
  if (req.method() == http::verb::head) {
    res.content_length(res.body().size());
    res.body().clear();
    return res;
  }
  res.prepare_payload();
  return res;
}

asio::awaitable<void> serve(tcp::socket socket, std::shared_ptr<const readiness> ready) {
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer(8192);
  for (bool first = true;; first = false) {
    http::request_parser<http::empty_body> parser;
    parser.header_limit(8192);
    stream.expires_after(first ? read_timeout : idle_timeout);
    auto [re, rn] = co_await http::async_read(stream, buffer, parser, asio::as_tuple(asio::use_awaitable));
    if (re) break;  // closed, timed out, or not HTTP: nothing to answer
    auto res = answer(parser.get(), *ready);
    bool keep = res.keep_alive();
    stream.expires_after(write_timeout);
    auto [we, wn] = co_await http::async_write(stream, res, asio::as_tuple(asio::use_awaitable));
    if (we || !keep) break;
  }
  boost::system::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
}

asio::awaitable<void> accept_loop(tcp::acceptor& acceptor, std::shared_ptr<const readiness> ready) {
  for (;;) {
    auto strand = asio::make_strand(acceptor.get_executor());
    auto [ec, socket] = co_await acceptor.async_accept(strand, asio::as_tuple(asio::use_awaitable));
    if (ec == asio::error::operation_aborted) co_return;
    if (ec) {
      asio::steady_timer t(acceptor.get_executor(), std::chrono::milliseconds(100));
      co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
      continue;
    }
    asio::co_spawn(strand, serve(std::move(socket), ready),
                   [](std::exception_ptr e) { log_failure("status listener", e); });
  }
}

}  // namespace

status_server::status_server(asio::io_context& io, const std::string& address, uint16_t port,
                             std::shared_ptr<const readiness> ready)
    : acceptor_(io), ready_(std::move(ready)) {
  tcp::endpoint at(asio::ip::make_address(address), port);
  acceptor_.open(at.protocol());
  acceptor_.set_option(tcp::acceptor::reuse_address(true));
  acceptor_.bind(at);
  acceptor_.listen();
}

void status_server::start() {
  asio::co_spawn(acceptor_.get_executor(), accept_loop(acceptor_, ready_),
                 [](std::exception_ptr e) { log_failure("status listener stopped", e); });
}

void status_server::stop() {
  boost::system::error_code ignored;
  acceptor_.close(ignored);
}

uint16_t status_server::port() const { return acceptor_.local_endpoint().port(); }

}  // namespace sealgate::gateway
