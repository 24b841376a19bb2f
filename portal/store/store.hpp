// The portal store: deposited messages (ciphertext and metadata), their
// events, the browser sessions that passed a code, and the outbox through
// which the portal process asks the gateway to send mail. One interface, so
// that a PostgreSQL backend can stand beside the SQLite one (open_store).
//
// It holds nothing that opens a message: bodies are sealed under a key only
// the link carries (vault.hpp), codes and session tokens are kept as keyed
// hashes, and outbox items are sealed boxes only the gateway opens.
//
// Every call is one transaction and safe against another process using the
// same store at the same time (the gateway deposits while the portal reads).
// Calls block (disk): the gateway calls them from its worker pool, the portal
// process from its own. Failures throw store_error.
#pragma once
#include "common/sql.hpp"
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "portal/store/vault.hpp"

namespace sealgate::portal {

class store_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class entry_state { active, retracted, expired };
std::string_view to_string(entry_state s);

// What is known of a deposit without its link: metadata only.
struct entry {
  int64_t id = 0;
  std::string lookup;  // lookup_key(token), hex
  std::string queue_id, recipient, sender;
  std::string notice_queue_id;  // the notification's own queue id, once spooled
  int64_t created = 0, expires = 0;
  uint64_t size = 0;  // the message's bytes (plaintext), for the list
  entry_state state = entry_state::active;
  int64_t state_changed = 0;  // when it was retracted or expired
  // The outstanding one-time code, if any (the last one asked for).
  std::string code_hash;     // code_hash(session token, code); empty: none
  std::string code_session;  // session_key(session token) of the browser that asked
  int64_t code_expires = 0;
  int failed_codes = 0;      // wrong codes since the last lock or success
  int64_t locked_until = 0;
  int codes_sent = 0;        // codes sent since codes_window began
  int64_t codes_window = 0;
};

struct deposit {
  std::string lookup, queue_id, recipient, sender;
  int64_t created = 0, expires = 0;
  uint64_t size = 0;
  sealed_message sealed;
};

// A portal event, recorded against the message and recipient.
struct event {
  int64_t entry_id = 0;
  std::string queue_id, recipient;
  int64_t at = 0;
  std::string kind;    // deposited notified code-sent code-failed locked opened downloaded replied expired retracted reissued
  std::string detail;  // never content: a queue id, an attachment's index and size, a client address
  int64_t id = 0;      // in the order recorded (set when read back)
};

// Rules of the one-time code (portal.code in the config).
struct code_rules {
  int64_t lifetime = 600;        // a code is valid for 10 minutes
  int max_failures = 5;          // wrong codes before the entry locks
  int64_t lockout = 900;         // for 15 minutes
  int max_per_window = 5;        // codes sent per entry per window
  int64_t window = 3600;
};

enum class code_request_result { issued, rate_limited, locked, not_active };
enum class code_check_result { accepted, wrong, locked, expired, none, not_active };

// Something for the gateway to send: a code (the box holds the code) or a
// reply (the box holds the whole RFC 5322 message), sealed to the gateway.
struct outbox_item {
  int64_t id = 0;
  int64_t entry_id = 0;
  std::string kind;  // "code", "reply", or "notice" (a reissued link's notification)
  int64_t created = 0;
  std::string box;
};

// What became of the deposits made in a window (`sealgate report --by
// method`): those created at or after a time, and, of those, how many were
// opened (at least one right code), and their downloads and replies. A
// cohort, as the report's recipients are of messages received in the
// window: an open today of last month's deposit counts with last month.
struct deposit_counts {
  int64_t deposits = 0;
  int64_t opened = 0;     // deposits with an "opened" event
  int64_t downloads = 0;  // "downloaded" events (one per attachment fetched)
  int64_t replies = 0;    // "replied" events
};

struct list_filter {
  std::string recipient;  // empty: any
  std::string queue_id;   // empty: any
  bool active_only = false;
  size_t limit = 1000;
};

class store {
 public:
  virtual ~store() = default;

  // --- the gateway (deposit, notification, schedule) ---
  // Stores the deposit and its "deposited" event; returns the entry id.
  virtual int64_t add(const deposit& d) = 0;
  // The same for several deposits in one transaction (one disk flush for the
  // group: the gateway's group commit); all or none. Ids in order.
  virtual std::vector<int64_t> add_group(const std::vector<const deposit*>& group) = 0;
  virtual void set_notice(int64_t entry_id, const std::string& notice_queue_id) = 0;
  // Marks active entries past their expiry (expires <= now) as expired,
  // deletes their ciphertext, records "expired"; returns how many. Also
  // deletes expired sessions, and empties the SQLite WAL of deleted
  // ciphertext whichever call deleted it (the gateway runs this on a schedule).
  virtual size_t expire(int64_t now) = 0;
  // True when a write would succeed now (portal availability for the policy):
  // the write lock can be taken within the busy timeout. Never throws.
  virtual bool writable() = 0;

  // --- operators (sealgate portal list|retract, report) ---
  // Newest first, so that a limit keeps the latest deposits. Recipient and
  // queue id match exactly.
  virtual std::vector<entry> list(const list_filter& f) = 0;
  // Deletes the ciphertext of the message's active entries (one recipient's
  // when recipient is not empty) at once (from the SQLite WAL too) and
  // records "retracted" with who; returns how many. An outstanding code is
  // forgotten with it.
  virtual size_t retract(const std::string& queue_id, const std::string& recipient, int64_t now,
                         const std::string& who) = 0;
  // In the order they happened (at, then the order recorded).
  virtual std::vector<event> events(const std::string& queue_id) = 0;
  // Events recorded after the event with id after (0: all), counted by
  // kind, and the newest id: the gateway's metrics read what happened since
  // it started (a range of the events' ids, not a scan of the table).
  struct event_tally {
    std::vector<std::pair<std::string, int64_t>> by_kind;
    int64_t last_id = 0;
  };
  virtual event_tally count_events(int64_t after) = 0;
  // Events recorded after the event with id after, oldest first, at most
  // limit: the gateway copies them into its audit chain.
  virtual std::vector<event> events_after(int64_t after, size_t limit) = 0;
  // Master-key mode: a new link for a lost one. One transaction: the active
  // entry gets new_lookup and the message sealed for the new token (the old
  // link stops working), its code state is cleared, "reissued" is recorded
  // with who, and notice_box (the new notification, sealed to the gateway)
  // goes into the outbox as a "notice". False when the entry is not active.
  virtual bool reissue(int64_t entry_id, const std::string& new_lookup, const sealed_message& sealed,
                       const std::string& notice_box, int64_t now, const std::string& who) = 0;
  // Refuses a kind not listed in event::kind; entry_id 0 for none.
  virtual void record(const event& e) = 0;
  // Deposits created at or after since (unix seconds; 0: all), and what
  // became of them (deposit_counts).
  virtual deposit_counts counts(int64_t since) = 0;

  // --- the portal process ---
  // Any state; nullopt for an unknown lookup key.
  virtual std::optional<entry> find(const std::string& lookup) = 0;
  // By id, any state (the gateway reading an outbox item's entry).
  virtual std::optional<entry> get(int64_t entry_id) = 0;
  // The sealed message of an active entry; nullopt once retracted or expired.
  virtual std::optional<sealed_message> sealed(int64_t entry_id) = 0;
  // One transaction: refuses when not active, locked or over the rate;
  // otherwise stores the code's hash for this session (replacing an earlier
  // code), counts it, records "code-sent" and puts the outbox item.
  // Not active: unknown, retracted, expired, or past its expiry before
  // expire() swept it. A window begins with the first code sent in it and
  // lasts rules.window. A new code keeps the failures counted so far (asking
  // again buys no guesses). A refusal records nothing and sends nothing.
  virtual code_request_result request_code(int64_t entry_id, const std::string& session_key,
                                           const std::string& code_hash, const std::string& outbox_box, int64_t now,
                                           const code_rules& rules) = 0;
  // One transaction: compares candidate_hash with the stored code in constant
  // time (only for the session that asked); a match clears the code (single
  // use) and the failures and records "opened"; a miss counts, records
  // "code-failed", and locks the entry at max_failures ("locked").
  // Checked in this order: not_active (as request_code); locked
  // (locked_until > now); none (no code, or the code was asked for by
  // another session: not counted, since it could never match and counting
  // would let anyone holding the link lock the recipient out); expired
  // (now >= code_expires: not counted); then the comparison. The miss that
  // reaches max_failures returns locked, and the lock forgets the code and
  // the count: after the lockout a new code must be asked for.
  virtual code_check_result check_code(int64_t entry_id, const std::string& session_key,
                                       const std::string& candidate_hash, int64_t now, const code_rules& rules,
                                       const std::string& client) = 0;
  // Browser sessions that passed the code, by session_key(token). One entry
  // per session: adding it again (another link's code) replaces the first.
  virtual void add_session(const std::string& session_key, int64_t entry_id, int64_t expires) = 0;
  // The entry the session may read; nullopt when unknown or expired
  // (expires <= now). A read: expire() deletes expired sessions.
  virtual std::optional<int64_t> session_entry(const std::string& session_key, int64_t now) = 0;
  virtual void put_outbox(int64_t entry_id, const std::string& kind, const std::string& box, int64_t now) = 0;

  // --- the outbox, read by the gateway ---
  virtual std::vector<outbox_item> outbox(size_t limit) = 0;
  virtual void remove_outbox(int64_t id) = 0;
  // The gateway publishes its box public key here for the portal to seal to.
  virtual void set_setting(const std::string& name, const std::string& value) = 0;
  virtual std::optional<std::string> setting(const std::string& name) = 0;
};

// What the store keeps of a session token: hex of SHA-256 (a 256-bit random
// token needs no key stretching).
std::string session_key(std::string_view session_token);

enum class store_access { read_write, read_only };

// The SQLite store (the default): one file, created 0600 with its tables;
// WAL, secure_delete, busy timeout, so the gateway and the portal process
// share it. An existing file keeps its mode (a group may share it) unless
// others may read or write it, or its -wal or -shm: then it is refused.
//
// read_only (`sealgate report`): never creates, changes or upgrades the
// file. A missing file, or one whose schema is not this sealgate's (an older
// one is upgraded by starting the gateway), is refused with store_error;
// every call that writes throws store_error, and writable() is false.
std::unique_ptr<store> open_sqlite_store(const std::filesystem::path& file,
                                         store_access access = store_access::read_write);

// The store where `portal.store` says: that SQLite file (as above), or the
// schema "portal" of a PostgreSQL database, created there with its tables
// (and migrated under a lock, so several nodes starting at once run each
// migration once). Nodes and portal processes on any machine share it.
std::unique_ptr<store> open_store(const sql::location& where, store_access access = store_access::read_write);

}  // namespace sealgate::portal
