// SQLite audit store; see database.hpp.
#include "gateway/record/database.hpp"

#include "common/text.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <fstream>
#include <set>
#include <stdexcept>

#include "common/log.hpp"

namespace sealgate::gateway {

namespace {
bool has_column(sqlite3* db, const char* table, const char* column) {
  sqlite3_stmt* st = nullptr;
  bool found = false;
  if (sqlite3_prepare_v2(db, "SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2", -1, &st, nullptr) == SQLITE_OK) {
    sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, column, -1, SQLITE_STATIC);
    found = sqlite3_step(st) == SQLITE_ROW;
  }
  sqlite3_finalize(st);
  return found;
}

void bind_text(sqlite3_stmt* st, int i, const std::string& s, bool null_if_empty) {
  if (null_if_empty && s.empty()) sqlite3_bind_null(st, i);
  else sqlite3_bind_text(st, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
}

}  // namespace

database::database(const std::filesystem::path& file) : file_(file) {
  if (file.has_parent_path()) std::filesystem::create_directories(file.parent_path());
  // Create the file ourselves so that it is 0600 from its first byte.
  int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) throw std::runtime_error(file.string() + ": cannot create database file");
  ::fchmod(fd, 0600);
  ::close(fd);
  if (sqlite3_open_v2(file.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX, nullptr) != SQLITE_OK)
    throw std::runtime_error(file.string() + ": " + (db_ ? sqlite3_errmsg(db_) : "cannot open"));
  sqlite3_busy_timeout(db_, 5000);
  exec("PRAGMA journal_mode=WAL");
  // The spool holds the truth; the audit rows can be rebuilt, so NORMAL suffices.
  exec("PRAGMA synchronous=NORMAL");
  exec(R"(CREATE TABLE IF NOT EXISTS messages(
    queue_id TEXT PRIMARY KEY,
    received_at INTEGER NOT NULL,
    listener TEXT NOT NULL,
    client_address TEXT NOT NULL,
    helo TEXT NOT NULL,
    auth_user TEXT,
    tls_protocol TEXT,
    tls_cipher TEXT,
    sender TEXT NOT NULL,
    recipients INTEGER NOT NULL,
    size INTEGER NOT NULL))");
  exec("CREATE TABLE IF NOT EXISTS schema_version(version INTEGER NOT NULL)");
  exec("INSERT INTO schema_version(version) SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM schema_version)");
  // Version 2: the delivery record. One row per recipient with its current
  // state and how it left; one row per attempt, so that an audit can tell the
  // whole story of a recipient (which MX, which TLS, which reply, when).
  if (!has_column(db_, "messages", "message_id")) exec("ALTER TABLE messages ADD COLUMN message_id TEXT");
  exec(R"(CREATE TABLE IF NOT EXISTS recipients(
    queue_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    address TEXT NOT NULL,
    domain TEXT NOT NULL,
    status TEXT NOT NULL,
    method TEXT, rule TEXT, policy_sha256 TEXT,
    mx_host TEXT, mx_address TEXT, tls_protocol TEXT, tls_cipher TEXT, certificate TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    reply TEXT,
    updated_at INTEGER NOT NULL,
    final_at INTEGER,
    PRIMARY KEY(queue_id, idx)))");
  exec(R"(CREATE TABLE IF NOT EXISTS attempts(
    queue_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    at INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    method TEXT, rule TEXT, policy_sha256 TEXT,
    mx_host TEXT, mx_address TEXT, tls_protocol TEXT, tls_cipher TEXT, certificate TEXT,
    reply TEXT))");
  exec("CREATE INDEX IF NOT EXISTS attempts_by_message ON attempts(queue_id, idx)");
  exec("CREATE INDEX IF NOT EXISTS recipients_by_status ON recipients(status)");
  exec("UPDATE schema_version SET version = 2 WHERE version < 2");
  prepare("INSERT OR IGNORE INTO messages(queue_id, received_at, listener, client_address, helo, auth_user, tls_protocol,"
          " tls_cipher, sender, recipients, size, message_id) VALUES(?,?,?,?,?,?,?,?,?,?,?,?)",
          insert_);
  prepare("INSERT OR IGNORE INTO recipients(queue_id, idx, address, domain, status, updated_at) VALUES(?,?,?,?,?,?)",
          insert_recipient_);
  prepare("INSERT INTO attempts(queue_id, idx, at, outcome, method, rule, policy_sha256, mx_host, mx_address,"
          " tls_protocol, tls_cipher, certificate, reply) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?)",
          insert_attempt_);
  prepare("UPDATE recipients SET status=?3, method=COALESCE(?4, method), rule=COALESCE(?5, rule),"
          " policy_sha256=COALESCE(?6, policy_sha256), mx_host=COALESCE(?7, mx_host), mx_address=COALESCE(?8, mx_address),"
          " tls_protocol=COALESCE(?9, tls_protocol), tls_cipher=COALESCE(?10, tls_cipher),"
          " certificate=COALESCE(?11, certificate), attempts=attempts+?12, reply=COALESCE(?13, reply), updated_at=?14,"
          " final_at=CASE WHEN ?3 IN ('delivered','bounced','expired','deleted') THEN ?14 ELSE NULL END"
          " WHERE queue_id=?1 AND idx=?2",
          update_recipient_);
  prepare("UPDATE messages SET message_id=? WHERE queue_id=? AND message_id IS NULL", update_message_id_);
  prepare("BEGIN", begin_);
  prepare("COMMIT", commit_);
  for (const char* suffix : {"-wal", "-shm"}) {
    auto side = file.string() + suffix;
    ::chmod(side.c_str(), 0600);
  }
}

database::~database() {
  {
    std::lock_guard lock(queue_mutex_);
    stopping_ = true;
  }
  queue_wake_.notify_all();
  if (writer_.joinable()) writer_.join();
  for (auto* st : {insert_, insert_recipient_, insert_attempt_, update_recipient_, update_message_id_, begin_, commit_})
    sqlite3_finalize(st);
  sqlite3_close(db_);
}

void database::prepare(const char* sql, sqlite3_stmt*& st) {
  if (sqlite3_prepare_v2(db_, sql, -1, &st, nullptr) != SQLITE_OK)
    throw std::runtime_error(file_.string() + ": " + sqlite3_errmsg(db_));
}

void database::step(sqlite3_stmt* st) {
  int rc = sqlite3_step(st);
  std::string why = rc == SQLITE_DONE ? "" : sqlite3_errmsg(db_);
  sqlite3_reset(st);
  if (rc != SQLITE_DONE) throw std::runtime_error("database: " + why);
}

void database::exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "sqlite error";
    sqlite3_free(err);
    throw std::runtime_error("database: " + msg);
  }
}

void database::record_accepted(const std::vector<spooled_envelope>& messages) { write(messages, {}, {}); }

// One accepted message: its row and one row per recipient. Called inside
// write()'s transaction, with mutex_ held.
void database::write_accepted(const spooled_envelope& m) {
  auto text = [&](int i, const std::string& s, bool null_if_empty) { bind_text(insert_, i, s, null_if_empty); };
  text(1, m.queue_id, false);
  sqlite3_bind_int64(insert_, 2, m.received);
  text(3, m.listener, false);
  text(4, m.client_address, false);
  text(5, m.helo, false);
  text(6, m.auth_user, true);
  text(7, m.tls_protocol, true);
  text(8, m.tls_cipher, true);
  text(9, m.sender, false);
  sqlite3_bind_int64(insert_, 10, static_cast<int64_t>(m.recipients.size()));
  sqlite3_bind_int64(insert_, 11, static_cast<int64_t>(m.content_size));
  text(12, m.message_id, true);
  sqlite3_step(insert_);
  sqlite3_reset(insert_);
  for (size_t i = 0; i < m.recipients.size(); ++i) {
    const auto& address = m.recipients[i].recipient;
    bind_text(insert_recipient_, 1, m.queue_id, false);
    sqlite3_bind_int64(insert_recipient_, 2, static_cast<int64_t>(i));
    bind_text(insert_recipient_, 3, address, false);
    bind_text(insert_recipient_, 4, domain_of(address), false);
    bind_text(insert_recipient_, 5, "queued", false);
    sqlite3_bind_int64(insert_recipient_, 6, m.received);
    sqlite3_step(insert_recipient_);
    sqlite3_reset(insert_recipient_);
  }
}

void database::record_attempts(const std::vector<attempt_row>& rows) { write({}, {}, rows); }

void database::write(const std::vector<spooled_envelope>& accepted,
                     const std::vector<std::pair<std::string, std::string>>& message_ids,
                     const std::vector<attempt_row>& rows) {
  std::lock_guard lock(mutex_);
  step(begin_);
  try {
    for (const auto& m : accepted) write_accepted(m);
    for (const auto& [queue_id, message_id] : message_ids) {
      bind_text(update_message_id_, 1, message_id, false);
      bind_text(update_message_id_, 2, queue_id, false);
      sqlite3_step(update_message_id_);
      sqlite3_reset(update_message_id_);
    }
    for (const auto& r : rows) write_row(r);
    step(commit_);
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

// One row: its attempt, then its recipient's current state. Called inside
// write()'s transaction, with mutex_ held.
void database::write_row(const attempt_row& r) {
  if (r.attempted) {
    auto* a = insert_attempt_;
    bind_text(a, 1, r.queue_id, false);
    sqlite3_bind_int64(a, 2, static_cast<int64_t>(r.index));
    sqlite3_bind_int64(a, 3, r.at);
    bind_text(a, 4, r.outcome, false);
    int i = 5;
    for (const auto* f : {&r.method, &r.rule, &r.policy_sha256, &r.mx_host, &r.mx_address, &r.tls_protocol,
                          &r.tls_cipher, &r.certificate, &r.reply})
      bind_text(a, i++, *f, true);
    sqlite3_step(a);
    sqlite3_reset(a);
  }
  auto update = [&] {
    auto* u = update_recipient_;
    bind_text(u, 1, r.queue_id, false);
    sqlite3_bind_int64(u, 2, static_cast<int64_t>(r.index));
    bind_text(u, 3, r.outcome, false);
    int i = 4;
    for (const auto* f : {&r.method, &r.rule, &r.policy_sha256, &r.mx_host, &r.mx_address, &r.tls_protocol,
                          &r.tls_cipher, &r.certificate})
      bind_text(u, i++, *f, true);
    sqlite3_bind_int64(u, 12, r.attempted ? 1 : 0);
    bind_text(u, 13, r.reply, true);
    sqlite3_bind_int64(u, 14, r.at);
    sqlite3_step(u);
    sqlite3_reset(u);
    return sqlite3_changes(db_) > 0;
  };
  if (update()) return;
  // The recipient row exists from acceptance; after a crash that lost the
  // acceptance group's rows it may not: create it, then update it.
  bind_text(insert_recipient_, 1, r.queue_id, false);
  sqlite3_bind_int64(insert_recipient_, 2, static_cast<int64_t>(r.index));
  bind_text(insert_recipient_, 3, r.address, false);
  bind_text(insert_recipient_, 4, domain_of(r.address), false);
  bind_text(insert_recipient_, 5, "queued", false);
  sqlite3_bind_int64(insert_recipient_, 6, r.at);
  sqlite3_step(insert_recipient_);
  sqlite3_reset(insert_recipient_);
  update();
}

void database::set_message_id(const std::string& queue_id, const std::string& message_id) {
  batch b;
  b.message_id = {queue_id, message_id};
  enqueue(std::move(b));
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
      queue_wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      writer_idle_ = false;
      // Under load, what arrives within transaction_gap of the last commit
      // waits for it and joins one transaction: each transaction rewrites its
      // pages in the WAL, so a few large ones cost far less than many small ones.
      queue_wake_.wait_until(lock, last_commit + transaction_gap, [&] { return stopping_; });
      if (queue_.empty()) return;  // stopping, and nothing left to write
      work.swap(queue_);
      writing_ = true;
    }
    std::vector<attempt_row> rows;
    std::vector<std::pair<std::string, std::string>> message_ids;
    std::vector<spooled_envelope> accepted;
    for (auto& b : work) {
      accepted.insert(accepted.end(), std::make_move_iterator(b.accepted.begin()),
                      std::make_move_iterator(b.accepted.end()));
      if (!b.message_id.first.empty()) message_ids.push_back(std::move(b.message_id));
      rows.insert(rows.end(), std::make_move_iterator(b.rows.begin()), std::make_move_iterator(b.rows.end()));
    }
    bool ok = true;
    try {
      write(accepted, message_ids, rows);
    } catch (const std::exception& e) {
      // The spool and the status files hold the truth: callers keep their
      // files when told the rows are not written, and the next start writes
      // them again (restore_from_spool for accepted messages).
      ok = false;
      log_error(std::string("database: records not written: ") + e.what());
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

int64_t database::accepted_count() {
  std::lock_guard lock(mutex_);
  sqlite3_stmt* st = nullptr;
  int64_t n = -1;
  if (sqlite3_prepare_v2(db_, "SELECT COUNT(*) FROM messages", -1, &st, nullptr) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
    n = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return n;
}

}  // namespace sealgate::gateway

namespace sealgate::gateway {

std::vector<std::string> database::unrecorded(const std::vector<std::string>& ids) {
  std::set<std::string> known;
  {
    std::lock_guard lock(mutex_);
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db_, "SELECT queue_id FROM messages", -1, &st, nullptr) == SQLITE_OK)
      while (sqlite3_step(st) == SQLITE_ROW) known.insert(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)));
    sqlite3_finalize(st);
  }
  std::vector<std::string> missing;
  for (const auto& id : ids)
    if (!known.count(id)) missing.push_back(id);
  return missing;
}

}  // namespace sealgate::gateway
