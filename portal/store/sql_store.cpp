// The portal store (store.hpp) on either engine: a SQLite file, or the
// schema "portal" of a PostgreSQL database, that the gateway and the portal
// processes (on one node or several) open at once. Every call is one transaction on this
// process's one connection (writers take the write lock at BEGIN), so two
// processes never see half of a call. Never puts ciphertext, a code, a hash
// of one or a token in an error message or a log line.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <string_view>

#include "common/log.hpp"
#include "common/sql.hpp"
#include "common/sql_schema.hpp"
#include "common/unique_fd.hpp"
#include "portal/store/store.hpp"
#include "portal/store/store_schema.hpp"

namespace sealgate::portal {

namespace {

namespace fs = std::filesystem;
using sql::statement;
using sql::transaction;

static_assert(sql::description_is_consistent(schema::description),
              "portal/store/store_schema.hpp: the schema description contradicts itself");

// Writers take the write lock at BEGIN: a check_code that read the code
// cannot be overtaken by another process's check of the same code before it
// clears it (single use), nor a request_code's count by another's.
constexpr auto writer = transaction::mode::immediate;

// The kinds store.hpp lists for an event: anything else is a typo in a caller.
constexpr std::string_view event_kinds[] = {"deposited", "notified", "code-sent", "code-failed",
                                            "locked",    "opened",   "downloaded", "replied",
                                            "expired",   "retracted", "reissued"};

bool known_event_kind(std::string_view kind) {
  for (auto k : event_kinds)
    if (k == kind) return true;
  return false;
}

entry_state state_from(std::string_view name) {
  for (auto s : {entry_state::active, entry_state::retracted, entry_state::expired})
    if (to_string(s) == name) return s;
  throw std::runtime_error("unknown entry state '" + std::string(name) + "' in the database");
}

entry entry_from(const statement& row) {
  entry e;
  e.id = row.integer("id");
  e.lookup = row.text("lookup");
  e.queue_id = row.text("queue_id");
  e.recipient = row.text("recipient");
  e.sender = row.text("sender");
  e.notice_queue_id = row.text("notice_queue_id");
  e.created = row.integer("created");
  e.expires = row.integer("expires");
  e.size = static_cast<uint64_t>(row.integer("size"));
  e.state = state_from(row.text("state"));
  e.state_changed = row.optional_integer("state_changed").value_or(0);
  e.code_hash = row.text("code_hash");
  e.code_session = row.text("code_session");
  e.code_expires = row.optional_integer("code_expires").value_or(0);
  e.failed_codes = static_cast<int>(row.integer("failed_codes"));
  e.locked_until = row.integer("locked_until");
  e.codes_sent = static_cast<int>(row.integer("codes_sent"));
  e.codes_window = row.integer("codes_window");
  return e;
}

// An entry a code may be asked for or checked against: active, and not past
// its expiry even if expire() has not swept it yet.
bool open_for_codes(const entry& e, int64_t now) { return e.state == entry_state::active && now < e.expires; }

int64_t as_limit(size_t limit) {
  return static_cast<int64_t>(std::min<size_t>(limit, std::numeric_limits<int64_t>::max()));
}

// Permission bits that let users other than the owner (and its group) at the
// portal's metadata, or write into it.
constexpr mode_t others_bits = S_IRWXO;

std::string octal_mode(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

// The store file is created 0600 here, before SQLite opens it: SQLite would
// create it with 0644 minus the umask. An existing file keeps the mode the
// operator gave it (the portal process may run as another user in a shared
// group) unless others may use it, which is refused. SQLite creates the -wal
// and -shm files with the main file's mode (fchmod, whatever the umask:
// unixOpen's findCreateFileMode), so they follow; one left behind by an
// The PostgreSQL schema the store's tables live in (SQLite: its own file).
constexpr std::string_view schema_name = "portal";

// earlier run is checked like the main file.
void prepare_file(const fs::path& file) {
  if (file.has_parent_path()) fs::create_directories(file.parent_path());
  unique_fd created(::open(file.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (created) {
    // 0600 exactly: a default ACL on the directory could have widened what open() gave.
    if (::fchmod(created.get(), 0600) != 0)
      throw std::runtime_error(std::string("cannot set mode 0600: ") + std::strerror(errno));
    return;
  }
  if (errno != EEXIST) throw std::runtime_error(std::string("cannot create: ") + std::strerror(errno));
}

void refuse_if_others_may_use(const fs::path& file) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) {
    if (errno == ENOENT) return;  // a -wal or -shm that does not exist (yet)
    throw std::runtime_error(file.string() + ": " + std::strerror(errno));
  }
  if (st.st_mode & others_bits)
    throw std::runtime_error(file.string() + " has mode " + octal_mode(st.st_mode) +
                             ", which lets other users at the portal store: chmod o-rwx it");
}

class sql_store final : public store {
 public:
  sql_store(const sql::location& where, store_access access);

  int64_t add(const deposit& d) override;
  std::vector<int64_t> add_group(const std::vector<const deposit*>& group) override;
  void set_notice(int64_t entry_id, const std::string& notice_queue_id) override;
  size_t expire(int64_t now) override;
  bool writable() override;

  std::vector<entry> list(const list_filter& f) override;
  size_t retract(const std::string& queue_id, const std::string& recipient, int64_t now,
                 const std::string& who) override;
  std::vector<event> events(const std::string& queue_id) override;
  event_tally count_events(int64_t after) override;
  std::vector<event> events_after(int64_t after, size_t limit) override;
  bool reissue(int64_t entry_id, const std::string& new_lookup, const sealed_message& sealed,
               const std::string& notice_box, int64_t now, const std::string& who) override;
  void record(const event& e) override;
  deposit_counts counts(int64_t since) override;

  std::optional<entry> find(const std::string& lookup) override;
  std::optional<entry> get(int64_t entry_id) override;
  std::optional<sealed_message> sealed(int64_t entry_id) override;
  code_request_result request_code(int64_t entry_id, const std::string& session_key, const std::string& code_hash,
                                   const std::string& outbox_box, int64_t now, const code_rules& rules) override;
  code_check_result check_code(int64_t entry_id, const std::string& session_key, const std::string& candidate_hash,
                               int64_t now, const code_rules& rules, const std::string& client) override;
  void add_session(const std::string& session_key, int64_t entry_id, int64_t expires) override;
  std::optional<int64_t> session_entry(const std::string& session_key, int64_t now) override;
  void put_outbox(int64_t entry_id, const std::string& kind, const std::string& box, int64_t now) override;

  std::vector<outbox_item> outbox(size_t limit) override;
  void remove_outbox(int64_t id) override;
  void set_setting(const std::string& name, const std::string& value) override;
  std::optional<std::string> setting(const std::string& name) override;

 private:
  // Runs one call under the connection's mutex (one process's threads share
  // the connection, and a transaction is the connection's), turning the
  // wrapper's errors into store_error naming the file and the call.
  template <class Call>
  auto guarded(std::string_view call, Call&& run) -> decltype(run());

  // Inside a transaction.
  std::optional<entry> entry_by_id(int64_t id);
  void insert_event(int64_t entry_id, const std::string& queue_id, const std::string& recipient, int64_t at,
                    std::string_view kind, std::string_view detail);
  // Ends an active entry: the state, its code forgotten, its ciphertext
  // deleted, the event. Returns how many entries (the rows select gave).
  size_t end_entries(statement& select, entry_state to, int64_t now, std::string_view kind, std::string_view detail);
  void insert_outbox(int64_t entry_id, std::string_view kind, std::string_view box, int64_t now);
  int64_t insert_deposit(const deposit& d);  // inside the caller's transaction

  // After a commit that deleted ciphertext, outside any transaction, with mutex_ held.
  void truncate_wal() noexcept;

  std::string place_;  // the file, or the connection string without its password
  bool sqlite_ = true;
  bool read_only_ = false;
  sql::connection_ptr db_;
  std::mutex mutex_;
};

// A reader (`sealgate report`) may run as a user that cannot write the file
// while the gateway has it open: it never creates or upgrades it, so it reads
// only the schema it was built for. query_only makes any write a caller
// attempts fail here, whatever the file's permissions would allow.
sql::connection_ptr open_for_reading(const fs::path& file) {
  if (!fs::exists(file)) throw std::runtime_error(file.string() + ": no such file");
  auto db = sql::open(sql::location::sqlite_file(file), sql::access::read_only, schema_name);
  sql::exec(db.get(), "PRAGMA query_only=ON");
  sql::require_newest_schema(db.get(), schema::description, file.string());
  return db;
}

sql_store::sql_store(const sql::location& where, store_access access)
    : place_(where.describe()), sqlite_(!where.is_postgresql()), read_only_(access == store_access::read_only) {
  if (!sqlite_) {
    // PostgreSQL: the schema "portal" beside the record's, its own role if
    // the operator gives it one. Ciphertext deleted there stays in dead rows
    // until VACUUM, and in the WAL, replicas and backups: unreadable without
    // the link (it is sealed under a key only the link gives), but not gone
    // (docs/portal.md).
    db_ = sql::open(where, read_only_ ? sql::access::read_only : sql::access::read_write, schema_name);
    if (read_only_)
      sql::require_newest_schema(db_.get(), schema::description, place_);
    else
      sql::upgrade_schema(db_.get(), schema::description, place_);
    return;
  }
  const fs::path& file = where.file;
  if (read_only_) {
    db_ = open_for_reading(file);
    return;
  }
  prepare_file(file);
  for (const char* suffix : {"", "-wal", "-shm"}) refuse_if_others_may_use(file.string() + suffix);
  db_ = sql::open(where, sql::access::read_write, schema_name);
  sql::connection* db = db_.get();
  // Per connection, so every process sets them: references hold (an event or
  // session for no entry is refused), and deleted rows are overwritten with
  // zeros rather than left in free pages where a copy of the file keeps them.
  sql::exec(db, "PRAGMA foreign_keys=ON");
  sql::exec(db, "PRAGMA secure_delete=ON");
  // WAL: the portal reads while the gateway writes. FULL: a deposit the
  // gateway has reported (its notification names the link) survives a power loss.
  {
    statement wal(db, "PRAGMA journal_mode=WAL");
    std::string mode = wal.next_row() ? wal.text("journal_mode") : "";
    if (mode != "wal") throw std::runtime_error("cannot use WAL (journal mode is '" + mode + "')");
  }
  sql::exec(db, "PRAGMA synchronous=FULL");
  sql::upgrade_schema(db, schema::description, file.string());
}

template <class Call>
auto sql_store::guarded(std::string_view call, Call&& run) -> decltype(run()) {
  std::lock_guard lock(mutex_);
  try {
    return run();
  } catch (const std::runtime_error& e) {
    throw store_error("portal store " + place_ + ": " + std::string(call) + ": " + e.what());
  } catch (const std::logic_error& e) {
    throw store_error("portal store " + place_ + ": " + std::string(call) + ": " + e.what());
  }
}

std::optional<entry> sql_store::entry_by_id(int64_t id) {
  statement select(db_.get(), sql::select_statement(schema::entries, "WHERE id = :id"));
  select.bind("id", id);
  if (!select.next_row()) return std::nullopt;
  entry e = entry_from(select);
  return e;
}

void sql_store::insert_event(int64_t entry_id, const std::string& queue_id, const std::string& recipient,
                                int64_t at, std::string_view kind, std::string_view detail) {
  statement insert(db_.get(), sql::insert_statement(schema::events, sql::on_conflict::error,
                                                       {"entry_id", "queue_id", "recipient", "at", "kind", "detail"}));
  if (entry_id)
    insert.bind("entry_id", entry_id);
  else
    insert.bind_null("entry_id");
  insert.bind("queue_id", queue_id);
  insert.bind("recipient", recipient);
  insert.bind("at", at);
  insert.bind("kind", kind);
  insert.bind("detail", detail);
  insert.run();
}

void sql_store::insert_outbox(int64_t entry_id, std::string_view kind, std::string_view box, int64_t now) {
  statement insert(db_.get(),
                   sql::insert_statement(schema::outbox, sql::on_conflict::error, {"entry_id", "kind", "created", "box"}));
  insert.bind("entry_id", entry_id);
  insert.bind("kind", kind);
  insert.bind("created", now);
  insert.bind_blob("box", box);
  insert.run();
}

size_t sql_store::end_entries(statement& select, entry_state to, int64_t now, std::string_view kind,
                                 std::string_view detail) {
  std::vector<entry> ending;
  while (select.next_row()) ending.push_back(entry_from(select));
  statement mark(db_.get(),
                 "UPDATE entries SET state = :state, state_changed = :now,"
                 " code_hash = NULL, code_session = NULL, code_expires = NULL WHERE id = :id");
  statement delete_ciphertext(db_.get(), "DELETE FROM sealed_messages WHERE entry_id = :id");
  for (const auto& e : ending) {
    mark.bind("state", to_string(to));
    mark.bind("now", now);
    mark.bind("id", e.id);
    mark.run();
    delete_ciphertext.bind("id", e.id);
    delete_ciphertext.run();
    insert_event(e.id, e.queue_id, e.recipient, now, kind, detail);
  }
  return ending.size();
}

// Deleted ciphertext is zeroed (secure_delete) in the pages a delete writes,
// but the WAL still holds the frames that first wrote it, and a checkpoint
// does not shorten the WAL: only TRUNCATE empties it, once its frames are in
// the main file (where secure_delete zeroed them). It waits (busy timeout)
// for the other process's readers; when one holds on, the frames stay until
// the next truncation: retract() tries at once, and every expire() (the
// gateway's schedule) tries again, whichever process deleted. The deletion
// has committed by then, so a failure here is logged, not thrown.
void sql_store::truncate_wal() noexcept {
  if (!sqlite_) return;  // PostgreSQL: see the constructor
  try {
    statement checkpoint(db_.get(), "PRAGMA wal_checkpoint(TRUNCATE)");
    if (checkpoint.next_row() && checkpoint.integer("busy") == 0) return;
    log_warning("portal store " + place_ +
                ": the WAL could not be truncated now (another process was reading); deleted ciphertext stays in it "
                "until the next expire()");
  } catch (const std::exception& e) {
    log_warning("portal store " + place_ + ": truncating the WAL failed: " + e.what());
  }
}

int64_t sql_store::insert_deposit(const deposit& d) {
  if (d.lookup.empty() || d.queue_id.empty() || d.recipient.empty() || d.sealed.body.empty() ||
      d.sealed.link_wrap.empty())
    throw std::invalid_argument("a deposit needs a lookup key, a queue id, a recipient and its sealed message");
  statement insert(db_.get(), sql::insert_statement(schema::entries, sql::on_conflict::error,
                                                       {"lookup", "queue_id", "recipient", "sender", "created",
                                                        "expires", "size", "state"}) +
                                  " RETURNING id AS row_id");
  insert.bind("lookup", d.lookup);
  insert.bind("queue_id", d.queue_id);
  insert.bind("recipient", d.recipient);
  insert.bind("sender", d.sender);
  insert.bind("created", d.created);
  insert.bind("expires", d.expires);
  insert.bind("size", static_cast<int64_t>(d.size));
  insert.bind("state", to_string(entry_state::active));
  int64_t id = insert.run_returning("row_id");

  statement ciphertext(db_.get(), sql::insert_statement(schema::sealed_messages, sql::on_conflict::error));
  ciphertext.bind("entry_id", id);
  ciphertext.bind_blob("body", d.sealed.body);
  ciphertext.bind_blob("link_wrap", d.sealed.link_wrap);
  if (d.sealed.master_wrap.empty())
    ciphertext.bind_null("master_wrap");
  else
    ciphertext.bind_blob("master_wrap", d.sealed.master_wrap);
  ciphertext.run();

  insert_event(id, d.queue_id, d.recipient, d.created, "deposited", "");
  return id;
}

int64_t sql_store::add(const deposit& d) {
  return guarded("add", [&] {
    transaction t(db_.get(), writer);
    int64_t id = insert_deposit(d);
    t.commit();
    return id;
  });
}

std::vector<int64_t> sql_store::add_group(const std::vector<const deposit*>& group) {
  return guarded("add_group", [&] {
    transaction t(db_.get(), writer);
    std::vector<int64_t> ids;
    ids.reserve(group.size());
    for (const deposit* d : group) ids.push_back(insert_deposit(*d));
    t.commit();
    return ids;
  });
}

void sql_store::set_notice(int64_t entry_id, const std::string& notice_queue_id) {
  guarded("set_notice", [&] {
    transaction t(db_.get(), writer);
    statement update(db_.get(), "UPDATE entries SET notice_queue_id = :notice_queue_id WHERE id = :id");
    update.bind_or_null("notice_queue_id", notice_queue_id);
    update.bind("id", entry_id);
    update.run();
    if (update.changes() == 0) throw std::invalid_argument("no entry " + std::to_string(entry_id));
    t.commit();
  });
}

size_t sql_store::expire(int64_t now) {
  size_t ended = guarded("expire", [&] {
    transaction t(db_.get(), writer);
    statement due(db_.get(),
                  sql::select_statement(schema::entries, "WHERE state = 'active' AND expires <= :now ORDER BY id"));
    due.bind("now", now);
    size_t n = end_entries(due, entry_state::expired, now, "expired", "");
    // Sessions are swept here rather than by session_entry, which stays a read.
    statement sessions(db_.get(), "DELETE FROM sessions WHERE expires <= :now");
    sessions.bind("now", now);
    sessions.run();
    t.commit();
    return n;
  });
  guarded("expire", [&] { truncate_wal(); });
  return ended;
}

bool sql_store::writable() {
  if (read_only_) return false;
  std::lock_guard lock(mutex_);
  try {
    // The write lock, taken and given back: refused for a read-only file or
    // file system, a corrupt file, or a writer that holds it beyond the busy timeout.
    transaction probe(db_.get(), writer);
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

std::vector<entry> sql_store::list(const list_filter& f) {
  return guarded("list", [&] {
    std::string where;
    auto add_condition = [&](std::string_view condition) {
      where += where.empty() ? "WHERE " : " AND ";
      where += condition;
    };
    if (!f.recipient.empty()) add_condition("recipient = :recipient");
    if (!f.queue_id.empty()) add_condition("queue_id = :queue_id");
    if (f.active_only) add_condition("state = 'active'");
    // Newest first: with a limit, an operator sees today's deposits, not the oldest ones.
    statement select(db_.get(), sql::select_statement(schema::entries, where + " ORDER BY id DESC LIMIT :limit"));
    if (!f.recipient.empty()) select.bind("recipient", f.recipient);
    if (!f.queue_id.empty()) select.bind("queue_id", f.queue_id);
    select.bind("limit", as_limit(f.limit));
    std::vector<entry> out;
    while (select.next_row()) out.push_back(entry_from(select));
    return out;
  });
}

size_t sql_store::retract(const std::string& queue_id, const std::string& recipient, int64_t now,
                             const std::string& who) {
  size_t ended = guarded("retract", [&] {
    transaction t(db_.get(), writer);
    std::string where = "WHERE state = 'active' AND queue_id = :queue_id";
    if (!recipient.empty()) where += " AND recipient = :recipient";
    statement matching(db_.get(), sql::select_statement(schema::entries, where + " ORDER BY id"));
    matching.bind("queue_id", queue_id);
    if (!recipient.empty()) matching.bind("recipient", recipient);
    size_t n = end_entries(matching, entry_state::retracted, now, "retracted", who);
    t.commit();
    return n;
  });
  if (ended) guarded("retract", [&] { truncate_wal(); });
  return ended;
}

store::event_tally sql_store::count_events(int64_t after) {
  return guarded("count events", [&] {
    event_tally t;
    statement select(db_.get(), "SELECT kind, COUNT(*) AS n, MAX(id) AS last FROM events WHERE id > :after GROUP BY kind");
    select.bind("after", after);
    t.last_id = after;
    while (select.next_row()) {
      t.by_kind.emplace_back(select.text("kind"), select.integer("n"));
      t.last_id = std::max(t.last_id, select.integer("last"));
    }
    return t;
  });
}

namespace {
event event_from(const statement& select) {
  event e;
  e.id = select.integer("id");
  e.entry_id = select.optional_integer("entry_id").value_or(0);
  e.queue_id = select.text("queue_id");
  e.recipient = select.text("recipient");
  e.at = select.integer("at");
  e.kind = select.text("kind");
  e.detail = select.text("detail");
  return e;
}
}  // namespace

std::vector<event> sql_store::events_after(int64_t after, size_t limit) {
  return guarded("events", [&] {
    statement select(db_.get(), sql::select_statement(schema::events, "WHERE id > :after ORDER BY id LIMIT :limit"));
    select.bind("after", after);
    select.bind("limit", static_cast<int64_t>(limit));
    std::vector<event> out;
    while (select.next_row()) out.push_back(event_from(select));
    return out;
  });
}

std::vector<event> sql_store::events(const std::string& queue_id) {
  return guarded("events", [&] {
    statement select(db_.get(),
                     sql::select_statement(schema::events, "WHERE queue_id = :queue_id ORDER BY at, id"));
    select.bind("queue_id", queue_id);
    std::vector<event> out;
    while (select.next_row()) out.push_back(event_from(select));
    return out;
  });
}

void sql_store::record(const event& e) {
  guarded("record", [&] {
    if (!known_event_kind(e.kind)) throw std::invalid_argument("unknown event kind '" + e.kind + "'");
    transaction t(db_.get(), writer);
    insert_event(e.entry_id, e.queue_id, e.recipient, e.at, e.kind, e.detail);
    t.commit();
  });
}

deposit_counts sql_store::counts(int64_t since) {
  return guarded("counts", [&] {
    // One pass over the events, summed per entry, joined to the window's
    // entries: no per-entry search of the events (which have no index by entry).
    statement select(db_.get(),
                     "SELECT COUNT(*) AS deposits,"
                     " COUNT(*) FILTER (WHERE v.opened > 0) AS opened,"
                     " CAST(COALESCE(SUM(v.downloads), 0) AS BIGINT) AS downloads,"
                     " CAST(COALESCE(SUM(v.replies), 0) AS BIGINT) AS replies"
                     " FROM entries e LEFT JOIN"
                     " (SELECT entry_id, COUNT(*) FILTER (WHERE kind = 'opened') AS opened,"
                     " COUNT(*) FILTER (WHERE kind = 'downloaded') AS downloads,"
                     " COUNT(*) FILTER (WHERE kind = 'replied') AS replies"
                     " FROM events WHERE entry_id IS NOT NULL GROUP BY entry_id) v"
                     " ON v.entry_id = e.id"
                     " WHERE e.created >= :since");
    select.bind("since", since);
    deposit_counts c;
    if (select.next_row()) {
      c.deposits = select.integer("deposits");
      c.opened = select.integer("opened");
      c.downloads = select.integer("downloads");
      c.replies = select.integer("replies");
    }
    return c;
  });
}

std::optional<entry> sql_store::find(const std::string& lookup) {
  return guarded("find", [&]() -> std::optional<entry> {
    statement select(db_.get(), sql::select_statement(schema::entries, "WHERE lookup = :lookup"));
    select.bind("lookup", lookup);
    if (!select.next_row()) return std::nullopt;
    entry e = entry_from(select);
    return e;
  });
}

std::optional<entry> sql_store::get(int64_t entry_id) {
  return guarded("get", [&]() -> std::optional<entry> { return entry_by_id(entry_id); });
}

std::optional<sealed_message> sql_store::sealed(int64_t entry_id) {
  return guarded("sealed", [&]() -> std::optional<sealed_message> {
    statement select(db_.get(),
                     "SELECT s.body AS body, s.link_wrap AS link_wrap, s.master_wrap AS master_wrap"
                     " FROM sealed_messages s JOIN entries e ON e.id = s.entry_id"
                     " WHERE s.entry_id = :entry_id AND e.state = 'active'");
    select.bind("entry_id", entry_id);
    if (!select.next_row()) return std::nullopt;
    sealed_message m;
    m.body = select.blob("body");
    m.link_wrap = select.blob("link_wrap");
    m.master_wrap = select.blob("master_wrap");
    return m;
  });
}

code_request_result sql_store::request_code(int64_t entry_id, const std::string& session_key,
                                               const std::string& code_hash, const std::string& outbox_box, int64_t now,
                                               const code_rules& rules) {
  return guarded("request_code", [&] {
    if (session_key.empty() || code_hash.empty() || outbox_box.empty())
      throw std::invalid_argument("a code needs a session, its hash and its outbox box");
    transaction t(db_.get(), writer);
    auto e = entry_by_id(entry_id);
    if (!e || !open_for_codes(*e, now)) return code_request_result::not_active;
    if (e->locked_until > now) return code_request_result::locked;
    // The window begins with the first code sent in it and lasts rules.window.
    int64_t window = e->codes_window;
    int sent = e->codes_sent;
    if (window == 0 || now >= window + rules.window) {
      window = now;
      sent = 0;
    }
    if (sent >= rules.max_per_window) return code_request_result::rate_limited;

    // The failures are kept: asking for a new code does not buy more guesses.
    statement update(db_.get(),
                     "UPDATE entries SET code_hash = :code_hash, code_session = :code_session,"
                     " code_expires = :code_expires, codes_sent = :codes_sent, codes_window = :codes_window"
                     " WHERE id = :id");
    update.bind("code_hash", code_hash);
    update.bind("code_session", session_key);
    update.bind("code_expires", now + rules.lifetime);
    update.bind("codes_sent", static_cast<int64_t>(sent + 1));
    update.bind("codes_window", window);
    update.bind("id", entry_id);
    update.run();
    insert_event(entry_id, e->queue_id, e->recipient, now, "code-sent", "");
    insert_outbox(entry_id, "code", outbox_box, now);
    t.commit();
    return code_request_result::issued;
  });
}

code_check_result sql_store::check_code(int64_t entry_id, const std::string& session_key,
                                           const std::string& candidate_hash, int64_t now, const code_rules& rules,
                                           const std::string& client) {
  return guarded("check_code", [&] {
    transaction t(db_.get(), writer);
    auto e = entry_by_id(entry_id);
    if (!e || !open_for_codes(*e, now)) return code_check_result::not_active;
    if (e->locked_until > now) return code_check_result::locked;
    // A code belongs to the browser that asked for it: another session has
    // none to check, and its tries are not counted. It could never match
    // (the hash is keyed by the asking session's token), so counting them
    // would only let anyone holding the link lock the recipient out.
    if (e->code_hash.empty() || !equal_constant_time(e->code_session, session_key)) return code_check_result::none;
    // Not counted either: an expired code opens nothing, right or wrong.
    if (now >= e->code_expires) return code_check_result::expired;

    const char* forget_code = "code_hash = NULL, code_session = NULL, code_expires = NULL";
    if (equal_constant_time(e->code_hash, candidate_hash)) {
      statement accept(db_.get(), std::string("UPDATE entries SET ") + forget_code + ", failed_codes = 0 WHERE id = :id");
      accept.bind("id", entry_id);
      accept.run();
      insert_event(entry_id, e->queue_id, e->recipient, now, "opened", client);
      t.commit();
      return code_check_result::accepted;
    }

    int failed = e->failed_codes + 1;
    insert_event(entry_id, e->queue_id, e->recipient, now, "code-failed", client);
    if (failed >= rules.max_failures) {
      // The code goes with the lock: after the lockout a new one must be
      // asked for (and counted against the rate), not guessed at again.
      statement lock(db_.get(), std::string("UPDATE entries SET ") + forget_code +
                                    ", failed_codes = 0, locked_until = :locked_until WHERE id = :id");
      lock.bind("locked_until", now + rules.lockout);
      lock.bind("id", entry_id);
      lock.run();
      insert_event(entry_id, e->queue_id, e->recipient, now, "locked", client);
      t.commit();
      return code_check_result::locked;
    }
    statement count(db_.get(), "UPDATE entries SET failed_codes = :failed_codes WHERE id = :id");
    count.bind("failed_codes", static_cast<int64_t>(failed));
    count.bind("id", entry_id);
    count.run();
    t.commit();
    return code_check_result::wrong;
  });
}

void sql_store::add_session(const std::string& session_key, int64_t entry_id, int64_t expires) {
  guarded("add_session", [&] {
    if (session_key.empty()) throw std::invalid_argument("a session needs its key");
    transaction t(db_.get(), writer);
    // One entry per session: a browser that passes another link's code reads that one from then on.
    statement insert(db_.get(), sql::insert_statement(schema::sessions, sql::on_conflict::update));
    insert.bind("session_key", session_key);
    insert.bind("entry_id", entry_id);
    insert.bind("expires", expires);
    insert.run();
    t.commit();
  });
}

std::optional<int64_t> sql_store::session_entry(const std::string& session_key, int64_t now) {
  return guarded("session_entry", [&]() -> std::optional<int64_t> {
    statement select(db_.get(),
                     "SELECT entry_id FROM sessions WHERE session_key = :session_key AND expires > :now");
    select.bind("session_key", session_key);
    select.bind("now", now);
    if (!select.next_row()) return std::nullopt;
    int64_t id = select.integer("entry_id");
    return id;
  });
}

bool sql_store::reissue(int64_t entry_id, const std::string& new_lookup, const sealed_message& sealed,
                           const std::string& notice_box, int64_t now, const std::string& who) {
  return guarded("reissue", [&] {
    transaction t(db_.get(), writer);
    auto e = entry_by_id(entry_id);
    if (!e || e->state != entry_state::active || e->expires <= now) return false;
    statement update(db_.get(),
                     "UPDATE entries SET lookup = :lookup, code_hash = NULL, code_session = NULL, code_expires = 0,"
                     " failed_codes = 0, locked_until = 0 WHERE id = :id");
    update.bind("lookup", new_lookup);
    update.bind("id", entry_id);
    update.run();
    statement reseal(db_.get(),
                     "UPDATE sealed_messages SET body = :body, link_wrap = :link_wrap, master_wrap = :master_wrap"
                     " WHERE entry_id = :entry_id");
    reseal.bind_blob("body", sealed.body);
    reseal.bind_blob("link_wrap", sealed.link_wrap);
    reseal.bind_blob("master_wrap", sealed.master_wrap);
    reseal.bind("entry_id", entry_id);
    reseal.run();
    insert_event(entry_id, e->queue_id, e->recipient, now, "reissued", "by " + who);
    insert_outbox(entry_id, "notice", notice_box, now);
    t.commit();
    return true;
  });
}

void sql_store::put_outbox(int64_t entry_id, const std::string& kind, const std::string& box, int64_t now) {
  guarded("put_outbox", [&] {
    transaction t(db_.get(), writer);
    insert_outbox(entry_id, kind, box, now);
    t.commit();
  });
}

std::vector<outbox_item> sql_store::outbox(size_t limit) {
  return guarded("outbox", [&] {
    statement select(db_.get(), sql::select_statement(schema::outbox, "ORDER BY id LIMIT :limit"));
    select.bind("limit", as_limit(limit));
    std::vector<outbox_item> out;
    while (select.next_row()) {
      outbox_item item;
      item.id = select.integer("id");
      item.entry_id = select.integer("entry_id");
      item.kind = select.text("kind");
      item.created = select.integer("created");
      item.box = select.blob("box");
      out.push_back(std::move(item));
    }
    return out;
  });
}

void sql_store::remove_outbox(int64_t id) {
  guarded("remove_outbox", [&] {
    transaction t(db_.get(), writer);
    statement remove(db_.get(), "DELETE FROM outbox WHERE id = :id");
    remove.bind("id", id);
    remove.run();
    t.commit();
  });
}

void sql_store::set_setting(const std::string& name, const std::string& value) {
  guarded("set_setting", [&] {
    transaction t(db_.get(), writer);
    statement upsert(db_.get(), sql::insert_statement(schema::settings, sql::on_conflict::update));
    upsert.bind("name", name);
    upsert.bind_blob("value", value);
    upsert.run();
    t.commit();
  });
}

std::optional<std::string> sql_store::setting(const std::string& name) {
  return guarded("setting", [&]() -> std::optional<std::string> {
    statement select(db_.get(), "SELECT value FROM settings WHERE name = :name");
    select.bind("name", name);
    if (!select.next_row()) return std::nullopt;
    std::string value = select.blob("value");
    return value;
  });
}

}  // namespace

std::unique_ptr<store> open_store(const sql::location& where, store_access access) {
  std::string place = where.describe();
  try {
    return std::make_unique<sql_store>(where, access);
  } catch (const store_error&) {
    throw;
  } catch (const std::exception& e) {
    std::string why = e.what();
    // sql::open, upgrade_schema and the mode check name the file (or its -wal, -shm) themselves.
    if (why.rfind(place, 0) == 0) throw store_error("portal store " + why);
    throw store_error("portal store " + place + ": " + why);
  }
}

std::unique_ptr<store> open_sqlite_store(const std::filesystem::path& file, store_access access) {
  return open_store(sql::location::sqlite_file(file), access);
}

}  // namespace sealgate::portal
