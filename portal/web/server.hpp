// The portal's HTTPS listener (Boost.Beast): one coroutine per connection on
// its own strand, a deadline before every read and write, request size
// limits, HTTP/1.1 keep-alive. What a request means is portal_app's; its
// blocking work runs on the worker pool, never on the loop.
#pragma once
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <atomic>
#include <memory>

#include "portal/web/app.hpp"

namespace sealgate::portal {

class portal_server {
 public:
  // Binds at once (throws when the address is taken).
  portal_server(boost::asio::io_context& io, const portal_config& config, portal_app& app,
                boost::asio::thread_pool& workers);
  void start();
  void stop();
  uint16_t port() const;
  size_t open_connections() const { return *connections_; }

 private:
  boost::asio::io_context& io_;
  std::shared_ptr<boost::asio::ssl::context> tls_;
  boost::asio::ip::tcp::acceptor acceptor_;
  portal_app& app_;
  boost::asio::thread_pool& workers_;
  std::shared_ptr<std::atomic<size_t>> connections_ = std::make_shared<std::atomic<size_t>>(0);
};

// `sealgate portal run`: serves until SIGTERM or SIGINT. Returns the exit code.
int run_portal(const portal_config& config);

}  // namespace sealgate::portal
