// The SQL layer on SQLite (common/sql.hpp) and the schema description
// (common/sql_schema.hpp) the record and the portal store share: named
// parameters that must all be bound, BLOBs with every byte, transactions
// that roll back unless committed, migrations run once.
#include "common/sql.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

#include "common/sql_schema.hpp"

namespace sealgate::sql {
namespace {

namespace fs = std::filesystem;

class SqliteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sealgate-sqlite-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    std::ofstream(dir_ / "t.sqlite");
    db_ = open(location(dir_ / "t.sqlite"), access::read_write, "main");
  }
  void TearDown() override {
    db_.reset();
    fs::remove_all(dir_);
  }
  int64_t count(const std::string& table) {
    statement st(db_.get(), "SELECT COUNT(*) AS n FROM " + table);
    return st.next_row() ? st.integer("n") : -1;
  }
  fs::path dir_;
  connection_ptr db_;
};

TEST_F(SqliteTest, AParameterLeftUnboundOrMisnamedIsAnErrorNotANull) {
  exec(db_.get(), "CREATE TABLE t(a TEXT NOT NULL, b INTEGER)");
  statement insert(db_.get(), "INSERT OR IGNORE INTO t(a, b) VALUES(:a, :b)");
  insert.bind("b", int64_t{1});
  EXPECT_THROW(insert.run(), std::logic_error) << ":a unbound would insert NULL, which OR IGNORE drops silently";
  EXPECT_THROW(insert.bind("c", "x"), std::logic_error);
  insert.bind("a", "x");
  insert.bind("b", int64_t{2});
  insert.run();
  EXPECT_EQ(insert.changes(), 1);
  EXPECT_THROW(insert.run(), std::logic_error) << "bindings are used up by a run";
  EXPECT_THROW(statement(db_.get(), "INSERT INTO t(a) VALUES(?)"), std::logic_error);
  EXPECT_THROW(statement(db_.get(), "SELECT nothing FROM t"), std::runtime_error);
  statement read(db_.get(), "SELECT a, b AS number FROM t");
  ASSERT_TRUE(read.next_row());
  EXPECT_EQ(read.text("a"), "x");
  EXPECT_EQ(read.integer("number"), 2);
  EXPECT_THROW(read.text("b"), std::logic_error) << "named as the SELECT names it";
  EXPECT_FALSE(read.next_row());
}

TEST_F(SqliteTest, AQueryWithAnUnboundParameterFailsInsteadOfMatchingNothing) {
  exec(db_.get(), "CREATE TABLE t(a TEXT NOT NULL, b INTEGER); INSERT INTO t VALUES('x', 1), ('y', 2)");
  statement select(db_.get(), "SELECT a FROM t WHERE a = :a AND b = :b");
  select.bind("a", "x");
  EXPECT_THROW(select.next_row(), std::logic_error) << ":b unbound would be NULL and match no row";
  select.bind("a", "y");
  select.bind("b", int64_t{2});
  ASSERT_TRUE(select.next_row());
  EXPECT_EQ(select.text("a"), "y");
  // Bound afresh before its end: a new query, every parameter again.
  select.bind("a", "x");
  EXPECT_THROW(select.next_row(), std::logic_error);
  select.bind("b", int64_t{1});
  ASSERT_TRUE(select.next_row());
  EXPECT_EQ(select.text("a"), "x");
  EXPECT_FALSE(select.next_row());
}

TEST_F(SqliteTest, BlobsAndTextKeepEveryByte) {
  exec(db_.get(), "CREATE TABLE t(k INTEGER, v BLOB)");
  const std::string bytes("\0a\xff\0b", 5);
  statement insert(db_.get(), "INSERT INTO t(k, v) VALUES(:k, :v)");
  insert.bind("k", int64_t{1});
  insert.bind_blob("v", bytes);
  insert.run();
  insert.bind("k", int64_t{2});
  insert.bind_blob("v", std::string_view());
  insert.run();
  insert.bind("k", int64_t{3});
  insert.bind_null("v");
  insert.run();
  insert.bind("k", int64_t{4});
  insert.bind("v", std::string_view("t\0t", 3));
  insert.run();

  statement read(db_.get(), "SELECT v, typeof(v) AS type FROM t ORDER BY k");
  ASSERT_TRUE(read.next_row());
  EXPECT_EQ(read.blob("v"), bytes);
  EXPECT_EQ(read.text("type"), "blob");
  ASSERT_TRUE(read.next_row());
  EXPECT_EQ(read.blob("v"), "");
  EXPECT_EQ(read.text("type"), "blob") << "an empty BLOB is not NULL";
  EXPECT_FALSE(read.is_null("v"));
  ASSERT_TRUE(read.next_row());
  EXPECT_TRUE(read.is_null("v"));
  ASSERT_TRUE(read.next_row());
  EXPECT_EQ(read.text("v"), std::string("t\0t", 3)) << "text is read by its length, not to its first NUL";
}

TEST_F(SqliteTest, AnInsertReturnsTheIdOfItsRow) {
  exec(db_.get(), "CREATE TABLE t(id INTEGER PRIMARY KEY, a TEXT UNIQUE)");
  statement insert(db_.get(), "INSERT INTO t(a) VALUES(:a) ON CONFLICT DO NOTHING RETURNING id AS row_id");
  insert.bind("a", "x");
  EXPECT_EQ(insert.run_returning("row_id"), 1);
  insert.bind("a", "y");
  EXPECT_EQ(insert.run_returning("row_id"), 2) << "ready for the next bindings";
  insert.bind("a", "y");
  EXPECT_THROW(insert.run_returning("row_id"), std::logic_error) << "a row kept by DO NOTHING returns nothing";
  EXPECT_EQ(count("t"), 2);
  insert.bind("a", "z");
  EXPECT_EQ(insert.run_returning("row_id"), 3);
}

TEST_F(SqliteTest, ATransactionRollsBackUnlessCommitted) {
  exec(db_.get(), "CREATE TABLE t(a INTEGER)");
  {
    transaction t(db_.get(), transaction::mode::immediate);
    exec(db_.get(), "INSERT INTO t VALUES(1)");
  }
  EXPECT_EQ(count("t"), 0);
  try {
    transaction t(db_.get(), transaction::mode::immediate);
    exec(db_.get(), "INSERT INTO t VALUES(1)");
    exec(db_.get(), "INSERT INTO no_such_table VALUES(1)");
    t.commit();
  } catch (const std::runtime_error&) {
  }
  EXPECT_EQ(count("t"), 0) << "an exception between BEGIN and COMMIT leaves nothing";
  {
    transaction t(db_.get(), transaction::mode::deferred);
    exec(db_.get(), "INSERT INTO t VALUES(2)");
    t.commit();
  }
  EXPECT_EQ(count("t"), 1);
  transaction again(db_.get(), transaction::mode::immediate);  // the connection is free for the next one
  again.commit();
}

constexpr column_def first_columns[] = {{"a", "TEXT NOT NULL"}, {"b", "INTEGER NOT NULL DEFAULT 0", 2}};
constexpr table_def first_table{"first", first_columns, "", 1};
constexpr column_def second_columns[] = {{"x", "TEXT", 2}};
constexpr table_def second_table{"second", second_columns, "", 2};
constexpr table_def tables[] = {schema_version_table, first_table, second_table};
constexpr index_def indexes[] = {{"second_by_x", "second", "x", 2}};
constexpr migration_def migrations[] = {{1, "first"}, {2, "second, first.b"}};
constexpr schema_def description{tables, indexes, migrations};
static_assert(description_is_consistent(description));

constexpr column_def late_not_null_columns[] = {{"a", "TEXT"}, {"c", "TEXT NOT NULL", 2}};
constexpr table_def late_not_null_tables[] = {schema_version_table, {"t", late_not_null_columns, "", 1}};
static_assert(!description_is_consistent({late_not_null_tables, {}, migrations}),
              "ALTER TABLE cannot add a NOT NULL column without a DEFAULT");
constexpr table_def without_version_table[] = {first_table};
static_assert(!description_is_consistent({without_version_table, {}, migrations}));

TEST_F(SqliteTest, MigrationsRunOnceInOrderAndANewerFileIsRefused) {
  EXPECT_EQ(stored_schema_version(db_.get()), 0);
  auto second = migration_statements(description, 2);
  ASSERT_EQ(second.size(), 3u);
  EXPECT_EQ(second[0], "ALTER TABLE first ADD COLUMN b INTEGER NOT NULL DEFAULT 0");
  EXPECT_EQ(second[1].rfind("CREATE TABLE second(", 0), 0u) << second[1];
  EXPECT_EQ(second[2], "CREATE INDEX second_by_x ON second(x)");

  upgrade_schema(db_.get(), description, dir_ / "t.sqlite");
  EXPECT_EQ(stored_schema_version(db_.get()), 2);
  upgrade_schema(db_.get(), description, dir_ / "t.sqlite");
  EXPECT_EQ(count("schema_version"), 1);

  exec(db_.get(), "UPDATE schema_version SET version = 3");
  try {
    upgrade_schema(db_.get(), description, dir_ / "t.sqlite");
    ADD_FAILURE() << "upgraded a file newer than its description";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("newer"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace sealgate::sql
