// Owned SQLite handles, named parameters and columns, transactions; see
// sqlite.hpp.
#include "common/sqlite.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <stdexcept>

namespace sealgate::sqlite {

void close_connection::operator()(sqlite3* db) const noexcept { sqlite3_close(db); }
void finalize_statement::operator()(sqlite3_stmt* st) const noexcept { sqlite3_finalize(st); }

connection open(const std::filesystem::path& file, int flags) {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(file.c_str(), &raw, flags, nullptr);
  // Owned from here: sqlite3_open_v2 allocates a handle even when it fails.
  connection db(raw);
  if (rc != SQLITE_OK) throw std::runtime_error(file.string() + ": " + (db ? sqlite3_errmsg(db.get()) : "cannot open"));
  sqlite3_busy_timeout(db.get(), 5000);
  return db;
}

connection open_read_write(const std::filesystem::path& file) {
  return open(file, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX);
}

connection open_read_only(const std::filesystem::path& file) { return open(file, SQLITE_OPEN_READONLY); }

void exec(sqlite3* db, std::string_view sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, std::string(sql).c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string why = err ? err : sqlite3_errmsg(db);
    sqlite3_free(err);
    throw std::runtime_error("database: " + why);
  }
}

statement::statement(sqlite3* db, const std::string& sql) : db_(db) {
  sqlite3_stmt* raw = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), static_cast<int>(sql.size()), &raw, nullptr) != SQLITE_OK)
    throw std::runtime_error(std::string("database: ") + sqlite3_errmsg(db));
  handle_.reset(raw);
  for (int i = 1; i <= sqlite3_bind_parameter_count(raw); ++i) {
    const char* name = sqlite3_bind_parameter_name(raw, i);
    // Only ":name" parameters: a "?" would have no name to be bound by.
    if (!name || name[0] != ':') throw std::logic_error("database: unnamed parameter in " + sql);
    parameters_.emplace_back(name + 1);
  }
  bound_.assign(parameters_.size(), false);
  for (int c = 0; c < sqlite3_column_count(raw); ++c) columns_.emplace_back(sqlite3_column_name(raw, c));
}

void statement::fail() const { throw std::runtime_error(std::string("database: ") + sqlite3_errmsg(db_)); }

int statement::parameter_index(std::string_view name) {
  // Binding after a query that was not read to its end starts a new one
  // (SQLite refuses bindings on a running statement), with every parameter
  // to be bound again.
  if (stepping_) {
    sqlite3_reset(handle_.get());
    stepping_ = false;
    bound_.assign(bound_.size(), false);
  }
  auto it = std::find(parameters_.begin(), parameters_.end(), name);
  if (it == parameters_.end())
    throw std::logic_error("database: no parameter :" + std::string(name) + " in " + sqlite3_sql(handle_.get()));
  auto i = static_cast<size_t>(it - parameters_.begin());
  bound_[i] = true;
  return static_cast<int>(i + 1);
}

void statement::bind(std::string_view parameter, std::string_view text) {
  if (sqlite3_bind_text(handle_.get(), parameter_index(parameter), text.data(), static_cast<int>(text.size()),
                        SQLITE_TRANSIENT) != SQLITE_OK)
    fail();
}

void statement::bind(std::string_view parameter, int64_t value) {
  if (sqlite3_bind_int64(handle_.get(), parameter_index(parameter), value) != SQLITE_OK) fail();
}

void statement::bind_or_null(std::string_view parameter, std::string_view text) {
  if (!text.empty()) return bind(parameter, text);
  bind_null(parameter);
}

void statement::bind_blob(std::string_view parameter, std::string_view bytes) {
  // sqlite3_bind_blob binds NULL for a null pointer, which an empty
  // string_view may have: a zero-length BLOB is not a missing value.
  static const char empty = 0;
  const char* data = bytes.data() ? bytes.data() : &empty;
  if (sqlite3_bind_blob64(handle_.get(), parameter_index(parameter), data, bytes.size(), SQLITE_TRANSIENT) !=
      SQLITE_OK)
    fail();
}

void statement::bind_null(std::string_view parameter) {
  if (sqlite3_bind_null(handle_.get(), parameter_index(parameter)) != SQLITE_OK) fail();
}

void statement::require_all_bound() const {
  auto unbound = std::find(bound_.begin(), bound_.end(), false);
  if (unbound != bound_.end())
    throw std::logic_error("database: parameter :" + parameters_[static_cast<size_t>(unbound - bound_.begin())] +
                           " not bound in " + sqlite3_sql(handle_.get()));
}

bool statement::next_row() {
  // A SELECT's forgotten parameter would be NULL and match nothing: as loud
  // as run()'s. Checked once per query, not per row.
  if (!stepping_) require_all_bound();
  stepping_ = true;
  int rc = sqlite3_step(handle_.get());
  if (rc == SQLITE_ROW) return true;
  stepping_ = false;
  bound_.assign(bound_.size(), false);
  if (rc == SQLITE_DONE) {
    // Ready for the next bindings (an INSERT ... RETURNING is read to its
    // end, then bound again; SQLite refuses bindings until a reset).
    sqlite3_reset(handle_.get());
    return false;
  }
  std::string why = sqlite3_errmsg(db_);
  sqlite3_reset(handle_.get());
  throw std::runtime_error("database: " + why);
}

void statement::run() {
  require_all_bound();
  int rc = sqlite3_step(handle_.get());
  std::string why = rc == SQLITE_DONE || rc == SQLITE_ROW ? "" : sqlite3_errmsg(db_);
  sqlite3_reset(handle_.get());
  bound_.assign(bound_.size(), false);
  if (!why.empty()) throw std::runtime_error("database: " + why);
}

int64_t statement::changes() const { return sqlite3_changes64(db_); }

int64_t statement::run_returning(std::string_view column) {
  if (!next_row()) throw std::logic_error(std::string("database: no row returned by ") + sqlite3_sql(handle_.get()));
  int64_t value = integer(column);
  while (next_row()) {
  }  // to its end: the statement is then ready for the next bindings
  return value;
}

int statement::column_index(std::string_view name) const {
  auto it = std::find(columns_.begin(), columns_.end(), name);
  if (it == columns_.end())
    throw std::logic_error("database: no column " + std::string(name) + " in " + sqlite3_sql(handle_.get()));
  return static_cast<int>(it - columns_.begin());
}

std::string statement::text(std::string_view column) const {
  int c = column_index(column);
  auto* t = sqlite3_column_text(handle_.get(), c);
  // By length, not up to the first NUL (sqlite3_column_bytes after _text).
  return t ? std::string(reinterpret_cast<const char*>(t), static_cast<size_t>(sqlite3_column_bytes(handle_.get(), c)))
           : "";
}

std::string statement::blob(std::string_view column) const {
  int c = column_index(column);
  const void* b = sqlite3_column_blob(handle_.get(), c);
  auto n = static_cast<size_t>(sqlite3_column_bytes(handle_.get(), c));
  return b ? std::string(static_cast<const char*>(b), n) : "";
}

bool statement::is_null(std::string_view column) const {
  return sqlite3_column_type(handle_.get(), column_index(column)) == SQLITE_NULL;
}

int64_t statement::integer(std::string_view column) const {
  return sqlite3_column_int64(handle_.get(), column_index(column));
}

std::optional<int64_t> statement::optional_integer(std::string_view column) const {
  int c = column_index(column);
  if (sqlite3_column_type(handle_.get(), c) == SQLITE_NULL) return std::nullopt;
  return sqlite3_column_int64(handle_.get(), c);
}

transaction::transaction(sqlite3* db, mode m) : db_(db) {
  exec(db_, m == mode::immediate ? "BEGIN IMMEDIATE" : "BEGIN");
}

transaction::~transaction() {
  // A failed COMMIT may have ended the transaction already (SQLite rolls back
  // on some errors): roll back only what is still open, and never throw here.
  if (!committed_ && !sqlite3_get_autocommit(db_)) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
}

void transaction::commit() {
  exec(db_, "COMMIT");
  committed_ = true;
}

}  // namespace sealgate::sqlite
