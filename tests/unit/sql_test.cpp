// The SQL layer (common/sql.hpp) on both engines, each test run against a
// SQLite file and a real PostgreSQL 15: named parameters that must all be
// bound, 64-bit integers and bytes kept exactly, the portable statements the
// record and portal are written in, transactions that roll back unless
// committed, writers that exclude each other, and a connection the server
// drops.
#include "common/sql.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <thread>

#include "tests/unit/test_databases.hpp"

namespace sealgate::sql {
namespace {

using sealgate::testing::engine_name;
using sealgate::testing::test_database;

class SqlTest : public ::testing::TestWithParam<engine> {
 protected:
  SqlTest() : database_(GetParam()), db_(database_.open()) {}
  int64_t count(const std::string& table) {
    statement st(db_.get(), "SELECT COUNT(*) AS n FROM " + table);
    return st.next_row() ? st.integer("n") : -1;
  }
  test_database database_;
  connection_ptr db_;
};

TEST_P(SqlTest, AParameterLeftUnboundOrMisnamedIsAnErrorNotANull) {
  exec(db_.get(), "CREATE TABLE t(a TEXT NOT NULL, b BIGINT)");
  statement insert(db_.get(), "INSERT INTO t(a, b) VALUES(:a, :b) ON CONFLICT DO NOTHING");
  insert.bind("b", int64_t{1});
  EXPECT_THROW(insert.run(), std::logic_error) << ":a unbound would insert NULL";
  EXPECT_THROW(insert.bind("c", "x"), std::logic_error);
  insert.bind("a", "x");
  insert.bind("b", int64_t{2});
  insert.run();
  EXPECT_EQ(insert.changes(), 1);
  EXPECT_THROW(insert.run(), std::logic_error) << "bindings are used up by a run";
  statement read(db_.get(), "SELECT a, b AS number FROM t");
  ASSERT_TRUE(read.next_row());
  EXPECT_EQ(read.text("a"), "x");
  EXPECT_EQ(read.integer("number"), 2);
  EXPECT_THROW(read.text("b"), std::logic_error) << "named as the SELECT names it";
  EXPECT_FALSE(read.next_row());
}

TEST_P(SqlTest, NamesInLiteralsAndCommentsAreNotParametersAndARepeatedNameIsOne) {
  exec(db_.get(), "CREATE TABLE t(a TEXT, b BIGINT)");
  statement insert(db_.get(), "INSERT INTO t(a, b) VALUES(':not_a_parameter', :n) -- :nor_this\n");
  insert.bind("n", int64_t{7});
  insert.run();
  statement read(db_.get(), "SELECT a, b FROM t WHERE b = :n OR b = :n + 1 OR a = 'it''s :x'");
  read.bind("n", int64_t{6});
  ASSERT_TRUE(read.next_row());
  EXPECT_EQ(read.text("a"), ":not_a_parameter");
}

TEST_P(SqlTest, IntegersPastTwoToTheThirtyOneAreComparedAndKeptExactly) {
  // Queue ids and times in microseconds; an untyped parameter would be read
  // as a 4-byte integer by PostgreSQL.
  exec(db_.get(), "CREATE TABLE t(id BIGINT PRIMARY KEY, v BIGINT)");
  const int64_t big = (int64_t{1} << 52) + 12345, negative = -(int64_t{1} << 40);
  statement insert(db_.get(), "INSERT INTO t(id, v) VALUES(:id, :v)");
  insert.bind("id", big);
  insert.bind("v", negative);
  insert.run();
  statement read(db_.get(), "SELECT id, v, :small AS small FROM t WHERE id = :id AND v < :zero LIMIT :limit");
  read.bind("id", big);
  read.bind("zero", int64_t{0});
  read.bind("small", int64_t{-3});
  read.bind("limit", int64_t{1} << 33);
  ASSERT_TRUE(read.next_row());
  EXPECT_EQ(read.integer("id"), big);
  EXPECT_EQ(read.integer("v"), negative);
  EXPECT_EQ(read.integer("small"), -3);
  EXPECT_EQ(read.text("id"), std::to_string(big)) << "a number read as text, as SQLite does";
}

TEST_P(SqlTest, BlobsKeepEveryByteAndEmptyIsNotNull) {
  exec(db_.get(), std::string("CREATE TABLE t(k TEXT PRIMARY KEY, v ") +
                      (GetParam() == engine::postgresql ? "BYTEA" : "BLOB") + ")");
  std::string bytes("\x00\xff\x80\n\x00z", 6);
  statement insert(db_.get(), "INSERT INTO t(k, v) VALUES(:k, :v)");
  insert.bind("k", "bytes");
  insert.bind_blob("v", bytes);
  insert.run();
  insert.bind("k", "empty");
  insert.bind_blob("v", std::string_view());
  insert.run();
  insert.bind("k", "null");
  insert.bind_null("v");
  insert.run();
  statement read(db_.get(), "SELECT v FROM t WHERE k = :k");
  read.bind("k", "bytes");
  ASSERT_TRUE(read.next_row());
  EXPECT_EQ(read.blob("v"), bytes);
  read.bind("k", "empty");
  ASSERT_TRUE(read.next_row());
  EXPECT_FALSE(read.is_null("v"));
  EXPECT_EQ(read.blob("v"), "");
  read.bind("k", "null");
  ASSERT_TRUE(read.next_row());
  EXPECT_TRUE(read.is_null("v"));
  EXPECT_EQ(read.optional_integer("v"), std::nullopt);
}

TEST_P(SqlTest, TextWithBytesPostgreSqlRefusesIsStoredWithReplacementCharacters) {
  exec(db_.get(), "CREATE TABLE t(v TEXT)");
  statement insert(db_.get(), "INSERT INTO t(v) VALUES(:v)");
  insert.bind("v", std::string_view("250 ok\xff\x00 \xc3\xa9t\xc3\xa9", 14));
  insert.run();
  statement read(db_.get(), "SELECT v FROM t");
  ASSERT_TRUE(read.next_row());
  if (GetParam() == engine::postgresql)
    EXPECT_EQ(read.text("v"), "250 ok\xEF\xBF\xBD\xEF\xBF\xBD \xc3\xa9t\xc3\xa9");
  else
    EXPECT_EQ(read.text("v").size(), 14u) << "SQLite keeps the bytes as they were";
}

TEST_P(SqlTest, ThePortableStatementsTheRecordIsWrittenIn) {
  exec(db_.get(), "CREATE TABLE counters(day BIGINT, domain TEXT, sessions BIGINT NOT NULL, PRIMARY KEY(day, domain))");
  statement upsert(db_.get(),
                   "INSERT INTO counters(day, domain, sessions) VALUES(:day, :domain, :n) "
                   "ON CONFLICT(day, domain) DO UPDATE SET sessions = counters.sessions + excluded.sessions");
  for (int i = 0; i < 3; ++i) {
    upsert.bind("day", int64_t{20000});
    upsert.bind("domain", "example.org");
    upsert.bind("n", int64_t{2});
    upsert.run();
  }
  statement sum(db_.get(),
                "SELECT CAST(SUM(sessions) AS BIGINT) AS total, COUNT(*) FILTER (WHERE sessions > :floor) AS busy, "
                "COALESCE(MAX(domain), 'none') AS domain FROM counters");
  sum.bind("floor", int64_t{5});
  ASSERT_TRUE(sum.next_row());
  EXPECT_EQ(sum.integer("total"), 6);
  EXPECT_EQ(sum.integer("busy"), 1);
  EXPECT_EQ(sum.text("domain"), "example.org");

  statement ignore(db_.get(), "INSERT INTO counters(day, domain, sessions) VALUES(20000, 'example.org', 1) "
                              "ON CONFLICT DO NOTHING RETURNING sessions");
  EXPECT_FALSE(ignore.next_row()) << "a conflict returns no row";
  statement returning(db_.get(), "INSERT INTO counters(day, domain, sessions) VALUES(:day, 'b.example', 1) "
                                 "RETURNING day AS row_id");
  returning.bind("day", int64_t{20001});
  ASSERT_TRUE(returning.next_row());
  EXPECT_EQ(returning.integer("row_id"), 20001);
  EXPECT_FALSE(returning.next_row());

  statement update(db_.get(), "UPDATE counters SET sessions = 0 WHERE day >= :day");
  update.bind("day", int64_t{0});
  update.run();
  EXPECT_EQ(update.changes(), 2);
}

TEST_P(SqlTest, ASumWithoutCastIsRefusedOnPostgreSqlSoTheTypeIsNeverGuessed) {
  if (GetParam() != engine::postgresql) GTEST_SKIP() << "SQLite's SUM of integers is an integer";
  exec(db_.get(), "CREATE TABLE t(v BIGINT); INSERT INTO t VALUES (1)");
  statement sum(db_.get(), "SELECT SUM(v) AS total FROM t");
  ASSERT_TRUE(sum.next_row());
  EXPECT_THROW(sum.integer("total"), std::logic_error) << "PostgreSQL's SUM of BIGINT is NUMERIC";
}

TEST_P(SqlTest, ATransactionRollsBackUnlessCommitted) {
  exec(db_.get(), "CREATE TABLE t(v BIGINT PRIMARY KEY)");
  try {
    transaction t(db_.get(), transaction::mode::immediate);
    exec(db_.get(), "INSERT INTO t VALUES (1)");
    exec(db_.get(), "INSERT INTO t VALUES (1)");  // a constraint fails
    t.commit();
  } catch (const error&) {
  }
  EXPECT_EQ(count("t"), 0);
  {
    transaction t(db_.get(), transaction::mode::deferred);
    exec(db_.get(), "INSERT INTO t VALUES (2)");
  }
  EXPECT_EQ(count("t"), 0);
  {
    transaction t(db_.get(), transaction::mode::deferred);
    exec(db_.get(), "INSERT INTO t VALUES (3)");
    t.commit();
  }
  EXPECT_EQ(count("t"), 1);
}

TEST_P(SqlTest, ImmediateTransactionsOfTwoConnectionsTakeTurns) {
  // The audit chain's head is read, then appended to: a second writer that
  // read the same head would fork the chain.
  exec(db_.get(), "CREATE TABLE head(n BIGINT)");
  exec(db_.get(), "INSERT INTO head VALUES (0)");
  auto other = database_.open();
  std::promise<void> holding;
  auto first = std::async(std::launch::async, [&] {
    transaction t(db_.get(), transaction::mode::immediate);
    statement read(db_.get(), "SELECT n FROM head");
    read.next_row();
    int64_t n = read.integer("n");
    holding.set_value();
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    statement write(db_.get(), "UPDATE head SET n = :n");
    write.bind("n", n + 1);
    write.run();
    t.commit();
  });
  holding.get_future().wait();
  auto started = std::chrono::steady_clock::now();
  {
    transaction t(other.get(), transaction::mode::immediate);
    statement read(other.get(), "SELECT n FROM head");
    ASSERT_TRUE(read.next_row());
    EXPECT_EQ(read.integer("n"), 1) << "the second writer read the head after the first committed";
    t.commit();
  }
  EXPECT_GE(std::chrono::steady_clock::now() - started, std::chrono::milliseconds(200));
  first.get();
}

TEST_P(SqlTest, ConnectionsToTheSameDatabaseSeeOneSchema) {
  auto record = database_.open("record");
  auto portal = database_.open("portal");
  exec(record.get(), "CREATE TABLE settings(v TEXT)");
  exec(record.get(), "INSERT INTO settings VALUES ('record')");
  if (GetParam() == engine::postgresql) {
    // Two schemas in one database: the same table name in each.
    exec(portal.get(), "CREATE TABLE settings(v TEXT)");
    statement read(portal.get(), "SELECT COUNT(*) AS n FROM settings");
    ASSERT_TRUE(read.next_row());
    EXPECT_EQ(read.integer("n"), 0);
    EXPECT_EQ(portal->schema(), "portal");
  }
  statement read(record.get(), "SELECT v FROM settings");
  ASSERT_TRUE(read.next_row());
  EXPECT_EQ(read.text("v"), "record");
}

TEST_P(SqlTest, AReadOnlyConnectionCannotWrite) {
  exec(db_.get(), "CREATE TABLE t(v BIGINT)");
  auto reader = database_.open("test", access::read_only);
  EXPECT_THROW(exec(reader.get(), "INSERT INTO t VALUES (1)"), error);
}

TEST(SqlPostgreSql, ALostConnectionFailsItsTransactionAndIsOpenedAgainAfter) {
  test_database database(engine::postgresql);
  auto db = database.open();
  auto admin = database.open();
  exec(db.get(), "CREATE TABLE t(v BIGINT)");
  auto kill = [&] {
    statement pid(db.get(), "SELECT CAST(pg_backend_pid() AS BIGINT) AS pid");
    ASSERT_TRUE(pid.next_row());
    statement end(admin.get(), "SELECT pg_terminate_backend(CAST(:pid AS INTEGER)) AS ended");
    end.bind("pid", pid.integer("pid"));
    ASSERT_TRUE(end.next_row());
  };
  kill();
  try {
    exec(db.get(), "INSERT INTO t VALUES (1)");
    FAIL() << "the server closed the connection";
  } catch (const error& e) {
    EXPECT_TRUE(e.lost_connection()) << e.what() << " " << e.sqlstate();
  }
  exec(db.get(), "INSERT INTO t VALUES (2)");  // opened again

  {
    transaction t(db.get(), transaction::mode::immediate);
    exec(db.get(), "INSERT INTO t VALUES (3)");
    kill();
    EXPECT_THROW(exec(db.get(), "INSERT INTO t VALUES (4)"), error);
    // The rest of the transaction must not run one statement at a time on a
    // new connection.
    EXPECT_THROW(exec(db.get(), "INSERT INTO t VALUES (5)"), error);
    EXPECT_THROW(t.commit(), error);
  }
  statement read(db.get(), "SELECT CAST(SUM(v) AS BIGINT) AS total FROM t");
  ASSERT_TRUE(read.next_row());
  EXPECT_EQ(read.integer("total"), 2);
}

TEST(SqlLocation, APostgreSqlConnectionStringOrElseAFile) {
  EXPECT_TRUE(location::parse("postgresql://sealgate@db.internal/sealgate").is_postgresql());
  EXPECT_TRUE(location::parse("postgres://db/sealgate").is_postgresql());
  EXPECT_TRUE(location::parse("host=/run/postgresql dbname=sealgate").is_postgresql());
  EXPECT_TRUE(location::parse(" dbname = sealgate").is_postgresql());
  EXPECT_FALSE(location::parse("/var/lib/sealgate/record.db").is_postgresql());
  EXPECT_FALSE(location::parse("record.db").is_postgresql());
  EXPECT_FALSE(location::parse("./a=b.db").is_postgresql());
  EXPECT_EQ(location::parse("var/record.db").describe(), "var/record.db");
  EXPECT_EQ(location::parse("postgresql://gw:s3cret@db:5432/sealgate?sslmode=verify-full").describe(),
            "postgresql://gw:***@db:5432/sealgate?sslmode=verify-full");
  EXPECT_EQ(location::parse("postgresql://db/sealgate?user=gw&password=s3cret&sslmode=require").describe(),
            "postgresql://db/sealgate?user=gw&password=***&sslmode=require");
  EXPECT_EQ(location::parse("host=db password='it\\'s s3cret' dbname=x").describe(), "host=db password=*** dbname=x");
  EXPECT_EQ(location::parse("host=db password=s3cret").describe(), "host=db password=***");
}

TEST(SqlStorableText, InvalidUtf8AndNulBecomeReplacementCharacters) {
  const std::string r = "\xEF\xBF\xBD";
  EXPECT_EQ(storable_text("plain ascii"), "plain ascii");
  EXPECT_EQ(storable_text("\xc3\xa9\xe2\x82\xac\xf0\x9f\x93\xa7"), "\xc3\xa9\xe2\x82\xac\xf0\x9f\x93\xa7");
  EXPECT_EQ(storable_text(std::string_view("a\0b", 3)), "a" + r + "b");
  EXPECT_EQ(storable_text("\xff"), r);
  EXPECT_EQ(storable_text("\xc3"), r) << "truncated";
  EXPECT_EQ(storable_text("\xc0\xaf"), r + r) << "overlong";
  EXPECT_EQ(storable_text("\xed\xa0\x80"), r + r + r) << "a UTF-16 surrogate";
  EXPECT_EQ(storable_text("\xf4\x90\x80\x80"), r + r + r + r) << "past U+10FFFF";
}

INSTANTIATE_TEST_SUITE_P(Engines, SqlTest, ::testing::Values(engine::sqlite, engine::postgresql),
                         [](const auto& info) { return engine_name(info.param); });

}  // namespace
}  // namespace sealgate::sql
