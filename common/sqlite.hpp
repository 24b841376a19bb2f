// The few SQLite calls sealgate makes, with ownership: a connection, its
// statements and its transactions end themselves however a constructor or a
// query ends, and parameters and result columns are named, never counted.
// Used by the gateway's record and the portal store; no header here includes
// <sqlite3.h>, so SQL stays inside the libraries that own a database.
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct sqlite3;
struct sqlite3_stmt;

namespace sealgate::sqlite {

struct close_connection {
  void operator()(sqlite3* db) const noexcept;
};
struct finalize_statement {
  void operator()(sqlite3_stmt* st) const noexcept;
};
using connection = std::unique_ptr<sqlite3, close_connection>;

// Opens file with sqlite3_open_v2's flags and a 5 s busy timeout (the gateway
// and the command line share the file). Throws std::runtime_error naming it.
connection open(const std::filesystem::path& file, int flags);
connection open_read_write(const std::filesystem::path& file);  // never creates the file
connection open_read_only(const std::filesystem::path& file);

// Runs SQL that returns no rows (several statements allowed). Throws
// std::runtime_error("database: ...").
void exec(sqlite3* db, std::string_view sql);

// One prepared statement. Parameters are bound by name (":status" in the SQL
// is bound as "status") and every one must be bound before each run, so a
// column the SQL names but the caller forgot fails loudly instead of becoming
// NULL (which a nullable column would keep without a word).
// Result columns are read by the name the SELECT gives them.
class statement {
 public:
  statement() = default;
  // Throws std::runtime_error("database: ...") when the SQL does not prepare.
  statement(sqlite3* db, const std::string& sql);

  void bind(std::string_view parameter, std::string_view text);
  void bind(std::string_view parameter, int64_t value);
  // An empty text is stored as NULL (the columns that are NULL when unknown).
  void bind_or_null(std::string_view parameter, std::string_view text);
  // Bytes, stored as a BLOB (any byte, NUL included; an empty one is a
  // zero-length BLOB, not NULL).
  void bind_blob(std::string_view parameter, std::string_view bytes);
  void bind_null(std::string_view parameter);

  // Steps once: true with a row to read, false when done. Throws on an error,
  // and (std::logic_error) when the first step finds a parameter unbound.
  bool next_row();
  // Runs a statement that returns no rows and makes it ready for the next
  // bindings. Throws on an error, and (std::logic_error) when a parameter was
  // left unbound.
  void run();
  // Rows changed by the last run().
  int64_t changes() const;
  // Runs a statement that returns one row, an INSERT ... RETURNING id AS
  // row_id, and gives that row's integer column: the id of the row added,
  // said in SQL both SQLite (3.35 and later) and PostgreSQL accept. Throws as
  // run(), and std::logic_error when no row comes back.
  int64_t run_returning(std::string_view column);

  // Columns of the current row; NULL reads as "" or nullopt. Throws
  // std::logic_error for a name the SELECT does not have.
  std::string text(std::string_view column) const;
  std::string blob(std::string_view column) const;  // every byte of a BLOB (or TEXT)
  bool is_null(std::string_view column) const;
  int64_t integer(std::string_view column) const;
  std::optional<int64_t> optional_integer(std::string_view column) const;

 private:
  int parameter_index(std::string_view name);  // 1-based, as sqlite3_bind_*; marks it bound
  int column_index(std::string_view name) const;
  void require_all_bound() const;
  [[noreturn]] void fail() const;
  sqlite3* db_ = nullptr;
  std::unique_ptr<sqlite3_stmt, finalize_statement> handle_;
  std::vector<std::string> parameters_;  // without the ':' prefix, by index - 1
  std::vector<bool> bound_;
  bool stepping_ = false;  // between the first next_row() and the one that ends the rows
  std::vector<std::string> columns_;  // result column names, by position
};

// One transaction, rolled back unless commit() ran: an exception anywhere
// between BEGIN and COMMIT leaves the database as it was, and the connection
// ready for the next transaction.
class transaction {
 public:
  // deferred takes the write lock at the first write (readers); immediate
  // takes it at BEGIN, so that a read-modify-write cannot be overtaken by
  // another connection between its read and its write (SQLITE_BUSY instead
  // of a lost update), and waits for it under the busy timeout.
  enum class mode { deferred, immediate };
  transaction(sqlite3* db, mode m);
  transaction(const transaction&) = delete;
  transaction& operator=(const transaction&) = delete;
  ~transaction();
  // Throws std::runtime_error; the transaction is then rolled back.
  void commit();

 private:
  sqlite3* db_;
  bool committed_ = false;
};

}  // namespace sealgate::sqlite
