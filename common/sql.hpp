// The few SQL calls sealgate makes, on either engine it stores its record and
// portal in: SQLite (a file, the default, no setup) or PostgreSQL (a
// connection string, shared by several nodes). A connection, its statements
// and its transactions end themselves however a constructor or a query ends,
// and parameters and result columns are named, never counted.
//
// The queries are written once, in the SQL both engines accept (ON CONFLICT,
// RETURNING, COALESCE, COUNT(*) FILTER, CAST(... AS BIGINT)); what differs
// (connection setup, how a writer excludes the others, DDL types, schema
// introspection) is behind engine(). No header here includes <sqlite3.h> or
// <libpq-fe.h>, so SQL stays inside the libraries that own a database.
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace sealgate::sql {

enum class engine { sqlite, postgresql };

// Where a database is, as the operator wrote it in `database:`: a
// PostgreSQL connection string (a postgresql:// or postgres:// URI, or
// "key=value ..." words) or, anything else, the path of a SQLite file.
struct location {
  location() = default;
  // A path is a SQLite file (so that a test or a tool can say just the path).
  location(std::filesystem::path sqlite_file) : file(std::move(sqlite_file)) {}  // NOLINT: implicit on purpose

  engine kind = engine::sqlite;
  std::filesystem::path file;  // SQLite
  std::string conninfo;        // PostgreSQL

  static location parse(const std::string& text);
  static location sqlite_file(std::filesystem::path file);
  bool is_postgresql() const { return kind == engine::postgresql; }
  // Whether there may be a database to read: a SQLite file that exists, or
  // any PostgreSQL server (connecting says the rest).
  bool present() const { return is_postgresql() || std::filesystem::exists(file); }
  // For logs and messages: the path, or the connection string without its
  // password.
  std::string describe() const;
};

// A failed statement or connection. sqlstate is PostgreSQL's five-character
// code ("" from SQLite); lost_connection() says the server went away (retry on
// a new connection), retryable() that the same transaction may succeed if run
// again (a deadlock, a lock timeout, a serialisation failure, SQLite's busy).
class error : public std::runtime_error {
 public:
  error(const std::string& what, std::string sqlstate, bool lost, bool retry)
      : std::runtime_error(what), sqlstate_(std::move(sqlstate)), lost_(lost), retry_(retry) {}
  const std::string& sqlstate() const { return sqlstate_; }
  bool lost_connection() const { return lost_; }
  bool retryable() const { return retry_; }

 private:
  std::string sqlstate_;
  bool lost_;
  bool retry_;
};

// What one engine does with a prepared statement; parameters and columns by
// position (0-based). sql::statement below names them.
class statement_backend {
 public:
  virtual ~statement_backend() = default;
  // ":name" parameters in order of first appearance, without the ':'.
  virtual const std::vector<std::string>& parameters() const = 0;
  virtual void bind_text(size_t i, std::string_view text) = 0;
  virtual void bind_integer(size_t i, int64_t value) = 0;
  virtual void bind_blob(size_t i, std::string_view bytes) = 0;
  virtual void bind_null(size_t i) = 0;
  // Runs the statement (the first call after bindings) or moves to the next
  // row: true with a row to read.
  virtual bool step() = 0;
  // Forgets the current run; the next step() runs again with new bindings.
  virtual void reset() = 0;
  virtual int64_t changes() const = 0;
  virtual const std::vector<std::string>& columns() const = 0;  // of the current run
  virtual bool is_null(size_t c) const = 0;
  virtual int64_t integer(size_t c) const = 0;
  virtual std::string text(size_t c) const = 0;
  virtual std::string blob(size_t c) const = 0;
  virtual std::string sql() const = 0;
};

enum class transaction_mode {
  // Reads, or writes that need no read-modify-write.
  deferred,
  // Excludes every other writer of this database until commit, so that what
  // a transaction reads first (the audit chain's head, a version number) is
  // still true when it writes. SQLite: BEGIN IMMEDIATE (its one write lock,
  // waited for under the busy timeout); PostgreSQL: BEGIN and a transaction
  // advisory lock named after the schema, the same on every node.
  immediate,
};

class connection {
 public:
  virtual ~connection() = default;
  virtual sql::engine engine() const = 0;
  // SQL that returns no rows; several statements allowed.
  virtual void exec(std::string_view sql) = 0;
  virtual std::unique_ptr<statement_backend> prepare(const std::string& sql) = 0;
  virtual void begin(transaction_mode mode) = 0;
  // True between BEGIN and its COMMIT or ROLLBACK (false also after the
  // engine ended a failed transaction itself).
  virtual bool in_transaction() const = 0;
  // The schema (PostgreSQL) this connection's unqualified names live in;
  // "main" for SQLite.
  virtual std::string schema() const = 0;
};
using connection_ptr = std::unique_ptr<connection>;

enum class access {
  read_only,
  read_write,  // never creates a SQLite file (the caller makes it 0600 first)
};

// SQLite: the file, with a 5 s busy timeout (the gateway and the command line
// share it). PostgreSQL: a connection whose unqualified names are in schema
// (created when access is read_write), with lock, statement and idle timeouts
// so a stalled node releases what it holds. Throws sql::error naming the
// place.
connection_ptr open(const location& where, access how, std::string_view schema);
// A SQLite file with sqlite3_open_v2's flags, for the callers that must
// choose them (creating a file, read-only opens of a snapshot).
connection_ptr open_sqlite(const std::filesystem::path& file, int sqlite_flags);

void exec(connection* db, std::string_view sql);

// One prepared statement. Parameters are bound by name (":status" in the SQL
// is bound as "status") and every one must be bound before each run, so a
// column the SQL names but the caller forgot fails loudly instead of becoming
// NULL (which ON CONFLICT DO NOTHING would turn into a silently dropped row).
// Result columns are read by the name the SELECT gives them.
class statement {
 public:
  statement() = default;
  // Throws sql::error when the SQL does not prepare (SQLite; PostgreSQL
  // prepares at the first run, when the parameters' types are known).
  statement(connection* db, const std::string& sql);

  void bind(std::string_view parameter, std::string_view text);
  void bind(std::string_view parameter, int64_t value);
  // An empty text is stored as NULL (the columns that are NULL when unknown).
  void bind_or_null(std::string_view parameter, std::string_view text);
  // Bytes, stored as a BLOB / BYTEA (any byte, NUL included; an empty one is
  // zero bytes, not NULL).
  void bind_blob(std::string_view parameter, std::string_view bytes);
  void bind_null(std::string_view parameter);

  // Steps once: true with a row to read, false when done. Throws on an error,
  // and (std::logic_error) when the first step finds a parameter unbound.
  bool next_row();
  // Runs a statement that returns no rows and makes it ready for the next
  // bindings. Throws on an error, and (std::logic_error) when a parameter was
  // left unbound.
  void run();
  // Runs a statement that returns one row, an INSERT ... RETURNING id AS
  // row_id, and gives that row's integer column: the id of the row added.
  // Throws as run(), and std::logic_error when no row comes back.
  int64_t run_returning(std::string_view column);
  // Rows changed by the last run().
  int64_t changes() const;

  // Columns of the current row; NULL reads as "" or nullopt. Throws
  // std::logic_error for a name the SELECT does not have.
  std::string text(std::string_view column) const;
  std::string blob(std::string_view column) const;  // every byte of a BLOB (or TEXT)
  bool is_null(std::string_view column) const;
  int64_t integer(std::string_view column) const;
  std::optional<int64_t> optional_integer(std::string_view column) const;

 private:
  size_t parameter_index(std::string_view name);  // marks it bound
  size_t column_index(std::string_view name) const;
  void require_all_bound() const;
  std::unique_ptr<statement_backend> backend_;
  std::vector<bool> bound_;
  bool stepping_ = false;  // between the first next_row() and the one that ends the rows
};

// One transaction, rolled back unless commit() ran: an exception anywhere
// between BEGIN and COMMIT leaves the database as it was, and the connection
// ready for the next transaction.
class transaction {
 public:
  using mode = transaction_mode;
  transaction(connection* db, mode m);
  transaction(const transaction&) = delete;
  transaction& operator=(const transaction&) = delete;
  ~transaction();
  // Throws sql::error; the transaction is then rolled back.
  void commit();

 private:
  connection* db_;
  bool committed_ = false;
};

// Text as PostgreSQL's TEXT accepts it: valid UTF-8 without NUL. Every
// invalid sequence and NUL becomes U+FFFD, so that one odd byte in a remote
// reply cannot make a batch of records fail forever.
std::string storable_text(std::string_view text);

}  // namespace sealgate::sql
