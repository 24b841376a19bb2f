// The production transport of the outbound queue: one transfer (recipients of
// one message and domain, one method, one TLS requirement) to the domain's MX
// hosts in order, over the SMTP client. Before any byte of the message is
// sent, the live connection is judged (transport_security.hpp) against the
// requirement and the domain's own DANE and MTA-STS publication; a connection
// that falls short carries nothing, whatever a probe said earlier. Never logs
// content; never decides a method (the queue and policy/ do).
#pragma once
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "gateway/config/delivery_options.hpp"
#include "gateway/outbound/transfer.hpp"

namespace sealgate::dns {
class resolver;
}

namespace sealgate::gateway {

class prober;

// One outbound session as RFC 8460 (SMTP TLS Reporting) counts it, for the
// metrics and the daily reports to the recipient domain (the policy domain).
// policy_type and result_type are those of tls_report (transport_security.hpp).
struct tls_session_event {
  std::string policy_domain, mx_host, address;
  std::string policy_type, result_type;
};

class smtp_transport {
 public:
  // resolver and probe must outlive the transport. Throws std::runtime_error
  // when options.ca_file cannot be loaded.
  smtp_transport(boost::asio::any_io_executor executor, dns::resolver& resolver, prober& probe,
                 delivery_options options);
  ~smtp_transport();
  smtp_transport(const smtp_transport&) = delete;
  smtp_transport& operator=(const smtp_transport&) = delete;

  // One result per recipient of t, in order. Runs each connection on a strand
  // of its own.
  boost::asio::awaitable<std::vector<recipient_result>> send(outbound_transfer t);

  // Called, on a connection's strand, for every session that tried TLS (set
  // before the first send). Each is counted in the metrics as well.
  void on_tls_session(std::function<void(const tls_session_event&)> observer);

  struct impl;

 private:
  std::shared_ptr<impl> impl_;
};

}  // namespace sealgate::gateway
