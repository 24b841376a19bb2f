// SQLite audit store; see database.hpp.
#include "gateway/record/database.hpp"

#include "common/unique_fd.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <set>
#include <stdexcept>
#include <string_view>
#include <utility>

#include "common/log.hpp"
#include "common/text.hpp"
#include "gateway/record/schema.hpp"

namespace sealgate::gateway {

namespace {

// What an attempt row carries besides its recipient, outcome and time: the
// columns of the same name in `attempts` (its own row) and in `recipients`
// (the recipient's current state, where the attempt knew them).
constexpr std::pair<std::string_view, std::string attempt_row::*> attempt_details[] = {
    {"method", &attempt_row::method},         {"rule", &attempt_row::rule},
    {"policy_sha256", &attempt_row::policy_sha256}, {"mx_host", &attempt_row::mx_host},
    {"mx_address", &attempt_row::mx_address}, {"tls_protocol", &attempt_row::tls_protocol},
    {"tls_cipher", &attempt_row::tls_cipher}, {"certificate", &attempt_row::certificate},
    {"reply", &attempt_row::reply},           {"classes", &attempt_row::classes},
    {"key_fingerprint", &attempt_row::key_fingerprint}};

consteval bool details_in_both_tables() {
  for (const auto& [name, field] : attempt_details)
    if (schema::attempts.count(name) != 1 || schema::recipients.count(name) != 1) return false;
  return true;
}
static_assert(details_in_both_tables());

// A recipient's row takes the attempt's outcome as its status and keeps, for
// every detail the attempt did not know (a policy hold has no MX), what an
// earlier attempt recorded. final_at is set once the status is final. The
// row exists from acceptance; after a crash that lost the acceptance group's
// rows it may not, and is created.
//
// A row derived again (close_pass re-derives the rows of recipients final
// before its pass, for a crash between their status line and their record,
// or between the commit and the unlink) changes nothing: a recipient whose
// row is final with the same status is left alone, so changes() is 0 and no
// entry is appended (write_row). An attempt always updates its row.
std::string upsert_recipient_statement() {
  std::string columns = "queue_id, idx, address, domain, status";
  std::string values = ":queue_id, :idx, :address, :domain, :outcome";
  std::string set = "status = excluded.status";
  for (const auto& [name, field] : attempt_details) {
    std::string column(name);
    columns += ", " + column;
    values += ", :" + column;
    set += ", " + column + " = COALESCE(excluded." + column + ", recipients." + column + ")";
  }
  return "INSERT INTO recipients(" + columns + ", attempts, updated_at, final_at) VALUES(" + values +
         ", :attempted, :at,"
         " CASE WHEN :outcome IN ('delivered', 'bounced', 'expired', 'deleted') THEN :at ELSE NULL END)"
         " ON CONFLICT (queue_id, idx) DO UPDATE SET " + set +
         ", attempts = recipients.attempts + excluded.attempts, updated_at = excluded.updated_at,"
         " final_at = excluded.final_at"
         " WHERE excluded.attempts > 0 OR recipients.status <> excluded.status OR recipients.final_at IS NULL";
}

}  // namespace

database::database(const sql::location& where, const std::filesystem::path& journal_dir)
    : where_(where), place_(where.describe()) {
  if (where.is_postgresql()) {
    // Shared by every node; each writer's transaction takes the schema's
    // advisory lock first (sql.hpp, transaction_mode::immediate), so the
    // chain has one head for the whole cluster.
    db_ = sql::open(where, sql::access::read_write, schema::schema_name);
  } else {
    const auto& file = where.file;
    if (file.has_parent_path()) std::filesystem::create_directories(file.parent_path());
    // Create the file ourselves so that it is 0600 from its first byte.
    unique_fd fd(::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (!fd) throw std::runtime_error(file.string() + ": cannot create database file");
    ::fchmod(fd.get(), 0600);
    fd.reset();
    db_ = sql::open(where, sql::access::read_write, schema::schema_name);
    sql::exec(db_.get(), "PRAGMA journal_mode=WAL");
    // The spool holds the truth; the audit rows can be rebuilt, so NORMAL suffices.
    sql::exec(db_.get(), "PRAGMA synchronous=NORMAL");
  }
  upgrade_schema(db_.get(), place_);
  auto* db = db_.get();
  insert_message_ = sql::statement(db, insert_statement(schema::messages, on_conflict::do_nothing));
  insert_recipient_ = sql::statement(
      db, insert_statement(schema::recipients, on_conflict::do_nothing,
                           {"queue_id", "idx", "address", "domain", "status", "updated_at"}));
  insert_attempt_ = sql::statement(db, insert_statement(schema::attempts, on_conflict::error) + " RETURNING " +
                                              std::string(schema::attempt_id) + " AS row_id");
  upsert_recipient_ = sql::statement(db, upsert_recipient_statement());
  update_message_id_ = sql::statement(
      db, "UPDATE messages SET message_id = :message_id WHERE queue_id = :queue_id AND message_id IS NULL");
  count_tls_session_ = sql::statement(
      db,
      "INSERT INTO tls_sessions (day, policy_domain, policy_type, mx_host, address, result_type, sessions) "
      "VALUES (:day, :policy_domain, :policy_type, :mx_host, :address, :result_type, 1) "
      "ON CONFLICT (day, policy_domain, policy_type, mx_host, address, result_type) DO UPDATE SET sessions = tls_sessions.sessions + 1");
  select_head_ = sql::statement(db, "SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1");
  insert_event_ = sql::statement(db, insert_statement(schema::audit_events, on_conflict::error));
  claim_batch_ = sql::statement(db, insert_statement(schema::record_batches, on_conflict::do_nothing) +
                                        " RETURNING batch_id");
  if (!where.is_postgresql()) {
    for (const char* suffix : {"-wal", "-shm"}) {
      auto side = where.file.string() + suffix;
      ::chmod(side.c_str(), 0600);
    }
  }
  if (!journal_dir.empty()) {
    journal_ = std::make_unique<record_journal>(journal_dir);
    if (!journal_->empty()) {
      // Left by an earlier run (the database was away when it stopped):
      // written now, before anything new; what the database still refuses
      // waits for the writer's next try.
      journal_waiting_ = true;
      log_info("database: " + std::to_string(journal_->waiting().size()) + " batches of records wait in " +
               journal_dir.string() + "; replaying them");
      if (!replay_journal()) {
        std::lock_guard lock(queue_mutex_);
        writer_ = std::thread([this] { run_writer(); });
      }
    }
  }
}

database::~database() {
  {
    std::lock_guard lock(queue_mutex_);
    stopping_ = true;
  }
  queue_wake_.notify_all();
  if (writer_.joinable()) writer_.join();
}

void database::record_accepted(const std::vector<spooled_envelope>& messages) {
  record_batch b;
  b.id = new_batch_id();
  b.accepted = messages;
  write(b);
}

// One accepted message: its row and one row per recipient. Called inside
// write()'s transaction, with mutex_ held.
void database::write_accepted(const spooled_envelope& m) {
  auto& st = insert_message_;
  st.bind("queue_id", m.queue_id);
  st.bind("received_at", m.received);
  st.bind("listener", m.listener);
  st.bind("client_address", m.client_address);
  st.bind("helo", m.helo);
  st.bind_or_null("auth_user", m.auth_user);
  st.bind_or_null("tls_protocol", m.tls_protocol);
  st.bind_or_null("tls_cipher", m.tls_cipher);
  st.bind("sender", m.sender);
  st.bind("recipients", static_cast<int64_t>(m.recipients.size()));
  st.bind("size", static_cast<int64_t>(m.content_size));
  st.bind_or_null("message_id", m.message_id);
  st.bind_or_null("relay_class", m.relay_class);
  st.run();
  if (st.changes() == 0) return;  // recorded before (a restart restoring what it had)
  std::vector<std::string> recipients;
  for (const auto& r : m.recipients) recipients.push_back(r.recipient);
  audit::event e("accepted", m.received, m.queue_id);
  e.add("listener", m.listener)
      .add("client_address", m.client_address)
      .add("helo", m.helo)
      .add_known("auth_user", m.auth_user)
      .add_known("relay_class", m.relay_class)
      .add_known("tls_protocol", m.tls_protocol)
      .add_known("tls_cipher", m.tls_cipher)
      .add("sender", m.sender)
      .add("recipients", recipients)
      .add("size", static_cast<int64_t>(m.content_size))
      .add_known("message_id", m.message_id);
  append(*head_, e);
  for (size_t i = 0; i < m.recipients.size(); ++i) write_recipient(m.queue_id, i, m.recipients[i].recipient, m.received);
}

// A recipient as accepted: queued, nothing tried yet. Ignored when the row exists.
void database::write_recipient(const std::string& queue_id, size_t index, const std::string& address, int64_t at) {
  auto& st = insert_recipient_;
  st.bind("queue_id", queue_id);
  st.bind("idx", static_cast<int64_t>(index));
  st.bind("address", address);
  st.bind("domain", domain_of(address));
  st.bind("status", "queued");
  st.bind("updated_at", at);
  st.run();
}

void database::record_attempts(const std::vector<attempt_row>& rows) {
  record_batch b;
  b.id = new_batch_id();
  b.rows = rows;
  write(b);
}

bool database::write(const record_batch& b) {
  std::lock_guard lock(mutex_);
  // Immediate: the head read first must still be the head when this
  // transaction appends (CLI processes and other nodes write too).
  db_->begin(sql::transaction_mode::immediate);
  try {
    claim_batch_.bind("batch_id", b.id);
    claim_batch_.bind("at", static_cast<int64_t>(std::time(nullptr)));
    bool first_time = false;
    while (claim_batch_.next_row()) first_time = true;
    if (!first_time) {
      // Recorded before: a replay of a batch whose COMMIT did reach the
      // database although its reply did not.
      db_->exec("ROLLBACK");
      return false;
    }
    head_ = read_head();
    for (const auto& m : b.accepted) write_accepted(m);
    for (const auto& [queue_id, message_id] : b.message_ids) {
      update_message_id_.bind("message_id", message_id);
      update_message_id_.bind("queue_id", queue_id);
      update_message_id_.run();
      if (update_message_id_.changes() > 0)
        append(*head_, audit::event("message-id", static_cast<int64_t>(std::time(nullptr)), queue_id)
                           .add("message_id", message_id));
    }
    for (const auto& r : b.rows) write_row(r);
    for (const auto& t : b.tls_sessions) {
      auto& c = count_tls_session_;
      c.bind("day", t.day);
      c.bind("policy_domain", t.policy_domain);
      c.bind("policy_type", t.policy_type);
      c.bind("mx_host", t.mx_host);
      c.bind("address", t.address);
      c.bind("result_type", t.result_type);
      c.run();
    }
    db_->exec("COMMIT");
    head_.reset();
    return true;
  } catch (...) {
    head_.reset();
    try {
      if (db_->in_transaction()) db_->exec("ROLLBACK");
    } catch (const std::exception&) {
      // A failed COMMIT may have ended the transaction already; the first
      // error is the one worth reporting.
    }
    throw;
  }
}

database::chain_head database::read_head() {
  chain_head h{0, std::string(audit::genesis)};
  if (select_head_.next_row()) {
    h = {select_head_.integer("seq"), select_head_.text("hash")};
    while (select_head_.next_row()) {
    }  // LIMIT 1: ends the statement
  }
  return h;
}

void database::append(chain_head& head, const audit::event& e) {
  std::string text = e.text();
  std::string hash = audit::link_hash(head.hash, text);
  // The lookup columns, read from the entry as verify_chain reads them.
  auto fields = audit::entry_fields::parse(text);
  if (!fields) throw std::logic_error("audit: an event that does not read back: " + text);
  auto columns = audit::lookup_columns_of(*fields);
  auto& st = insert_event_;
  st.bind("seq", head.seq + 1);
  st.bind_or_null("queue_id", columns.queue_id);
  st.bind_or_null("kind", columns.kind);
  for (auto [name, value] : {std::pair{"at", columns.at}, {"idx", columns.idx}, {"attempt", columns.attempt}}) {
    if (value) st.bind(name, *value);
    else st.bind_null(name);
  }
  st.bind("entry", text);
  st.bind("prev", head.hash);
  st.bind("hash", hash);
  st.run();
  head = {head.seq + 1, std::move(hash)};
}

// One row: its attempt, then its recipient's current state, then its entry
// unless the row changed nothing (a row derived again). Called inside
// write()'s transaction, with mutex_ held.
void database::write_row(const attempt_row& r) {
  audit::event e(r.outcome, r.at, r.queue_id);
  e.add("idx", static_cast<int64_t>(r.index)).add("address", r.address);
  for (const auto& [column, field] : attempt_details) e.add_known(column, r.*field);
  e.add_known("actor", r.actor);
  if (r.attempted) {
    auto& a = insert_attempt_;
    a.bind("queue_id", r.queue_id);
    a.bind("idx", static_cast<int64_t>(r.index));
    a.bind("at", r.at);
    a.bind("outcome", r.outcome);
    for (const auto& [column, field] : attempt_details) a.bind_or_null(column, r.*field);
    e.add("attempt", a.run_returning("row_id"));  // the attempts row it describes
  }
  auto& u = upsert_recipient_;
  u.bind("queue_id", r.queue_id);
  u.bind("idx", static_cast<int64_t>(r.index));
  u.bind("address", r.address);
  u.bind("domain", domain_of(r.address));
  u.bind("outcome", r.outcome);
  for (const auto& [column, field] : attempt_details) u.bind_or_null(column, r.*field);
  u.bind("attempted", int64_t{r.attempted ? 1 : 0});
  u.bind("at", r.at);
  u.run();
  if (r.attempted || u.changes() > 0) append(*head_, e);
}

void database::set_message_id(const std::string& queue_id, const std::string& message_id) {
  batch b;
  b.message_id = {queue_id, message_id};
  enqueue(std::move(b));
}

void database::submit_tls_session(tls_session_row row) {
  batch b;
  b.tls_sessions.push_back(std::move(row));
  enqueue(std::move(b));
}

std::vector<std::pair<std::string, std::string>> database::tls_reports_done(const std::string& day) {
  std::lock_guard lock(mutex_);
  sql::statement q(db_.get(),
                      "SELECT policy_domain, destination FROM tls_reports WHERE day = :day AND result NOT LIKE 'failed%'");
  q.bind("day", day);
  std::vector<std::pair<std::string, std::string>> out;
  while (q.next_row()) out.emplace_back(q.text("policy_domain"), q.text("destination"));
  return out;
}

void database::record_tls_report(const std::string& day, const std::string& policy_domain,
                                 const std::string& destination, const std::string& result, int64_t at) {
  std::lock_guard lock(mutex_);
  // A report tried again replaces the row of its failure.
  sql::statement q(db_.get(), insert_statement(schema::tls_reports, on_conflict::update));
  q.bind("day", day);
  q.bind("policy_domain", policy_domain);
  q.bind("destination", destination);
  q.bind("result", result);
  q.bind("at", at);
  q.run();
}

void database::submit_accepted(std::vector<spooled_envelope> messages) {
  batch b;
  b.accepted = std::move(messages);
  enqueue(std::move(b));
}

void database::submit(std::vector<attempt_row> rows, std::function<void(bool)> on_committed) {
  batch b;
  b.rows = std::move(rows);
  b.on_committed = std::move(on_committed);
  enqueue(std::move(b));
}

void database::enqueue(batch b) {
  bool wake;
  {
    std::lock_guard lock(queue_mutex_);
    queue_.push_back(std::move(b));
    if (!writer_.joinable()) writer_ = std::thread([this] { run_writer(); });
    // Only a writer waiting for work needs waking: one in its transaction
    // gap takes what is queued when the gap ends (waking it for every
    // group was most of the gateway's futex calls).
    wake = writer_idle_;
  }
  if (wake) queue_wake_.notify_one();
}

void database::flush() {
  std::unique_lock lock(queue_mutex_);
  queue_idle_.wait(lock, [&] { return queue_.empty() && !writing_; });
}

void database::run_writer() {
  auto last_commit = std::chrono::steady_clock::time_point{};
  for (;;) {
    std::vector<batch> work;
    {
      std::unique_lock lock(queue_mutex_);
      writer_idle_ = true;
      auto have_work = [&] { return stopping_ || !queue_.empty(); };
      // With batches in the journal, the writer also wakes to replay them
      // when the database may be back, whether or not new work came.
      if (journal_waiting_)
        queue_wake_.wait_until(lock, next_replay_, have_work);
      else
        queue_wake_.wait(lock, have_work);
      writer_idle_ = false;
      // Under load, what arrives within transaction_gap of the last commit
      // waits for it and joins one transaction: each transaction rewrites its
      // pages in the WAL, so a few large ones cost far less than many small ones.
      if (!queue_.empty()) queue_wake_.wait_until(lock, last_commit + transaction_gap, [&] { return stopping_; });
      if (queue_.empty() && stopping_) return;  // nothing left to write
      work.swap(queue_);
      writing_ = true;
    }
    record_batch current;
    for (auto& b : work) {
      current.tls_sessions.insert(current.tls_sessions.end(), std::make_move_iterator(b.tls_sessions.begin()),
                                  std::make_move_iterator(b.tls_sessions.end()));
      current.accepted.insert(current.accepted.end(), std::make_move_iterator(b.accepted.begin()),
                              std::make_move_iterator(b.accepted.end()));
      if (!b.message_id.first.empty()) current.message_ids.push_back(std::move(b.message_id));
      current.rows.insert(current.rows.end(), std::make_move_iterator(b.rows.begin()),
                          std::make_move_iterator(b.rows.end()));
    }
    bool ok = true;
    if (current.empty()) {
      replay_journal();  // woken for it
    } else {
      current.id = new_batch_id();
      ok = commit_or_journal(current);
    }
    last_commit = std::chrono::steady_clock::now();
    for (auto& b : work)
      if (b.on_committed) b.on_committed(ok);
    {
      std::lock_guard lock(queue_mutex_);
      writing_ = false;
    }
    queue_idle_.notify_all();
  }
}

bool database::commit_or_journal(const record_batch& b) {
  // Older batches first, so that an acceptance is recorded before its
  // attempts: while the journal cannot be emptied, new batches join it.
  if (journal_waiting_ && !replay_journal()) return keep_in_journal(b);
  try {
    write(b);
    return true;
  } catch (const std::exception& e) {
    log_error(std::string("database: records not written: ") + e.what());
    // Without a journal (or when it refuses too) the caller keeps its files
    // (the spool and the status files hold the truth) and the next start
    // writes the accepted rows again (restore_from_spool).
    if (!journal_) return false;
    {
      std::lock_guard lock(queue_mutex_);
      next_replay_ = std::chrono::steady_clock::now() + replay_backoff_;
    }
    return keep_in_journal(b);
  }
}

bool database::keep_in_journal(const record_batch& b) {
  if (auto ec = journal_->append(b)) {
    log_error("database: record journal " + journal_->directory().string() + ": " + ec.message() +
              "; the records stay with their spool files until the database takes them");
    return false;
  }
  std::lock_guard lock(queue_mutex_);
  if (!journal_waiting_)
    log_warning("database: " + place_ + " does not take records; they are kept in " +
                journal_->directory().string() + " and written when it does");
  journal_waiting_ = true;
  return true;
}

bool database::replay_journal() {
  if (!journal_ || !journal_waiting_) return true;
  if (std::chrono::steady_clock::now() < next_replay_) return false;
  size_t replayed = 0, skipped = 0;
  for (const auto& file : journal_->waiting()) {
    auto b = journal_->read(file);  // a damaged one is set aside and logged
    if (!b) continue;
    try {
      if (write(*b))
        ++replayed;
      else
        ++skipped;
    } catch (const std::exception& e) {
      std::lock_guard lock(queue_mutex_);
      replay_backoff_ = std::min(replay_backoff_ * 2, std::chrono::milliseconds(30000));
      next_replay_ = std::chrono::steady_clock::now() + replay_backoff_;
      return false;
    }
    journal_->remove(file);
  }
  std::lock_guard lock(queue_mutex_);
  journal_waiting_ = false;
  replay_backoff_ = std::chrono::milliseconds(500);
  log_info("database: " + place_ + " takes records again; " + std::to_string(replayed) +
           " batches replayed from the journal" +
           (skipped ? ", " + std::to_string(skipped) + " already recorded" : std::string()));
  return true;
}

void database::record_events(const std::vector<audit::event>& events, const std::string& cursor_name,
                             int64_t cursor_value) {
  std::lock_guard lock(mutex_);
  sql::transaction t(db_.get(), sql::transaction::mode::immediate);
  auto head = read_head();
  for (const auto& e : events) append(head, e);
  if (!cursor_name.empty()) {
    sql::statement q(db_.get(), insert_statement(schema::audit_cursors, on_conflict::update));
    q.bind("name", cursor_name);
    q.bind("value", cursor_value);
    q.run();
  }
  t.commit();
}

int64_t database::cursor(const std::string& name) {
  std::lock_guard lock(mutex_);
  sql::statement q(db_.get(), "SELECT value FROM audit_cursors WHERE name = :name");
  q.bind("name", name);
  int64_t v = 0;
  while (q.next_row()) v = q.integer("value");
  return v;
}

void database::record_policy(const std::string& sha256, const std::string& file, const std::string& text, int64_t at,
                             const std::string& trigger, const std::string& actor) {
  std::lock_guard lock(mutex_);
  sql::transaction t(db_.get(), sql::transaction::mode::immediate);
  sql::statement q(db_.get(), insert_statement(schema::policy_versions, on_conflict::do_nothing));
  q.bind("sha256", sha256);
  q.bind("first_loaded", at);
  q.bind("file", file);
  q.bind_blob("text", text);
  q.run();
  auto head = read_head();
  append(head, audit::event("policy-loaded", at)
                   .add("sha256", sha256)
                   .add("file", file)
                   .add("trigger", trigger)
                   .add_known("actor", actor));
  t.commit();
}

namespace {
// The first entry the retention keeps, 0 when every entry is older than the
// cutoff (or there is none). In seq order, stopping at the first young entry:
// node clocks may disagree, so a later entry older than the cutoff stays too.
// The scan reads only the old entries, which the daily purge keeps few;
// "at + 0" keeps it from the at index, which would sort every young entry
// first. The index answers the usual daily question, whether any is old.
int64_t first_kept_seq(sql::connection* db, int64_t cutoff) {
  sql::statement old(db, "SELECT seq FROM audit_events WHERE at < :cutoff LIMIT 1");
  old.bind("cutoff", cutoff);
  bool any_old = false;
  while (old.next_row()) any_old = true;
  sql::statement kept(db, any_old ? "SELECT seq FROM audit_events WHERE at + 0 >= :cutoff ORDER BY seq LIMIT 1"
                                     : "SELECT seq FROM audit_events ORDER BY seq LIMIT 1");
  if (any_old) kept.bind("cutoff", cutoff);
  int64_t seq = 0;
  while (kept.next_row()) seq = kept.integer("seq");
  return seq;
}

// The newest checkpoint's entry, 0 for none.
int64_t newest_checkpoint_seq(sql::connection* db) {
  sql::statement q(db, "SELECT MAX(seq) AS seq FROM audit_checkpoints");
  int64_t seq = 0;
  while (q.next_row()) seq = q.optional_integer("seq").value_or(0);
  return seq;
}

audit::checkpoint sign_checkpoint(sql::connection* db, const audit::ed25519_key& key, int64_t seq, const std::string& head,
                                  int64_t now) {
  audit::checkpoint c;
  c.seq = seq;
  c.head = head;
  c.at = now;
  c.key_id = key.key_id();
  c.statement = audit::checkpoint_statement(seq, head, now);
  c.signature = base64_encode(key.sign(c.statement));
  sql::statement q(db, insert_statement(schema::audit_checkpoints, on_conflict::error,
                                           {"seq", "head", "at", "key_id", "statement", "signature"}) +
                              " RETURNING id AS row_id");
  q.bind("seq", c.seq);
  q.bind("head", c.head);
  q.bind("at", c.at);
  q.bind("key_id", c.key_id);
  q.bind("statement", c.statement);
  q.bind("signature", c.signature);
  c.id = q.run_returning("row_id");
  return c;
}
}  // namespace

std::optional<audit::checkpoint> database::make_checkpoint(const audit::ed25519_key& key, int64_t now) {
  std::lock_guard lock(mutex_);
  sql::transaction t(db_.get(), sql::transaction::mode::immediate);
  auto head = read_head();
  if (head.seq == 0 || newest_checkpoint_seq(db_.get()) >= head.seq) return std::nullopt;
  auto c = sign_checkpoint(db_.get(), key, head.seq, head.hash, now);
  t.commit();
  return c;
}

database::purge_result database::purge(int64_t cutoff, const audit::ed25519_key& key, int64_t now,
                                       const std::string& actor) {
  // What the cutoff reaches: the entries before the first one at or after
  // it (in the chain's order, which is the order of time: the scan stops
  // there), and whether any message is old enough. The daily run usually
  // finds nothing and ends here.
  int64_t verified_up_to = 0;
  {
    std::lock_guard lock(mutex_);
    auto head = read_head();
    int64_t first_seq = 0;
    sql::statement first(db_.get(), "SELECT seq FROM audit_events ORDER BY seq LIMIT 1");
    while (first.next_row()) first_seq = first.integer("seq");
    int64_t first_kept = first_kept_seq(db_.get(), cutoff);
    verified_up_to = first_kept ? first_kept - 1 : head.seq;
    if (verified_up_to < first_seq) verified_up_to = 0;
    sql::statement old(db_.get(), "SELECT 1 AS old FROM messages WHERE received_at < :cutoff LIMIT 1");
    old.bind("cutoff", cutoff);
    bool old_messages = false;
    while (old.next_row()) old_messages = true;
    if (!verified_up_to && !old_messages) return {};
  }
  // A purge signs what it leaves as the new start of the chain: it must not
  // sign over entries that were tampered with (and take the evidence away).
  if (verified_up_to) {
    audit::verify_options o;
    o.to_seq = verified_up_to;
    o.check_records = false;
    auto checked = audit::verify_chain(where_, key, o);
    if (!checked.intact())
      throw std::runtime_error("purge refused: the audit chain does not verify (entry " +
                               std::to_string(checked.problems.front().seq) + ": " + checked.problems.front().what +
                               "); see sealgate audit verify");
  }
  std::lock_guard lock(mutex_);
  sql::transaction t(db_.get(), sql::transaction::mode::immediate);
  auto* db = db_.get();
  purge_result r;
  // The records: messages older than the cutoff that nothing can change any
  // more. The subquery finds the same set for each table: the transaction
  // holds the write lock, and the deletes remove only final recipients, so no
  // message gains or loses one that is not final. (No temporary table: a
  // subquery is the SQL every backend shares.)
  for (const char* table : {"attempts", "recipients", "messages"}) {
    sql::statement q(db, std::string("DELETE FROM ") + table +
                                " WHERE queue_id IN (SELECT m.queue_id FROM messages m WHERE m.received_at < :cutoff"
                                " AND NOT EXISTS (SELECT 1 FROM recipients r WHERE r.queue_id = m.queue_id"
                                " AND r.final_at IS NULL))");
    q.bind("cutoff", cutoff);
    q.run();
    r.messages = q.changes();  // the last, of messages: one row each
  }
  // The chain: the entries before the first one at or after the cutoff,
  // anchored by a checkpoint at the last of them.
  int64_t first_kept = first_kept_seq(db, cutoff);
  auto head = read_head();
  // Never past what was verified (entries appended since are not old).
  r.up_to = std::min(first_kept ? first_kept - 1 : head.seq, verified_up_to);
  sql::statement first(db, "SELECT MIN(seq) AS seq FROM audit_events");
  int64_t first_seq = 0;
  while (first.next_row()) first_seq = first.optional_integer("seq").value_or(0);
  if (r.up_to >= first_seq && first_seq > 0) {
    std::string anchor_hash;
    {
      sql::statement q(db, "SELECT hash FROM audit_events WHERE seq = :seq");
      q.bind("seq", r.up_to);
      while (q.next_row()) anchor_hash = q.text("hash");
    }
    sign_checkpoint(db, key, r.up_to, anchor_hash, now);
    sql::statement del(db, "DELETE FROM audit_events WHERE seq <= :seq");
    del.bind("seq", r.up_to);
    del.run();
    r.entries = del.changes();
    // Checkpoints of removed entries verify nothing any more.
    sql::statement old(db, "DELETE FROM audit_checkpoints WHERE seq < :seq");
    old.bind("seq", r.up_to);
    old.run();
  }
  if (r.entries == 0 && r.messages == 0) {  // nothing old enough: no entry either
    t.commit();
    return r;
  }
  append(head, audit::event("purged", now)
                   .add("before", cutoff)
                   .add("up_to", r.up_to)
                   .add("entries", r.entries)
                   .add("messages", r.messages)
                   .add_known("actor", actor));
  t.commit();
  return r;
}

int64_t database::accepted_count() {
  std::lock_guard lock(mutex_);
  sql::statement count(db_.get(), "SELECT COUNT(*) AS n FROM messages");
  return count.next_row() ? count.integer("n") : -1;
}

std::vector<std::string> database::unrecorded(const std::vector<std::string>& ids) {
  std::set<std::string> known;
  {
    std::lock_guard lock(mutex_);
    sql::statement all(db_.get(), "SELECT queue_id FROM messages");
    while (all.next_row()) known.insert(all.text("queue_id"));
  }
  std::vector<std::string> missing;
  for (const auto& id : ids)
    if (!known.count(id)) missing.push_back(id);
  return missing;
}

}  // namespace sealgate::gateway
