// SQLite audit store; see database.hpp.
#include "gateway/database.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <set>
#include <stdexcept>

namespace sealgate::gateway {

database::database(const std::filesystem::path& file) {
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
  const char* sql =
      "INSERT OR IGNORE INTO messages(queue_id, received_at, listener, client_address, helo, auth_user, tls_protocol,"
      " tls_cipher, sender, recipients, size) VALUES(?,?,?,?,?,?,?,?,?,?,?)";
  if (sqlite3_prepare_v2(db_, sql, -1, &insert_, nullptr) != SQLITE_OK)
    throw std::runtime_error(file.string() + ": " + sqlite3_errmsg(db_));
  for (const char* suffix : {"-wal", "-shm"}) {
    auto side = file.string() + suffix;
    ::chmod(side.c_str(), 0600);
  }
}

database::~database() {
  sqlite3_finalize(insert_);
  sqlite3_close(db_);
}

void database::exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "sqlite error";
    sqlite3_free(err);
    throw std::runtime_error("database: " + msg);
  }
}

void database::record_accepted(const std::vector<const spooled_envelope*>& messages) {
  std::lock_guard lock(mutex_);
  exec("BEGIN");
  for (const auto* m : messages) {
    auto text = [&](int i, const std::string& s, bool null_if_empty) {
      if (null_if_empty && s.empty()) sqlite3_bind_null(insert_, i);
      else sqlite3_bind_text(insert_, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
    };
    text(1, m->queue_id, false);
    sqlite3_bind_int64(insert_, 2, m->received);
    text(3, m->listener, false);
    text(4, m->client_address, false);
    text(5, m->helo, false);
    text(6, m->auth_user, true);
    text(7, m->tls_protocol, true);
    text(8, m->tls_cipher, true);
    text(9, m->sender, false);
    sqlite3_bind_int64(insert_, 10, static_cast<int64_t>(m->recipients.size()));
    sqlite3_bind_int64(insert_, 11, static_cast<int64_t>(m->content_size));
    sqlite3_step(insert_);
    sqlite3_reset(insert_);
  }
  exec("COMMIT");
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

size_t database::restore_from_spool(const std::filesystem::path& queue_dir, const std::vector<std::string>& ids) {
  std::set<std::string> known;
  {
    std::lock_guard lock(mutex_);
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db_, "SELECT queue_id FROM messages", -1, &st, nullptr) == SQLITE_OK)
      while (sqlite3_step(st) == SQLITE_ROW) known.insert(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)));
    sqlite3_finalize(st);
  }
  std::vector<spooled_envelope> missing;
  for (const auto& id : ids) {
    if (known.count(id)) continue;
    std::ifstream in(queue_dir / id, std::ios::binary);
    std::string head(64 * 1024, '\0');
    in.read(head.data(), static_cast<std::streamsize>(head.size()));
    head.resize(static_cast<size_t>(in.gcount()));
    spooled_envelope e;
    size_t offset = 0;
    if (!decode_envelope(head, e, offset)) continue;  // recover() already set damaged files aside
    std::error_code ec;
    auto size = std::filesystem::file_size(queue_dir / id, ec);
    e.content_size = ec ? 0 : size - offset;
    missing.push_back(std::move(e));
  }
  std::vector<const spooled_envelope*> pointers;
  for (const auto& e : missing) pointers.push_back(&e);
  if (!pointers.empty()) record_accepted(pointers);
  return pointers.size();
}

}  // namespace sealgate::gateway
