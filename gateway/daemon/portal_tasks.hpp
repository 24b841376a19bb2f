// The gateway's recurring portal work: sending what the portal process put in
// the outbox (one-time codes, replies) through the queue, and expiring
// deposits past their date (their ciphertext is deleted).
#pragma once
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <memory>
#include <mutex>
#include <set>

#include "gateway/methods/portal_service.hpp"
#include "gateway/queue/delivery.hpp"

namespace sealgate::gateway {

class portal_tasks {
 public:
  portal_tasks(boost::asio::any_io_executor executor, portal_service& portal, queue_manager& queue);
  void start();
  void stop();

  // How often the outbox is read: a code reaches the queue within this.
  static constexpr std::chrono::milliseconds outbox_interval{500};
  static constexpr std::chrono::minutes expire_interval{10};

  struct state;  // shared with the loops, which outlive a stop() until their timers fire

 private:
  std::shared_ptr<state> state_;
};

}  // namespace sealgate::gateway
