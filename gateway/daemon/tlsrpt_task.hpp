// Sends the SMTP TLS reports (RFC 8460) of a day to the recipient domains
// that ask for them: with tlsrpt.send, once a day for the day before (after
// 01:00 UTC and a random delay of up to an hour, so that gateways do not all
// send at once); and whenever asked (`sealgate tlsrpt send`, through the
// control socket). A domain asks with one _smtp._tls TXT record; a mailto:
// destination gets a mail through the gateway's own queue (signed like any
// mail it sends), an https: one a POST. What was sent is recorded
// (tls_reports), so nothing goes twice; a failed destination, and a domain
// whose DNS lookup failed (nothing recorded), are tried again on the next
// run: the daily run repeats hourly, up to six times, while anything fails.
#pragma once
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <functional>
#include <memory>
#include <string>

#include "gateway/config/config.hpp"

namespace sealgate::dns {
class resolver;
}

namespace sealgate::gateway {

class database;
class queue_manager;

class tlsrpt_task {
 public:
  // All must outlive the task.
  tlsrpt_task(boost::asio::any_io_executor executor, const config& cfg, dns::resolver& resolver, database& db,
              queue_manager& queue);
  ~tlsrpt_task();
  // The daily run (only with tlsrpt.send).
  void start();
  void stop();
  // Sends the reports of day (YYYY-MM-DD) now, on the task's executor;
  // returns a one-line summary.
  boost::asio::awaitable<std::string> send(std::string day);

  struct state;

 private:
  std::shared_ptr<state> state_;
};

}  // namespace sealgate::gateway
