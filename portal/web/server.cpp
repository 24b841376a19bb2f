// See server.hpp.
#include "portal/web/server.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <chrono>
#include <thread>

#include "common/log.hpp"
#include "common/worker.hpp"
#include "crypto/tls_context.hpp"

namespace sealgate::portal {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr auto handshake_timeout = std::chrono::seconds(10);
constexpr auto read_timeout = std::chrono::seconds(30);  // a whole request, headers and body
constexpr auto idle_timeout = std::chrono::seconds(15);  // between requests on a kept-alive connection
constexpr auto write_timeout = std::chrono::seconds(60);
constexpr size_t header_limit = 16 * 1024;

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

http_response plain_error(unsigned version, http::status s, std::string_view text) {
  http_response r{s, version};
  r.set(http::field::content_type, "text/plain; charset=utf-8");
  add_security_headers(r);
  r.body() = std::string(text) + "\n";
  r.keep_alive(false);
  r.prepare_payload();
  return r;
}

struct connection_count {
  std::shared_ptr<std::atomic<size_t>> n;
  explicit connection_count(std::shared_ptr<std::atomic<size_t>> c) : n(std::move(c)) { ++*n; }
  ~connection_count() { --*n; }
};

asio::awaitable<http_response> handle_on_pool(asio::thread_pool& workers, portal_app& app, const http_request& req,
                                              asio::ip::address peer) {
  std::function<http_response()> work = [&app, &req, peer] { return app.handle(req, peer, unix_now()); };
  co_return co_await on_pool<http_response>(workers, work);
}

asio::awaitable<void> serve(tcp::socket socket, std::shared_ptr<asio::ssl::context> tls, portal_app& app,
                            asio::thread_pool& workers, std::shared_ptr<std::atomic<size_t>> connections) {
  connection_count counted(connections);
  boost::system::error_code ec;
  const asio::ip::address peer = socket.remote_endpoint(ec).address();
  beast::ssl_stream<beast::tcp_stream> stream(std::move(socket), *tls);
  stream.next_layer().expires_after(handshake_timeout);
  auto [hs] = co_await stream.async_handshake(asio::ssl::stream_base::server, asio::as_tuple(asio::use_awaitable));
  if (hs) co_return;
  beast::flat_buffer buffer;
  for (bool first = true;; first = false) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(header_limit);
    stream.next_layer().expires_after(first ? read_timeout : idle_timeout);
    auto [he, hn] = co_await http::async_read_header(stream, buffer, parser, asio::as_tuple(asio::use_awaitable));
    if (he == http::error::end_of_stream || he == beast::error::timeout || he == asio::error::eof ||
        he == asio::ssl::error::stream_truncated)
      break;
    http_response res;
    if (he) {
      res = plain_error(11, he == http::error::header_limit ? http::status::request_header_fields_too_large
                                                           : http::status::bad_request,
                        "Bad request.");
    } else {
      parser.body_limit(app.body_limit(parser.get().target()));
      stream.next_layer().expires_after(read_timeout);
      auto [be, bn] = co_await http::async_read(stream, buffer, parser, asio::as_tuple(asio::use_awaitable));
      if (be == http::error::body_limit) {
        res = plain_error(parser.get().version(), http::status::payload_too_large, "The request is too large.");
      } else if (be) {
        res = plain_error(parser.get().version(), http::status::bad_request, "Bad request.");
      } else {
        http_request req = parser.release();
        try {
          res = co_await handle_on_pool(workers, app, req, peer);
        } catch (const std::exception& e) {
          log_error(std::string("portal: request failed: ") + e.what());
          res = plain_error(req.version(), http::status::internal_server_error,
                            "Something went wrong. Please try again later.");
        }
      }
    }
    bool keep = res.keep_alive();
    stream.next_layer().expires_after(write_timeout);
    auto [we, wn] = co_await http::async_write(stream, res, asio::as_tuple(asio::use_awaitable));
    if (we || !keep) break;
  }
  stream.next_layer().expires_after(std::chrono::seconds(5));
  co_await stream.async_shutdown(asio::as_tuple(asio::use_awaitable));
}

void log_exception(std::exception_ptr e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    log_error(std::string("portal connection: ") + x.what());
  }
}

asio::awaitable<void> accept_loop(tcp::acceptor& acceptor, std::shared_ptr<asio::ssl::context> tls, portal_app& app,
                                  asio::thread_pool& workers, std::shared_ptr<std::atomic<size_t>> connections) {
  for (;;) {
    auto strand = asio::make_strand(acceptor.get_executor());
    auto [ec, socket] = co_await acceptor.async_accept(strand, asio::as_tuple(asio::use_awaitable));
    if (ec == asio::error::operation_aborted) co_return;
    if (ec) {
      // Out of descriptors: wait rather than spin.
      asio::steady_timer t(acceptor.get_executor(), std::chrono::milliseconds(100));
      co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
      continue;
    }
    asio::co_spawn(strand, serve(std::move(socket), tls, app, workers, connections), log_exception);
  }
}

}  // namespace

portal_server::portal_server(asio::io_context& io, const portal_config& config, portal_app& app,
                             asio::thread_pool& workers)
    : io_(io),
      tls_(crypto::make_server_context(config.certificate, config.private_key)),
      acceptor_(io),
      app_(app),
      workers_(workers) {
  tcp::endpoint at(asio::ip::make_address(config.listen_address), config.listen_port);
  acceptor_.open(at.protocol());
  acceptor_.set_option(asio::socket_base::reuse_address(true));
  acceptor_.bind(at);
  acceptor_.listen();
}

void portal_server::start() {
  asio::co_spawn(io_, accept_loop(acceptor_, tls_, app_, workers_, connections_), log_exception);
}

void portal_server::stop() {
  boost::system::error_code ec;
  acceptor_.close(ec);
}

uint16_t portal_server::port() const { return acceptor_.local_endpoint().port(); }

int run_portal(const portal_config& config) {
  try {
    asio::io_context io;
    asio::thread_pool workers(std::max(1u, config.threads));
    portal_app app(config, open_store(config.store));
    portal_server server(io, config, app, workers);
    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](const boost::system::error_code& ec, int sig) {
      if (ec) return;
      log_info("portal: signal " + std::to_string(sig) + ": stopping");
      server.stop();
      io.stop();
    });
    server.start();
    log_info("portal: listening on https://" + config.listen_address + ":" + std::to_string(server.port()) +
             ", links " + config.base_url + ", store " + config.store.describe());
    std::vector<std::thread> threads;
    unsigned n = std::max(1u, std::min(config.threads, std::thread::hardware_concurrency()));
    for (unsigned i = 1; i < n; ++i) threads.emplace_back([&io] { io.run(); });
    io.run();
    for (auto& t : threads) t.join();
    workers.join();
    return 0;
  } catch (const std::exception& e) {
    log_error(std::string("portal: ") + e.what());
    return 1;
  }
}

}  // namespace sealgate::portal
