// Statements derived from a schema description, and the migration runner;
// see sqlite_schema.hpp.
#include "common/sqlite_schema.hpp"

#include <algorithm>
#include <stdexcept>

#include "common/sqlite.hpp"

namespace sealgate::sqlite {

namespace {

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
  statement set(db, version == 1 ? insert_statement(schema_version_table, on_conflict::error)
                                 : "UPDATE schema_version SET version = :version");
  set.bind("version", static_cast<int64_t>(version));
  set.run();
}

}  // namespace

std::vector<std::string> migration_statements(const schema_def& s, int version) {
  std::vector<std::string> out;
  for (const auto& t : s.tables) {
    if (t.since == version) {
      out.push_back(create_table(t, version));
      continue;
    }
    for (const auto& c : t.columns)
      if (c.since == version && t.since < version)
        out.push_back("ALTER TABLE " + std::string(t.name) + " ADD COLUMN " + std::string(c.name) + " " +
                      std::string(c.type));
  }
  for (const auto& x : s.indexes)
    if (x.since == version)
      out.push_back("CREATE INDEX " + std::string(x.name) + " ON " + std::string(x.table) + "(" +
                    std::string(x.columns) + ")");
  return out;
}

std::vector<std::string> primary_key(const table_def& table) {
  for (const auto& c : table.columns)
    if (c.type.find("PRIMARY KEY") != std::string_view::npos) return {std::string(c.name)};
  constexpr std::string_view constraint = "PRIMARY KEY(";
  auto at = table.constraints.find(constraint);
  if (at == std::string_view::npos)
    throw std::logic_error("database: table " + std::string(table.name) + " has no primary key");
  auto list = table.constraints.substr(at + constraint.size());
  list = list.substr(0, list.find(')'));
  std::vector<std::string> key;
  while (!list.empty()) {
    auto comma = list.find(',');
    auto name = list.substr(0, comma);
    while (!name.empty() && name.front() == ' ') name.remove_prefix(1);
    while (!name.empty() && name.back() == ' ') name.remove_suffix(1);
    key.emplace_back(column_of(table, name).name);
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
  }
  return key;
}

std::string insert_statement(const table_def& table, on_conflict conflict,
                             std::initializer_list<std::string_view> columns) {
  std::vector<std::string_view> given;
  if (columns.size() == 0)
    for (const auto& c : table.columns) given.push_back(c.name);
  for (auto name : columns) given.push_back(column_of(table, name).name);
  std::string names, values;
  for (auto name : given) {
    const char* comma = names.empty() ? "" : ", ";
    names += comma + std::string(name);
    values += comma + (":" + std::string(name));
  }
  std::string sql = "INSERT INTO " + std::string(table.name) + "(" + names + ") VALUES(" + values + ")";
  switch (conflict) {
    case on_conflict::error:
      return sql;
    case on_conflict::do_nothing:
      return sql + " ON CONFLICT DO NOTHING";
    case on_conflict::update: {
      auto key = primary_key(table);
      std::string target, set;
      for (const auto& k : key) target += (target.empty() ? "" : ", ") + k;
      for (auto name : given) {
        if (std::find(key.begin(), key.end(), name) != key.end()) continue;
        set += (set.empty() ? "" : ", ") + std::string(name) + " = excluded." + std::string(name);
      }
      // Every column is part of the key: nothing to update, the row there stays.
      if (set.empty()) return sql + " ON CONFLICT (" + target + ") DO NOTHING";
      return sql + " ON CONFLICT (" + target + ") DO UPDATE SET " + set;
    }
  }
  throw std::logic_error("database: unknown on_conflict");
}

std::string select_statement(const table_def& table, std::string_view rest) {
  std::string sql = "SELECT ";
  for (const auto& c : table.columns) sql += (&c == table.columns.data() ? "" : ", ") + std::string(c.name);
  return sql + " FROM " + std::string(table.name) + " " + std::string(rest);
}

int stored_schema_version(sqlite3* db) {
  statement has_table(db, "SELECT 1 AS found FROM sqlite_master WHERE type = 'table' AND name = :name");
  has_table.bind("name", schema_version_table.name);
  if (!has_table.next_row()) return 0;
  statement version(db, "SELECT MAX(version) AS version FROM schema_version");
  return version.next_row() ? static_cast<int>(version.integer("version")) : 0;
}

void upgrade_schema(sqlite3* db, const schema_def& s, const std::filesystem::path& file) {
  int found = stored_schema_version(db);
  if (found > s.newest_version())
    throw std::runtime_error(file.string() + ": schema version " + std::to_string(found) +
                             " is newer than this sealgate knows (" + std::to_string(s.newest_version()) +
                             "); run the sealgate that wrote it");
  for (const auto& m : s.migrations) {
    if (m.version <= found) continue;
    try {
      // IMMEDIATE takes the write lock first, so that of two processes opening
      // an old file at once (the gateway and `sealgate queue delete`) the
      // second waits, then finds the migration done instead of running it again.
      transaction migration(db, transaction::mode::immediate);
      if (stored_schema_version(db) < m.version) {
        for (const auto& sql : migration_statements(s, m.version)) exec(db, sql);
        if (!m.backfill.empty()) exec(db, m.backfill);
        record_version(db, m.version);
      }
      migration.commit();
    } catch (const std::exception& e) {
      throw std::runtime_error(file.string() + ": schema migration " + std::to_string(m.version) + " (" +
                               std::string(m.what) + ") failed: " + e.what());
    }
  }
}

}  // namespace sealgate::sqlite
