// See portal_tasks.hpp. The loops are coroutines on the gateway's io loop; the
// store work they start runs on the portal service's pool.
#include "gateway/daemon/portal_tasks.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "common/log.hpp"

namespace sealgate::gateway {
namespace asio = boost::asio;

struct portal_tasks::state {
  state(asio::any_io_executor ex, portal_service& p, queue_manager& q)
      : outbox_timer(ex), expire_timer(ex), portal(p), queue(q) {}
  asio::steady_timer outbox_timer, expire_timer;
  portal_service& portal;
  queue_manager& queue;
  bool stopped = false;
  std::mutex mutex;
  std::set<int64_t> in_flight;  // outbox items submitted but not yet removed
};

namespace {

asio::awaitable<void> send_outbox(std::shared_ptr<portal_tasks::state> s) {
  while (!s->stopped) {
    try {
      auto mails = co_await s->portal.take_outbox(100);
      for (auto& m : mails) {
        {
          std::lock_guard lock(s->mutex);
          if (!s->in_flight.insert(m.outbox_id).second) continue;  // still on its way from the last round
        }
        // A reply may go to the portal for the original sender; a code never does.
        std::string listener = m.kind == "reply" ? "portal-reply" : "portal";
        int64_t item = m.outbox_id;
        std::string original = m.queue_id, kind = m.kind, to = m.recipient;
        s->queue.submit(std::move(m.sender), std::move(m.recipient), std::move(m.content), listener,
                        [s, item, original, kind, to](std::string id) {
                          if (id.empty()) {
                            std::lock_guard lock(s->mutex);
                            s->in_flight.erase(item);  // try again next round
                            return;
                          }
                          log(log_level::info, original, "portal " + kind + " mail " + id + " to <" + to + ">");
                          try {
                            s->portal.outbox_done(item);
                          } catch (const std::exception& e) {
                            log(log_level::error, original, std::string("portal outbox: ") + e.what());
                          }
                          std::lock_guard lock(s->mutex);
                          s->in_flight.erase(item);
                        });
      }
    } catch (const std::exception& e) {
      log_error(std::string("portal outbox: ") + e.what());
    }
    s->outbox_timer.expires_after(portal_tasks::outbox_interval);
    co_await s->outbox_timer.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

asio::awaitable<void> expire_deposits(std::shared_ptr<portal_tasks::state> s) {
  while (!s->stopped) {
    try {
      if (size_t n = co_await s->portal.expire()) log_info("portal: " + std::to_string(n) + " deposits expired");
    } catch (const std::exception& e) {
      log_error(std::string("portal expiry: ") + e.what());
    }
    s->expire_timer.expires_after(portal_tasks::expire_interval);
    co_await s->expire_timer.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

}  // namespace

portal_tasks::portal_tasks(asio::any_io_executor executor, portal_service& portal, queue_manager& queue)
    : state_(std::make_shared<state>(executor, portal, queue)) {}

void portal_tasks::start() {
  auto report = [](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      log_error(std::string("portal tasks stopped: ") + x.what());
    }
  };
  asio::co_spawn(state_->outbox_timer.get_executor(), send_outbox(state_), report);
  asio::co_spawn(state_->expire_timer.get_executor(), expire_deposits(state_), report);
}

void portal_tasks::stop() {
  state_->stopped = true;
  state_->outbox_timer.cancel();
  state_->expire_timer.cancel();
}

}  // namespace sealgate::gateway
