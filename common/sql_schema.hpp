// A database described once: its tables with their columns in order, its
// indexes, and the numbered migrations that added each. CREATE, ALTER,
// INSERT and SELECT statements are derived from the description, and code
// names columns, never positions. Columns are never renamed or dropped:
// operators and tests read them by name with sqlite3. The gateway's record
// and the portal store each describe their own file with these.
#pragma once
#include <filesystem>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/sql.hpp"


namespace sealgate::sql {

struct column_def {
  std::string_view name;
  // Type and constraints as SQLite's CREATE TABLE has them. PostgreSQL's
  // DDL maps them (postgresql_type): INTEGER is BIGINT, BLOB is BYTEA, and
  // an INTEGER PRIMARY KEY an identity column.
  std::string_view type;
  int since = 1;  // the migration that added the column
};

struct table_def {
  std::string_view name;
  std::span<const column_def> columns;
  std::string_view constraints;  // table constraints after the columns, "" for none
  int since = 1;                 // the migration that created the table
  // The table is read by SQLite's implicit rowid (it has no key column of
  // its own): PostgreSQL, which has none, gets a column of that name, an
  // identity, so that the same queries run on both.
  bool rowid = false;

  constexpr const column_def* find(std::string_view column) const {
    for (const auto& c : columns)
      if (c.name == column) return &c;
    return nullptr;
  }
  // For the compile-time checks: by name, not by address (with
  // -fsanitize=address, g++ cannot compare a global's address in a constant
  // expression).
  constexpr size_t count(std::string_view column) const {
    size_t n = 0;
    for (const auto& c : columns) n += c.name == column ? 1 : 0;
    return n;
  }
};

struct index_def {
  std::string_view name, table, columns;
  int since = 1;
};

// A schema version: what the database holds once its migration has run.
// backfill is SQL of its own for what the description cannot say, run after
// the derived statements in the same transaction: filling columns it added
// to rows written before it. It is SQLite's SQL, for files that have such
// rows; a database another backend creates from nothing has none, and skips it.
struct migration_def {
  int version;
  std::string_view what;
  std::string_view backfill = {};
};

// The version a file's schema is at: one row. Every description lists it
// among its tables, created by migration 1.
inline constexpr column_def schema_version_columns[] = {{"version", "INTEGER NOT NULL"}};
inline constexpr table_def schema_version_table{"schema_version", schema_version_columns, "", 1};

// One database: its tables in the order a fresh file creates them, its
// indexes, and its migrations, numbered from 1 with no gap (a database
// records the last one it ran). A change the description cannot say gets
// SQL of its own: a backfill (migration_def); a table rebuilt to drop a
// constraint would need more.
struct schema_def {
  std::span<const table_def> tables;
  std::span<const index_def> indexes;
  std::span<const migration_def> migrations;
  constexpr int newest_version() const { return static_cast<int>(migrations.size()); }
};

// For a static_assert beside each description: migrations numbered 1..N,
// every table, column and index born in one of them, no column older than
// its table, no column name twice in a table, every column added to an
// existing table addable by ALTER TABLE (SQLite refuses NOT NULL there
// without a DEFAULT), and the schema_version table born with migration 1.
constexpr bool description_is_consistent(const schema_def& s) {
  auto valid_version = [&](int v) { return v >= 1 && v <= s.newest_version(); };
  for (int i = 0; i < s.newest_version(); ++i)
    if (s.migrations[static_cast<size_t>(i)].version != i + 1) return false;
  bool has_version_table = false;
  for (const auto& t : s.tables) {
    if (!valid_version(t.since)) return false;
    if (t.name == schema_version_table.name) has_version_table = t.since == 1 && t.count("version") == 1;
    for (const auto& c : t.columns) {
      if (!valid_version(c.since) || c.since < t.since || t.count(c.name) != 1) return false;
      if (c.since > t.since && c.type.find("NOT NULL") != std::string_view::npos &&
          c.type.find("DEFAULT") == std::string_view::npos)
        return false;
    }
  }
  for (const auto& x : s.indexes) {
    bool table_known = false;
    for (const auto& t : s.tables)
      if (t.name == x.table) table_known = t.since <= x.since;
    if (!table_known || !valid_version(x.since)) return false;
  }
  return has_version_table;
}

// The statements of one migration, derived from the description: the tables
// it creates (with the columns they had then), the columns it adds to older
// tables, the indexes it creates. Not its backfill, nor the schema_version
// update.
std::vector<std::string> migration_statements(const schema_def& s, int version, engine e = engine::sqlite);

// A column's type and constraints as PostgreSQL's DDL says them.
std::string postgresql_type(std::string_view sqlite_type);

// What an INSERT does with a row whose key (or another unique column) is
// taken, in the syntax SQLite (3.24 and later) and PostgreSQL share:
//   error       a plain INSERT: the statement fails;
//   do_nothing  ON CONFLICT DO NOTHING: the row there is kept, changes() is 0
//               (what SQLite's INSERT OR IGNORE did);
//   update      ON CONFLICT (primary key) DO UPDATE SET c = excluded.c for
//               every inserted column outside the key: the row there takes
//               the new values (what INSERT OR REPLACE did for a table whose
//               only unique columns are its key, when every column is given).
enum class on_conflict { error, do_nothing, update };

// The columns of the table's primary key, from the description: a column
// whose type says PRIMARY KEY, or the table constraint PRIMARY KEY(a, b).
// Throws std::logic_error for a table without one.
std::vector<std::string> primary_key(const table_def& table);

// INSERT INTO table(columns) VALUES(:column, ...), then the conflict clause;
// every column of the table when columns is empty. Throws std::logic_error
// for a column the table does not have (and for update, a table without a
// primary key). Append " RETURNING <id> AS row_id" to read the id of the row
// added (statement::run_returning), rather than a backend's last-row call.
std::string insert_statement(const table_def& table, on_conflict conflict,
                             std::initializer_list<std::string_view> columns = {});
// SELECT every column of the table (read them by name) FROM table, then rest
// (a WHERE and ORDER BY clause, with :parameters).
std::string select_statement(const table_def& table, std::string_view rest);

// The version the database's schema_version table holds; 0 for a database
// without one (a new, empty file or PostgreSQL schema).
int stored_schema_version(sql::connection* db);

// For a reader, which never creates or upgrades (it may run as a user that
// cannot write, while the gateway has the database open): throws
// std::runtime_error naming place unless the schema is at exactly
// s.newest_version() (an older one is upgraded by starting the gateway).
void require_newest_schema(sql::connection* db, const schema_def& s, const std::string& place);

// Brings the database to s.newest_version(): each migration it has not run
// yet, in order, in one transaction each (with its backfill and its
// schema_version update),
// so a crash leaves it at some version, never between two. A database newer
// than this code is refused rather than written in a shape this code does
// not know. The transactions are immediate (sql.hpp): of several processes
// or nodes opening an old database at once, one runs each migration and the
// others find it done. Backfills are SQLite's own and run there only: a
// PostgreSQL database is created at a version that has them already. Throws
// std::runtime_error naming the database (place) and the migration.
void upgrade_schema(sql::connection* db, const schema_def& s, const std::string& place);

}  // namespace sealgate::sql
