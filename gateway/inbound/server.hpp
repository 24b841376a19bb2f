// The inbound side: listeners accept connections and run one ESMTP session per
// connection on its own strand, spooling accepted messages durably before 250.
#pragma once
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <atomic>
#include <memory>
#include <vector>

#include "gateway/config/config.hpp"
#include "gateway/spool/spool.hpp"

namespace sealgate::gateway {

class server {
 public:
  // Binds every listener on io (throws std::system_error naming the listener
  // when a bind fails); accepting starts with start(). Sessions run on io and
  // on session_loops, taken in turn: each is one thread's event loop, so a
  // session's work never meets another thread's in a shared scheduler queue.
  server(boost::asio::io_context& io, const config& cfg, spool& spool, boost::asio::thread_pool& workers,
         std::vector<boost::asio::io_context*> session_loops = {});
  void start();
  // Closes the listeners and asks every session to end: one waiting for a
  // command gets 421 at once; one receiving or committing a message finishes
  // it (so that a message made durable gets its 250) and gets 421 after.
  void stop();
  // After stop(): closes the connections of the sessions still running (their
  // clients got no 250 for what they were sending, and will send it again).
  void abort_sessions();

  size_t active_connections() const;

  struct shared_state;

 private:
  boost::asio::io_context& io_;
  std::vector<boost::asio::io_context*> loops_;  // where sessions run: io_ first
  std::shared_ptr<shared_state> state_;
  std::vector<std::pair<listener_config, std::shared_ptr<boost::asio::ip::tcp::acceptor>>> acceptors_;
};

}  // namespace sealgate::gateway
