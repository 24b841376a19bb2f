// The few SQLite calls the record makes, with ownership: a connection and its
// statements close themselves however a constructor or a query ends, and
// parameters and result columns are named, never counted. Used by record/
// only; no header here includes <sqlite3.h>, so SQL stays inside record/.
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

namespace sealgate::gateway::sqlite {

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
// NULL (which INSERT OR IGNORE would turn into a silently dropped row).
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

  // Steps once: true with a row to read, false when done. Throws on an error.
  bool next_row();
  // Runs a statement that returns no rows and makes it ready for the next
  // bindings. Throws on an error, and (std::logic_error) when a parameter was
  // left unbound.
  void run();
  // Rows changed by the last run().
  int64_t changes() const;

  // Columns of the current row; NULL reads as "" or nullopt. Throws
  // std::logic_error for a name the SELECT does not have.
  std::string text(std::string_view column) const;
  int64_t integer(std::string_view column) const;
  std::optional<int64_t> optional_integer(std::string_view column) const;

 private:
  int parameter_index(std::string_view name);  // 1-based, as sqlite3_bind_*; marks it bound
  int column_index(std::string_view name) const;
  [[noreturn]] void fail() const;
  sqlite3* db_ = nullptr;
  std::unique_ptr<sqlite3_stmt, finalize_statement> handle_;
  std::vector<std::string> parameters_;  // without the ':' prefix, by index - 1
  std::vector<bool> bound_;
  std::vector<std::string> columns_;  // result column names, by position
};

}  // namespace sealgate::gateway::sqlite
