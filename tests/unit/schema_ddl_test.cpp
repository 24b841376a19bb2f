// The SQLite DDL both schema descriptions generate, pinned byte for byte
// against golden files (tests/unit/data/schema/): the statements of each
// migration as common/sqlite_schema derives them, and sqlite_master of a
// file brought from nothing to the newest version. The files were written
// before the queries became portable (issue 18, step 1), so a rewrite of the
// description's plumbing that changed a file's shape fails here. A new
// migration adds to them; SEALGATE_UPDATE_GOLDEN=1 rewrites them, and the
// diff must then show only that migration.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "common/sql.hpp"
#include "common/sql_schema.hpp"
#include "gateway/record/schema.hpp"
#include "portal/store/store_schema.hpp"

namespace sealgate {
namespace {

namespace fs = std::filesystem;

const fs::path golden_dir = fs::path(SEALGATE_SOURCE_DIR) / "tests/unit/data/schema";

std::string ddl_of(const sql::schema_def& s) {
  std::string out;
  for (const auto& m : s.migrations) {
    out += "-- migration " + std::to_string(m.version) + ": " + std::string(m.what) + "\n";
    for (const auto& sql : sql::migration_statements(s, m.version)) out += sql + ";\n";
    if (!m.backfill.empty()) out += "-- backfill\n" + std::string(m.backfill) + ";\n";
  }
  char tmpl[] = "/tmp/sealgate-ddl-XXXXXX";
  fs::path dir = ::mkdtemp(tmpl);
  {
    std::ofstream(dir / "db.sqlite");
    auto db = sql::open(dir / "db.sqlite", sql::access::read_write, "main");
    sql::upgrade_schema(db.get(), s, (dir / "db.sqlite").string());
    out += "-- sqlite_master of a new file\n";
    sql::statement q(db.get(), "SELECT type, name, sql FROM sqlite_master ORDER BY type, name");
    while (q.next_row()) out += q.text("type") + " " + q.text("name") + ": " + q.text("sql") + ";\n";
  }
  fs::remove_all(dir);
  return out;
}

void expect_golden(const std::string& name, const std::string& text) {
  const fs::path file = golden_dir / name;
  if (const char* update = std::getenv("SEALGATE_UPDATE_GOLDEN"); update && std::string(update) == "1") {
    fs::create_directories(golden_dir);
    std::ofstream(file, std::ios::binary) << text;
  }
  std::ifstream in(file, std::ios::binary);
  ASSERT_TRUE(in) << file << " is missing";
  std::string golden{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  EXPECT_EQ(text, golden) << file;
}

TEST(SchemaDdl, TheRecordsDdlIsTheGoldenOne) { expect_golden("record.sql", ddl_of(gateway::schema::description)); }

TEST(SchemaDdl, ThePortalStoresDdlIsTheGoldenOne) {
  expect_golden("portal.sql", ddl_of(portal::schema::description));
}

}  // namespace
}  // namespace sealgate
