// The outbound queue: takes committed messages from the spool, asks the
// policy how each recipient must leave, hands the work to the transport, and
// records what happened (status file, database, DSN to the sender). Every
// recipient ends delivered, bounced, expired or deleted, exactly once; a
// message leaves the spool only when all its recipients are final and their
// records are written. Never sends a recipient by a weaker method than the
// policy chose: a transport that cannot meet the requirement reports a
// method failure, and the policy's on_failure decides what comes next.
#pragma once
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>
#include <array>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gateway/config/config.hpp"
#include "gateway/outbound/transfer.hpp"
#include "gateway/methods/method.hpp"
#include "gateway/record/database.hpp"
#include "gateway/spool/queue_state.hpp"
#include "gateway/spool/spool.hpp"
#include "policy/decide.hpp"

namespace sealgate::gateway {

// What the queue learns about a recipient domain before deciding: the facts
// the policy weighs, or that the domain takes no mail at all (null MX, RFC
// 7505; no such domain), which no method can change.
struct destination_facts {
  policy::domain_facts policy;
  bool takes_mail = true;
  outcome refusal;  // when !takes_mail: 5.1.10 (null MX), 5.1.2 (no such domain)
};

// The world as the queue sees it. Production wires the domain probe, key
// discovery, crypto and the SMTP client; unit tests wire scripted answers.
// Each must report a failed lookup as tempfail, never as absent.
struct delivery_services {
  std::function<boost::asio::awaitable<destination_facts>(std::string domain)> domain_facts;
  std::function<boost::asio::awaitable<policy::key_facts>(std::string address)> key_facts;
  // One result per recipient of the transfer, in order.
  std::function<boost::asio::awaitable<std::vector<recipient_result>>(outbound_transfer)> send;
  // For the pgp and smime methods. Unset: no crypto available (they fail).
  encrypt_function encrypt;
  // The portal method's deposit (methods/portal_service.hpp). Unset: no portal.
  deposit_function deposit;
  // Whether the portal can take a deposit now (configured, store writable);
  // unset: it cannot.
  std::function<bool()> portal_available;
  // Called once a deposit's notification is spooled, with the entry, the
  // message's queue id, the recipient and the notification's queue id.
  std::function<void(int64_t, std::string, std::string, std::string)> portal_notified;
  std::string portal_sender;  // envelope sender of notifications (portal.from)
  // The last change before the transport (methods/outgoing.hpp): the loop
  // stamp, broken signatures out, DKIM signatures in; given the message as
  // it arrived and what will leave. Run off the event loop. Unset: sent as is.
  std::function<boost::asio::awaitable<std::shared_ptr<const message_content>>(
      std::string queue_id, std::shared_ptr<const message_content> original,
      std::shared_ptr<const message_content> outgoing)>
      finish;
  // Where a message of 64 KiB or more is parsed and classified, once per
  // pass: never the event loop that accepts connections (a 25 MiB body
  // scanned there would leave new clients without a banner). A smaller one,
  // and every message when this is unset (tests), on the queue's own strand.
  boost::asio::any_io_executor content_executor;
};

struct delivery_settings {
  std::string hostname;
  std::filesystem::path spool_dir;
  queue_config queue;
};

// The policy used when the configuration names no policy_file: every
// recipient by TLS 1.2 or better, deferred when that is not possible, never
// in clear.
std::shared_ptr<const policy::policy> builtin_policy();

class queue_manager {
 public:
  queue_manager(boost::asio::any_io_executor executor, delivery_settings settings, spool& spooler, database* db,
                std::function<std::shared_ptr<const policy::policy>()> current_policy, delivery_services services);
  ~queue_manager();
  queue_manager(const queue_manager&) = delete;
  queue_manager& operator=(const queue_manager&) = delete;

  // Schedules the messages that recovery found and starts the scheduler.
  void start(const std::vector<std::string>& ids);
  // A message just committed to the spool. Thread-safe.
  void enqueue(const std::string& id);
  // Try again now: one message, or every waiting one (held recipients too when
  // named by id). Thread-safe.
  void flush(const std::string& id = {});
  // Spools a message the gateway makes itself (a portal code or reply) and
  // schedules it; listener names its origin for the log and the policy.
  // Calls done(queue id) once it is durable, done("") after an error.
  // Thread-safe.
  void submit(std::string sender, std::string recipient, std::string content, std::string listener,
              std::function<void(std::string)> done);
  // Stops scheduling; deliveries in progress end with the io_context.
  void stop();

  struct counters {
    uint64_t delivered = 0, deferred = 0, bounced = 0, expired = 0, dsns = 0, attempts = 0;
  };
  counters stats() const;
  // Messages scheduled or in progress (for tests and metrics).
  size_t active() const;

  // The queue by state, as `sealgate queue list` would show it: queued (not
  // tried yet), active (a pass is running), deferred (tried, waiting for its
  // retry), held (every open recipient held by policy until a flush). For
  // the metrics' gauges; thread-safe, one walk over the messages.
  enum class message_state { queued, active, deferred, held };
  static constexpr int message_state_count = 4;
  struct census_row {
    size_t messages = 0;
    int64_t oldest_received = 0;  // unix time; 0 when there are none
  };
  std::array<census_row, message_state_count> census() const;

  struct state;

 private:
  std::shared_ptr<state> state_;
};

}  // namespace sealgate::gateway
