// The SQLite engine of sql.hpp: a file, its one write lock (BEGIN IMMEDIATE)
// and a busy timeout shared by the gateway and the command line.
#include <sqlite3.h>

#include "common/sql.hpp"
#include "common/sql_engines.hpp"

namespace sealgate::sql {

namespace {

[[noreturn]] void fail(sqlite3* db) {
  int code = sqlite3_extended_errcode(db);
  bool busy = (code & 0xFF) == SQLITE_BUSY || (code & 0xFF) == SQLITE_LOCKED;
  throw error(std::string("database: ") + sqlite3_errmsg(db), "", false, busy);
}

struct close_connection {
  void operator()(sqlite3* db) const noexcept { sqlite3_close(db); }
};
struct finalize_statement {
  void operator()(sqlite3_stmt* st) const noexcept { sqlite3_finalize(st); }
};

class sqlite_statement final : public statement_backend {
 public:
  sqlite_statement(sqlite3* db, const std::string& sql) : db_(db) {
    sqlite3_stmt* raw = nullptr;
    if (sqlite3_prepare_v2(db, sql.c_str(), static_cast<int>(sql.size()), &raw, nullptr) != SQLITE_OK) fail(db);
    handle_.reset(raw);
    for (int i = 1; i <= sqlite3_bind_parameter_count(raw); ++i) {
      const char* name = sqlite3_bind_parameter_name(raw, i);
      // Only ":name" parameters: a "?" would have no name to be bound by.
      if (!name || name[0] != ':') throw std::logic_error("database: unnamed parameter in " + sql);
      parameters_.emplace_back(name + 1);
    }
    for (int c = 0; c < sqlite3_column_count(raw); ++c) columns_.emplace_back(sqlite3_column_name(raw, c));
  }

  const std::vector<std::string>& parameters() const override { return parameters_; }
  void bind_text(size_t i, std::string_view text) override {
    if (sqlite3_bind_text(handle_.get(), position(i), text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT) !=
        SQLITE_OK)
      fail(db_);
  }
  void bind_integer(size_t i, int64_t value) override {
    if (sqlite3_bind_int64(handle_.get(), position(i), value) != SQLITE_OK) fail(db_);
  }
  void bind_blob(size_t i, std::string_view bytes) override {
    // sqlite3_bind_blob binds NULL for a null pointer, which an empty
    // string_view may have: zero bytes are not a missing value.
    static const char empty = 0;
    const char* data = bytes.data() ? bytes.data() : &empty;
    if (sqlite3_bind_blob64(handle_.get(), position(i), data, bytes.size(), SQLITE_TRANSIENT) != SQLITE_OK) fail(db_);
  }
  void bind_null(size_t i) override {
    if (sqlite3_bind_null(handle_.get(), position(i)) != SQLITE_OK) fail(db_);
  }
  bool step() override {
    int rc = sqlite3_step(handle_.get());
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) {
      changes_ = sqlite3_changes64(db_);
      return false;
    }
    fail(db_);
  }
  void reset() override {
    // After the reset, which completes a statement whose rows (RETURNING)
    // were not all read: SQLite counts its changes then.
    sqlite3_reset(handle_.get());
    changes_ = sqlite3_changes64(db_);
  }
  int64_t changes() const override { return changes_; }
  const std::vector<std::string>& columns() const override { return columns_; }
  bool is_null(size_t c) const override { return sqlite3_column_type(handle_.get(), column(c)) == SQLITE_NULL; }
  int64_t integer(size_t c) const override { return sqlite3_column_int64(handle_.get(), column(c)); }
  std::string text(size_t c) const override {
    auto* t = sqlite3_column_text(handle_.get(), column(c));
    // By length, not up to the first NUL (sqlite3_column_bytes after _text).
    return t ? std::string(reinterpret_cast<const char*>(t),
                           static_cast<size_t>(sqlite3_column_bytes(handle_.get(), column(c))))
             : "";
  }
  std::string blob(size_t c) const override {
    const void* b = sqlite3_column_blob(handle_.get(), column(c));
    auto n = static_cast<size_t>(sqlite3_column_bytes(handle_.get(), column(c)));
    return b ? std::string(static_cast<const char*>(b), n) : "";
  }
  std::string sql() const override { return sqlite3_sql(handle_.get()); }

 private:
  static int position(size_t i) { return static_cast<int>(i + 1); }  // sqlite3_bind_* count from 1
  static int column(size_t c) { return static_cast<int>(c); }
  sqlite3* db_;
  std::unique_ptr<sqlite3_stmt, finalize_statement> handle_;
  std::vector<std::string> parameters_;
  std::vector<std::string> columns_;
  int64_t changes_ = 0;
};

class sqlite_connection final : public connection {
 public:
  explicit sqlite_connection(std::unique_ptr<sqlite3, close_connection> db) : db_(std::move(db)) {}
  sql::engine engine() const override { return engine::sqlite; }
  void exec(std::string_view sql) override {
    char* err = nullptr;
    if (sqlite3_exec(db_.get(), std::string(sql).c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      std::string why = err ? err : sqlite3_errmsg(db_.get());
      sqlite3_free(err);
      int code = sqlite3_extended_errcode(db_.get()) & 0xFF;
      throw error("database: " + why, "", false, code == SQLITE_BUSY || code == SQLITE_LOCKED);
    }
  }
  std::unique_ptr<statement_backend> prepare(const std::string& sql) override {
    return std::make_unique<sqlite_statement>(db_.get(), sql);
  }
  void begin(transaction_mode mode) override { exec(mode == transaction_mode::immediate ? "BEGIN IMMEDIATE" : "BEGIN"); }
  bool in_transaction() const override { return !sqlite3_get_autocommit(db_.get()); }
  std::string schema() const override { return "main"; }

 private:
  std::unique_ptr<sqlite3, close_connection> db_;
};

}  // namespace

connection_ptr open_sqlite(const std::filesystem::path& file, int sqlite_flags) {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(file.c_str(), &raw, sqlite_flags, nullptr);
  // Owned from here: sqlite3_open_v2 allocates a handle even when it fails.
  std::unique_ptr<sqlite3, close_connection> db(raw);
  if (rc != SQLITE_OK)
    throw error(file.string() + ": " + (db ? sqlite3_errmsg(db.get()) : "cannot open"), "", false, false);
  sqlite3_busy_timeout(db.get(), 5000);
  return std::make_unique<sqlite_connection>(std::move(db));
}

connection_ptr open_sqlite_file(const std::filesystem::path& file, access how) {
  return open_sqlite(file, how == access::read_only ? SQLITE_OPEN_READONLY
                                                     : SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX);
}

}  // namespace sealgate::sql
