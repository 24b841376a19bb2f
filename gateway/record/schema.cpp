// Statements derived from the schema description, and the migration runner;
// see schema.hpp.
#include "gateway/record/schema.hpp"

#include <sqlite3.h>

#include <stdexcept>

#include "gateway/record/sqlite.hpp"

namespace sealgate::gateway {

namespace {

// The description is checked when this file compiles: migrations numbered
// 1..N, every table, column and index born in one of them, no column older
// than its table, no column name twice in a table, and every column added to
// an existing table addable by ALTER TABLE (SQLite refuses NOT NULL there
// without a DEFAULT).
consteval bool valid_version(int v) { return v >= 1 && v <= schema::newest_version; }

consteval bool description_is_consistent() {
  for (int i = 0; i < schema::newest_version; ++i)
    if (schema::migrations[i].version != i + 1) return false;
  for (const auto& t : schema::tables) {
    if (!valid_version(t.since)) return false;
    for (const auto& c : t.columns) {
      if (!valid_version(c.since) || c.since < t.since || t.count(c.name) != 1) return false;
      if (c.since > t.since && c.type.find("NOT NULL") != std::string_view::npos &&
          c.type.find("DEFAULT") == std::string_view::npos)
        return false;
    }
  }
  for (const auto& x : schema::indexes) {
    bool table_known = false;
    for (const auto& t : schema::tables)
      if (t.name == x.table) table_known = t.since <= x.since;
    if (!table_known || !valid_version(x.since)) return false;
  }
  return true;
}
static_assert(description_is_consistent(), "gateway/record/schema.hpp: the schema description contradicts itself");

std::string create_table(const table_def& t, int version) {
  std::string sql = "CREATE TABLE " + std::string(t.name) + "(";
  const char* separator = "\n    ";
  for (const auto& c : t.columns) {
    if (c.since > version) continue;
    sql += separator + std::string(c.name) + " " + std::string(c.type);
    separator = ",\n    ";
  }
  if (!t.constraints.empty()) sql += separator + std::string(t.constraints);
  return sql + ")";
}

const column_def& column_of(const table_def& t, std::string_view name) {
  if (const auto* c = t.find(name)) return *c;
  throw std::logic_error("database: table " + std::string(t.name) + " has no column " + std::string(name));
}

// One row: the last migration run (migration 1 creates the table, empty).
void record_version(sqlite3* db, int version) {
  sqlite::statement set(db, version == 1 ? insert_statement(schema::schema_version, "INSERT")
                                         : "UPDATE schema_version SET version = :version");
  set.bind("version", static_cast<int64_t>(version));
  set.run();
}

}  // namespace

std::vector<std::string> migration_statements(int version) {
  std::vector<std::string> out;
  for (const auto& t : schema::tables) {
    if (t.since == version) {
      out.push_back(create_table(t, version));
      continue;
    }
    for (const auto& c : t.columns)
      if (c.since == version && t.since < version)
        out.push_back("ALTER TABLE " + std::string(t.name) + " ADD COLUMN " + std::string(c.name) + " " +
                      std::string(c.type));
  }
  for (const auto& x : schema::indexes)
    if (x.since == version)
      out.push_back("CREATE INDEX " + std::string(x.name) + " ON " + std::string(x.table) + "(" +
                    std::string(x.columns) + ")");
  return out;
}

std::string insert_statement(const table_def& table, std::string_view verb,
                             std::initializer_list<std::string_view> columns) {
  std::string names, values;
  auto add = [&](std::string_view name) {
    const char* comma = names.empty() ? "" : ", ";
    names += comma + std::string(name);
    values += comma + (":" + std::string(name));
  };
  if (columns.size() == 0)
    for (const auto& c : table.columns) add(c.name);
  for (auto name : columns) add(column_of(table, name).name);
  return std::string(verb) + " INTO " + std::string(table.name) + "(" + names + ") VALUES(" + values + ")";
}

std::string select_statement(const table_def& table, std::string_view rest) {
  std::string sql = "SELECT ";
  for (const auto& c : table.columns) sql += (&c == table.columns.data() ? "" : ", ") + std::string(c.name);
  return sql + " FROM " + std::string(table.name) + " " + std::string(rest);
}

int stored_schema_version(sqlite3* db) {
  sqlite::statement has_table(db, "SELECT 1 AS found FROM sqlite_master WHERE type = 'table' AND name = :name");
  has_table.bind("name", schema::schema_version.name);
  if (!has_table.next_row()) return 0;
  sqlite::statement version(db, "SELECT MAX(version) AS version FROM schema_version");
  return version.next_row() ? static_cast<int>(version.integer("version")) : 0;
}

void upgrade_schema(sqlite3* db, const std::filesystem::path& file) {
  int found = stored_schema_version(db);
  if (found > schema::newest_version)
    throw std::runtime_error(file.string() + ": schema version " + std::to_string(found) +
                             " is newer than this sealgate knows (" + std::to_string(schema::newest_version) +
                             "); run the sealgate that wrote it");
  for (const auto& m : schema::migrations) {
    if (m.version <= found) continue;
    // IMMEDIATE takes the write lock first, so that of two processes opening
    // an old file at once (the gateway and `sealgate queue delete`) the second
    // waits, then finds the migration done instead of running it again.
    sqlite::exec(db, "BEGIN IMMEDIATE");
    try {
      if (stored_schema_version(db) < m.version) {
        for (const auto& sql : migration_statements(m.version)) sqlite::exec(db, sql);
        record_version(db, m.version);
      }
      sqlite::exec(db, "COMMIT");
    } catch (const std::exception& e) {
      sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
      throw std::runtime_error(file.string() + ": schema migration " + std::to_string(m.version) + " (" +
                               std::string(m.what) + ") failed: " + e.what());
    }
  }
}

}  // namespace sealgate::gateway
