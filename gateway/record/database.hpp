// The record (SQLite, the embedded default store): one row per accepted
// message, per recipient and per delivery attempt, and beside them the audit
// log, a hash chain with one entry per event, appended in the same
// transaction as the rows it describes (audit_log.hpp). Written off the
// reply path: the spool, not this file, is what a 250 promises.
// Never stores message content. The tables are described in schema.hpp; the
// queries that reports run are in report.hpp.
#pragma once
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "gateway/mail/envelope.hpp"
#include "gateway/record/audit_log.hpp"
#include "gateway/record/record_journal.hpp"
#include "gateway/record/record_rows.hpp"
#include "common/sql.hpp"

namespace sealgate::gateway {

class database {
 public:
  // Opens or creates the file (0600), or connects to PostgreSQL, and brings
  // the schema to the newest version (upgrade_schema). Throws
  // std::runtime_error.
  //
  // journal_dir (the gateway: spool/records/): where the writer keeps the
  // batches the database does not take (unreachable, a lock held past its
  // timeout, a full disk), each then reported committed, and from where it
  // writes them, oldest first, when the database takes records again
  // (record_journal.hpp). Without one, a failed batch is reported not
  // written and its callers keep their files.
  explicit database(const sql::location& where, const std::filesystem::path& journal_dir = {});
  ~database();
  database(const database&) = delete;
  database& operator=(const database&) = delete;

  // Writes the rows of accepted messages at once, in one transaction.
  void record_accepted(const std::vector<spooled_envelope>& messages);
  // Queues them for the writer thread (like submit()): the spool's committer
  // hands each group over without waiting for SQLite.
  void submit_accepted(std::vector<spooled_envelope> messages);

  int64_t accepted_count();

  // Queues rows for the writer thread, which commits whatever has gathered
  // in one transaction (so that recording never slows delivery down), then
  // calls on_committed(written) on that thread; written is false when the
  // transaction failed (logged). on_committed may be empty.
  void submit(std::vector<attempt_row> rows, std::function<void(bool)> on_committed);
  // Writes rows at once, in one transaction (the writer thread and tests).
  void record_attempts(const std::vector<attempt_row>& rows);
  // Sets the Message-ID of a message (read from its header by the delivery
  // side) unless it has one. Queued for the writer thread like submit(), so
  // it costs the caller no statement and no transaction of its own.
  void set_message_id(const std::string& queue_id, const std::string& message_id);
  // Counts a TLS session, queued for the writer thread like submit().
  void submit_tls_session(tls_session_row row);
  // The TLS reports of a day already dealt with, as (policy domain,
  // destination): sent, or (destination "") the domain asks for none; and
  // one more, written at once. A failed destination is not dealt with: the
  // next run tries it again.
  std::vector<std::pair<std::string, std::string>> tls_reports_done(const std::string& day);
  void record_tls_report(const std::string& day, const std::string& policy_domain, const std::string& destination,
                         const std::string& result, int64_t at);
  // Waits until every submitted row is committed.
  void flush();

  // --- the audit log (each call one transaction of its own, written at once) ---
  // Appends events that have no rows of their own (operator actions), and
  // optionally moves a cursor (audit_cursors) in the same transaction.
  void record_events(const std::vector<audit::event>& events, const std::string& cursor_name = {},
                     int64_t cursor_value = 0);
  // A cursor's value, 0 when it was never set.
  int64_t cursor(const std::string& name);
  // A policy the gateway loaded: its bytes under their hash (once), and a
  // "policy-loaded" event naming the trigger (start, SIGHUP, file change,
  // control socket) and who caused it.
  void record_policy(const std::string& sha256, const std::string& file, const std::string& text, int64_t at,
                     const std::string& trigger, const std::string& actor);
  // Signs the chain's head unless the newest checkpoint already covers it;
  // returns the new checkpoint. Throws std::runtime_error.
  std::optional<audit::checkpoint> make_checkpoint(const audit::ed25519_key& key, int64_t now);
  // Retention: removes the records of messages received before cutoff whose
  // recipients are all final, and the chain's entries before the first one
  // at or after cutoff, leaving a signed checkpoint at the last entry
  // removed and a "purged" entry (actor says who) from which the rest
  // verifies. Refused (std::runtime_error) unless the whole chain verifies
  // first: a purge never signs over entries someone changed. Returns the
  // entries removed.
  struct purge_result {
    int64_t messages = 0, entries = 0;
    int64_t up_to = 0;  // the last entry removed
  };
  purge_result purge(int64_t cutoff, const audit::ed25519_key& key, int64_t now, const std::string& actor);

  // After a crash the rows of the last group may be missing (they are written
  // after the 250): of the given queue ids, those without a message row, for
  // the caller to re-create from the spool (record_accepted).
  std::vector<std::string> unrecorded(const std::vector<std::string>& ids);

 private:
  void run_writer();
  // One transaction: the batch's id (record_batches), accepted messages,
  // message ids, then rows (in that order: a row updates the recipient its
  // message's acceptance created). False when the batch's id was recorded
  // before (nothing is written again). Throws std::runtime_error.
  bool write(const record_batch& b);
  // The writer thread's: b durable in the database or in the journal.
  bool commit_or_journal(const record_batch& b);
  bool keep_in_journal(const record_batch& b);
  // Writes the journal's batches; true when it is empty afterwards.
  bool replay_journal();
  void write_accepted(const spooled_envelope& m);
  // The chain's newest entry, read inside each transaction (another process,
  // `sealgate queue delete`, may have appended since), then advanced by append.
  struct chain_head {
    int64_t seq = 0;
    std::string hash;
  };
  chain_head read_head();
  void append(chain_head& head, const audit::event& e);
  std::optional<chain_head> head_;  // the head inside the current transaction
  void write_recipient(const std::string& queue_id, size_t index, const std::string& address, int64_t at);
  void write_row(const attempt_row& r);
  sql::location where_;
  std::string place_;  // the file or the connection string (without its password), for errors
  sql::connection_ptr db_;
  // Prepared once. Declared after db_, so destroyed before it is closed.
  sql::statement insert_message_, insert_recipient_, insert_attempt_, upsert_recipient_, update_message_id_,
      count_tls_session_, select_head_, insert_event_, claim_batch_;
  std::mutex mutex_;  // the connection and its statements

  // The writer thread's queue. Transactions start at least this far apart.
  static constexpr std::chrono::milliseconds transaction_gap{10};
  struct batch {
    std::vector<attempt_row> rows;
    std::function<void(bool)> on_committed;
    std::pair<std::string, std::string> message_id;  // (queue id, Message-ID) when set
    std::vector<spooled_envelope> accepted;
    std::vector<tls_session_row> tls_sessions;
  };
  void enqueue(batch b);
  std::mutex queue_mutex_;
  std::condition_variable queue_wake_, queue_idle_;
  std::vector<batch> queue_;
  bool writing_ = false, stopping_ = false;
  bool writer_idle_ = false;  // the writer waits for work (not for its transaction gap)
  std::thread writer_;

  // The journal of batches the database did not take (writer thread; the
  // flags under queue_mutex_).
  std::unique_ptr<record_journal> journal_;
  bool journal_waiting_ = false;
  std::chrono::steady_clock::time_point next_replay_{};
  std::chrono::milliseconds replay_backoff_{500};
};

}  // namespace sealgate::gateway
