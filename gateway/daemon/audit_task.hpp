// The audit log's scheduled work in the running gateway:
// - copies the portal store's events into the chain every few seconds (the
//   portal process records them in its own store);
// - signs the chain's head every audit.checkpoint_interval (default hourly)
//   and at a clean stop, and hands each checkpoint to the witnesses (a file,
//   syslog, a mail to a compliance mailbox);
// - purges what is older than records.retention once a day, leaving a
//   signed anchor from which the rest of the chain verifies.
// The database work runs on the pool given, never on the event loop.
#pragma once
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "gateway/config/config.hpp"
#include "gateway/record/audit_log.hpp"

namespace sealgate::gateway {

class database;
class portal_service;
class queue_manager;

class audit_task {
 public:
  // All must outlive the task; portal may be null. Loads (or creates) the
  // signing key: throws std::runtime_error when it cannot.
  audit_task(boost::asio::any_io_executor executor, boost::asio::thread_pool& pool, const config& cfg, database& db,
             portal_service* portal, queue_manager& queue);
  ~audit_task();
  void start();
  void stop();
  // Copies pending portal events and signs the head now, on the calling
  // thread: the last step of a clean stop, once the queue is stopped, so
  // the witnesses get it but the mailbox does not (the next hourly one
  // covers it). Returns the checkpoint made, none when the head was signed
  // already.
  std::optional<audit::checkpoint> checkpoint_now();

  static constexpr std::chrono::seconds import_interval{5};
  static constexpr std::chrono::hours purge_interval{24};

  struct state;

 private:
  std::shared_ptr<state> state_;
};

// Copies the portal store's new events into the chain: one transaction per
// batch, which moves the cursor with them. Returns how many.
size_t import_portal_events(database& db, portal_service& portal);

// The witness copies of a checkpoint (audit.witness): the file line, the
// syslog line; the mail is the caller's (it needs the queue).
void witness_checkpoint(const audit_config& cfg, const audit::checkpoint& c);

// The mail that carries a checkpoint to audit.witness.mail.
std::string checkpoint_mail(const audit::checkpoint& c, const std::string& from, const std::string& to,
                            const std::string& hostname, int64_t now);

}  // namespace sealgate::gateway
