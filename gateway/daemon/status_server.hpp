// The gateway's status listener (config `metrics:`): GET /metrics (the
// Prometheus text of common/metrics), /healthz (the process answers) and
// /readyz (spool recovered, database open, policy loaded: 200, else 503 with
// what is missing). Plain HTTP, GET and HEAD only, loopback by default: it
// says how much mail flows, never whose. A deadline on every read and write.
#pragma once
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <atomic>
#include <memory>
#include <string>

namespace sealgate::gateway {

// What /readyz reports; the daemon sets each flag when its step is done.
struct readiness {
  std::atomic<bool> spool_recovered{false};
  std::atomic<bool> database_open{false};
  std::atomic<bool> policy_loaded{false};
  std::atomic<bool> stopping{false};  // set at shutdown: not ready any more
};

class status_server {
 public:
  // Binds now (throws std::system_error naming the address when it cannot).
  status_server(boost::asio::io_context& io, const std::string& address, uint16_t port,
                std::shared_ptr<const readiness> ready);
  void start();
  void stop();
  uint16_t port() const;

 private:
  boost::asio::ip::tcp::acceptor acceptor_;
  std::shared_ptr<const readiness> ready_;
};

}  // namespace sealgate::gateway
