// The gateway's side of the portal: deposits (the portal method's
// deposit_function), the notification that carries the link, the mails the
// portal process asks for through the outbox (codes, replies), and whether
// the portal is available to the policy (configured, and its store writable).
// Store work blocks (SQLite, AES-GCM over the whole message), so it runs on
// the worker pool given, never on the queue's strand.
#pragma once
#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>
#include <atomic>
#include <condition_variable>
#include <exception>
#include <vector>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "gateway/methods/method.hpp"
#include "portal/store/portal_config.hpp"
#include "portal/store/store.hpp"

namespace sealgate::gateway {

// A message the gateway is to send on the portal's behalf.
struct portal_mail {
  std::string sender;     // envelope sender (portal.from)
  std::string recipient;  // envelope recipient
  std::string content;    // RFC 5322
  std::string kind;       // "code" or "reply", for the log
  int64_t entry_id = 0;
  int64_t outbox_id = 0;  // for outbox_done
  std::string queue_id;   // the original message's, for the log
};

// The notification for one deposit (exposed for tests): From is portal.from
// with the sender's name, Reply-To the original sender, the subject and text
// from the templates with every placeholder made safe for where it goes;
// with a logo, also an HTML version that shows it (inline, never remote).
// Nothing of the original message but the sender's name and address.
struct notice_input {
  std::string sender_name, sender_address, recipient, link, hostname;
  int64_t expires = 0, now = 0;
  std::string_view logo;  // PNG bytes (portal.logo): an HTML alternative shows it; empty: text only
};
std::string compose_notification(const portal::portal_config& config, const notice_input& in);
std::string compose_code_mail(const portal::portal_config& config, const std::string& recipient,
                              const std::string& code, const std::string& hostname, int64_t now);
// A template with {name} replaced from values (one line each for headers:
// control characters removed); {{ and }} are braces.
std::string render_template(std::string_view text, const std::vector<std::pair<std::string, std::string>>& values);

class portal_service {
 public:
  // Opens the store (created when missing) and the outbox key (created 0600
  // when missing), and publishes the key's public half in the store for the
  // portal process. Throws std::runtime_error naming what failed.
  portal_service(portal::portal_config config, std::string hostname, boost::asio::thread_pool& pool);

  boost::asio::awaitable<std::optional<portal_deposit_result>> deposit(portal_deposit_request request,
                                                                        std::string* why);
  // Configured and the store writable (checked at most every 30 s; a failed
  // deposit marks it unavailable until the next check succeeds).
  bool available();
  // The store's events after event id `after`, by kind (for the metrics;
  // both processes record there). Empty, with last_id = after, on an error.
  portal::store::event_tally count_events(int64_t after);
  // The store's events after id after, oldest first, at most limit (for the
  // audit chain). Throws portal::store_error.
  std::vector<portal::event> events_after(int64_t after, size_t limit);
  // Records the notification's queue id and the "notified" event.
  void notified(int64_t entry_id, const std::string& queue_id, const std::string& recipient,
                const std::string& notice_queue_id);

  // Up to `limit` outbox items, opened and composed; items that do not open
  // (not sealed to this gateway) are logged and dropped.
  boost::asio::awaitable<std::vector<portal_mail>> take_outbox(size_t limit);
  void outbox_done(int64_t item_id);
  // Marks entries past their expiry; returns how many.
  boost::asio::awaitable<size_t> expire();

  const portal::portal_config& config() const { return config_; }

 private:
  std::optional<portal_deposit_result> deposit_now(const portal_deposit_request& r, std::string* why);
  // Group commit: deposits that arrive while another group is being written
  // wait and go together in the next transaction, so a burst costs one disk
  // flush per group, not one per deposit. Throws what the store threw.
  int64_t add_in_group(const portal::deposit& d);
  struct waiting_deposit;
  portal::portal_config config_;
  std::string hostname_;
  boost::asio::thread_pool& pool_;
  std::unique_ptr<portal::store> store_;
  std::string outbox_private_;
  std::string master_key_;
  std::string logo_;
  std::mutex mutex_;  // the store handle is used by one thread at a time
  std::mutex group_mutex_;
  std::condition_variable group_done_;
  std::vector<waiting_deposit*> group_;  // deposits waiting for the next transaction
  bool group_writing_ = false;
  std::atomic<bool> writable_{true};
  std::atomic<int64_t> checked_{0};
};

}  // namespace sealgate::gateway
