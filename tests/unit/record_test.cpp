// The record's schema and its migrations: a database written by the 709c782
// release (tests/data/record/README-709c782 says what it holds) opens with the
// current code, loses nothing, upgrades once, and then looks exactly like a
// database this code creates from nothing; the report queries read it; new
// rows go in. Assertions read the file with plain SQLite, not with the code
// under test.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/text.hpp"
#include "gateway/record/database.hpp"
#include "gateway/record/report.hpp"
#include "gateway/record/schema.hpp"
#include "gateway/record/tlsrpt.hpp"

using namespace sealgate::gateway;
namespace fs = std::filesystem;

namespace {

const fs::path fixture_709c782 = fs::path(SEALGATE_SOURCE_DIR) / "tests/data/record/records-709c782.sqlite";
// Every row of the fixture was written under this policy (README-709c782).
const std::string fixture_policy = "a2af6cf4bf1c189d77cdb99955296949983644822a274a9ca40fbecd0b7a2bd7";

// A result row by column name; NULL is nullopt.
using row = std::map<std::string, std::optional<std::string>>;

// The file as any sqlite3 user sees it.
std::vector<row> select(const fs::path& file, const std::string& sql) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    sqlite3_close(db);
    ADD_FAILURE() << file << ": cannot open";
    return {};
  }
  std::vector<row> out;
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) {
    ADD_FAILURE() << sql << ": " << sqlite3_errmsg(db);
  } else {
    while (sqlite3_step(st) == SQLITE_ROW) {
      row r;
      for (int c = 0; c < sqlite3_column_count(st); ++c) {
        auto* t = sqlite3_column_text(st, c);
        r[sqlite3_column_name(st, c)] = t ? std::optional<std::string>(reinterpret_cast<const char*>(t)) : std::nullopt;
      }
      out.push_back(std::move(r));
    }
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}

std::string scalar(const fs::path& file, const std::string& sql) {
  auto rows = select(file, sql);
  if (rows.size() != 1 || rows[0].size() != 1 || !rows[0].begin()->second) return "<not one value>";
  return *rows[0].begin()->second;
}

// A two-column query (key, n) as a map.
std::map<std::string, std::string> tally(const fs::path& file, const std::string& sql) {
  std::map<std::string, std::string> out;
  for (auto& r : select(file, sql)) out[r.at("key").value_or("NULL")] = r.at("n").value_or("NULL");
  return out;
}

void write_sql(const fs::path& file, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(file.c_str(), &db), SQLITE_OK);
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  std::string why = err ? err : "";
  sqlite3_free(err);
  sqlite3_close(db);
  ASSERT_EQ(rc, SQLITE_OK) << why;
}

std::string file_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// SQL text without its layout: runs of white space become one space, none
// is kept next to a parenthesis or a comma.
std::string without_layout(const std::string& sql) {
  auto punctuation = [](char c) { return c == '(' || c == ')' || c == ','; };
  std::string out;
  bool pending_space = false;
  for (char c : sql) {
    if (c == ' ' || c == '\n' || c == '\t') {
      pending_space = true;
      continue;
    }
    if (pending_space && !out.empty() && !punctuation(out.back()) && !punctuation(c)) out += ' ';
    pending_space = false;
    out += c;
  }
  return out;
}

// The schema as SQLite keeps it: every table's and index's SQL without its
// layout (a column added by ALTER TABLE is appended to the CREATE text, and
// the release before had its own line breaks), and each table's columns as
// PRAGMA table_info reports them.
std::map<std::string, std::string> schema_of(const fs::path& file) {
  std::map<std::string, std::string> out;
  for (auto& r : select(file, "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'")) {
    out[*r["type"] + " " + *r["name"]] = without_layout(r["sql"].value_or(""));
    if (*r["type"] != "table") continue;
    std::string columns;
    for (auto& c : select(file, "SELECT cid, name, type, \"notnull\", dflt_value, pk FROM pragma_table_info('" +
                                    *r["name"] + "') ORDER BY cid"))
      for (const char* k : {"cid", "name", "type", "notnull", "dflt_value", "pk"})
        columns += c[k].value_or("NULL") + (std::string(k) == "pk" ? "\n" : "|");
    out["columns of " + *r["name"]] = columns;
  }
  return out;
}

class RecordTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sealgate-record-XXXXXX";
    dir_ = mkdtemp(tmpl);
  }
  void TearDown() override { fs::remove_all(dir_); }
  // A copy: opening the file writes to it (the WAL, the upgrade).
  fs::path copy_of_709c782() {
    auto file = dir_ / "records.sqlite";
    fs::copy_file(fixture_709c782, file);
    return file;
  }
  std::string queue_id_of(const fs::path& file, const std::string& message_id) {
    return scalar(file, "SELECT queue_id FROM messages WHERE message_id = '" + message_id + "'");
  }
  fs::path dir_;
};

TEST_F(RecordTest, TheFixtureIsTheOneItsReadmeDescribes) {
  // Stored at schema version 2; if this fails the fixture changed, not the
  // code. (Read from a copy too: even a read-only reader of a WAL database
  // leaves -wal and -shm files beside it.)
  auto file = copy_of_709c782();
  EXPECT_EQ(scalar(file, "SELECT group_concat(version) FROM schema_version"), "2");
  EXPECT_EQ(scalar(file, "SELECT COUNT(*) FROM messages"), "15");
  EXPECT_EQ(scalar(file, "PRAGMA journal_mode"), "wal");
}

TEST_F(RecordTest, The709c782DatabaseUpgradesWithEveryRowKept) {
  auto file = copy_of_709c782();
  { database db(file); }
  EXPECT_EQ(scalar(file, "SELECT group_concat(version) FROM schema_version"), std::to_string(schema::newest_version))
      << "one row, at the newest version";

  EXPECT_EQ(scalar(file, "SELECT COUNT(*) FROM messages"), "15");
  EXPECT_EQ(scalar(file, "SELECT COUNT(*) FROM recipients"), "18");
  EXPECT_EQ(scalar(file, "SELECT COUNT(*) FROM attempts"), "17");
  EXPECT_EQ(scalar(file, "SELECT SUM(recipients) FROM messages"), "18");
  EXPECT_EQ(tally(file, "SELECT status AS key, COUNT(*) AS n FROM recipients GROUP BY status"),
            (std::map<std::string, std::string>{{"delivered", "10"}, {"bounced", "3"}, {"deferred", "2"},
                                                {"held", "1"}, {"deleted", "1"}, {"expired", "1"}}));
  EXPECT_EQ(tally(file, "SELECT outcome AS key, COUNT(*) AS n FROM attempts GROUP BY outcome"),
            (std::map<std::string, std::string>{{"delivered", "10"}, {"deferred", "5"}, {"bounced", "1"},
                                                {"expired", "1"}}));
  EXPECT_EQ(tally(file, "SELECT status AS key, COUNT(*) AS n FROM recipients WHERE final_at IS NULL GROUP BY status"),
            (std::map<std::string, std::string>{{"deferred", "2"}, {"held", "1"}}));

  // messages: the one without a Message-ID, the four DSNs, the one that came
  // in over authenticated TLS.
  auto no_id = select(file, "SELECT r.address FROM messages m JOIN recipients r USING (queue_id)"
                            " WHERE m.message_id IS NULL");
  ASSERT_EQ(no_id.size(), 1u);
  EXPECT_EQ(no_id[0]["address"], "nomid@plain.dlv.test");
  EXPECT_EQ(scalar(file, "SELECT COUNT(*) FROM messages WHERE listener = 'dsn' AND sender = ''"), "4");
  auto submitted = select(file, "SELECT * FROM messages WHERE auth_user IS NOT NULL");
  ASSERT_EQ(submitted.size(), 1u);
  EXPECT_EQ(submitted[0]["auth_user"], "clinic-app");
  EXPECT_EQ(submitted[0]["tls_protocol"], "TLSv1.3");
  EXPECT_EQ(submitted[0]["tls_cipher"], "TLS_AES_256_GCM_SHA384");
  EXPECT_EQ(submitted[0]["listener"], "submission");
  EXPECT_EQ(submitted[0]["message_id"], "<fixture-submission@ours.dlv.test>");

  // Per address: status, method, rule, attempts and the outcome of each attempt in order.
  struct expected {
    const char* address;
    const char* status;
    const char* method;
    std::optional<std::string> rule;
    const char* attempts;
    const char* outcomes;
  };
  const expected recipients[] = {
      {"old@flaky.dlv.test", "expired", "plain", "clear-ok", "2", "deferred,expired"},
      {"pat@tls.dlv.test", "delivered", "tls", "default", "1", "delivered"},
      {"a@tls.dlv.test", "delivered", "tls", "default", "1", "delivered"},
      {"b@plain.dlv.test", "delivered", "plain", "clear-ok", "1", "delivered"},
      {"c@plain.dlv.test", "delivered", "plain", "clear-ok", "1", "delivered"},
      {"gone@bounce.dlv.test", "bounced", "plain", "clear-ok", "1", "bounced"},
      {"later@flaky.dlv.test", "deferred", "plain", "clear-ok", "2", "deferred,deferred"},
      {"x@nullmx.dlv.test", "bounced", "none", std::nullopt, "0", ""},
      {"r@plain.dlv.test", "bounced", "reject", "restricted", "0", ""},
      {"phi@plain.dlv.test", "held", "hold", "sensitive", "0", ""},
      {"secure@strict.dlv.test", "deferred", "defer", "default", "0", ""},
      {"del@flaky.dlv.test", "deleted", "plain", "clear-ok", "1", "deferred"},
      {"nomid@plain.dlv.test", "delivered", "plain", "clear-ok", "1", "delivered"},
      {"pat@later.dlv.test", "delivered", "plain", "clear-ok", "2", "deferred,delivered"},
  };
  for (const auto& e : recipients) {
    SCOPED_TRACE(e.address);
    auto rows = select(file, std::string("SELECT status, method, rule, attempts,"
                                         " (SELECT COALESCE(group_concat(outcome), '') FROM (SELECT outcome FROM attempts a"
                                         "  WHERE a.queue_id = r.queue_id AND a.idx = r.idx ORDER BY a.rowid)) AS outcomes"
                                         " FROM recipients r WHERE address = '") +
                                 e.address + "'");
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0]["status"], e.status);
    EXPECT_EQ(rows[0]["method"], e.method);
    EXPECT_EQ(rows[0]["rule"], e.rule);
    EXPECT_EQ(rows[0]["attempts"], e.attempts);
    EXPECT_EQ(rows[0]["outcomes"], e.outcomes);
  }
  auto dsns = select(file, "SELECT status, method, rule, attempts, mx_host FROM recipients WHERE address = 'app@ours.dlv.test'");
  ASSERT_EQ(dsns.size(), 4u);
  for (auto& r : dsns) {
    EXPECT_EQ(r["status"], "delivered");
    EXPECT_EQ(r["method"], "plain");
    EXPECT_EQ(r["rule"], "clear-ok");
    EXPECT_EQ(r["attempts"], "1");
    EXPECT_EQ(r["mx_host"], "mx-dsn.dlv.test");
  }
  auto secured = select(file, "SELECT address, mx_host, tls_protocol, certificate FROM recipients"
                              " WHERE tls_protocol IS NOT NULL ORDER BY address");
  ASSERT_EQ(secured.size(), 2u);
  EXPECT_EQ(secured[0]["address"], "a@tls.dlv.test");
  EXPECT_EQ(secured[1]["address"], "pat@tls.dlv.test");
  for (auto& r : secured) {
    EXPECT_EQ(r["mx_host"], "mx-tls.dlv.test");
    EXPECT_EQ(r["tls_protocol"], "TLSv1.3");
    EXPECT_EQ(r["certificate"], "verified");
  }
  EXPECT_EQ(scalar(file, "SELECT COUNT(*) FROM attempts WHERE tls_protocol IS NOT NULL AND tls_cipher IS NOT NULL"), "2");
  EXPECT_EQ(scalar(file, "SELECT reply FROM recipients WHERE address = 'del@flaky.dlv.test'"), "deleted by an operator");
  EXPECT_EQ(scalar(file, "SELECT reply FROM recipients WHERE address = 'gone@bounce.dlv.test'"),
            "500 5.3.0 Error: command failed");
  EXPECT_EQ(scalar(file, "SELECT reply FROM recipients WHERE address = 'phi@plain.dlv.test'"),
            "held by policy rule sensitive");
  EXPECT_EQ(scalar(file, "SELECT COUNT(*) FROM recipients WHERE policy_sha256 = '" + fixture_policy + "'"), "18");
  EXPECT_EQ(scalar(file, "SELECT COUNT(*) FROM attempts WHERE policy_sha256 = '" + fixture_policy + "'"), "17");
  EXPECT_EQ(scalar(file, "PRAGMA integrity_check"), "ok");
}

TEST_F(RecordTest, OpeningAnUpgradedDatabaseAgainChangesNothing) {
  auto file = copy_of_709c782();
  { database db(file); }
  ASSERT_FALSE(fs::exists(file.string() + "-wal")) << "closed cleanly: the WAL was checkpointed and removed";
  auto schema_once = schema_of(file);
  auto bytes_once = file_bytes(file);
  { database db(file); }
  EXPECT_EQ(schema_of(file), schema_once);
  EXPECT_EQ(file_bytes(file) == bytes_once, true) << "the second open wrote to the file";
  EXPECT_EQ(scalar(file, "SELECT group_concat(version) FROM schema_version"), std::to_string(schema::newest_version));
  EXPECT_EQ(scalar(file, "SELECT COUNT(*) FROM messages"), "15");
}

TEST_F(RecordTest, AFreshDatabaseRunsEveryMigrationAndEndsWithTheUpgradedSchema) {
  auto fresh = dir_ / "fresh.sqlite";
  { database db(fresh); }
  EXPECT_EQ(scalar(fresh, "SELECT group_concat(version) FROM schema_version"), std::to_string(schema::newest_version));
  auto upgraded = copy_of_709c782();
  { database db(upgraded); }
  auto fresh_schema = schema_of(fresh);
  EXPECT_EQ(fresh_schema, schema_of(upgraded));
  // Every table and index of the description is there, with its columns in order.
  for (const auto& t : schema::tables) {
    auto columns = select(fresh, "SELECT name FROM pragma_table_info('" + std::string(t.name) + "') ORDER BY cid");
    ASSERT_EQ(columns.size(), t.columns.size()) << t.name;
    for (size_t i = 0; i < columns.size(); ++i) EXPECT_EQ(columns[i]["name"], std::string(t.columns[i].name));
  }
  for (const auto& x : schema::indexes) EXPECT_TRUE(fresh_schema.count("index " + std::string(x.name))) << x.name;
  EXPECT_EQ(scalar(fresh, "PRAGMA journal_mode"), "wal");
}

TEST_F(RecordTest, AFirstWaveDatabaseGetsMigrationTwo) {
  // What the first release (a067787) wrote: messages without message_id,
  // schema_version 1, no delivery tables. Written here by hand, as it did.
  auto file = dir_ / "first-wave.sqlite";
  write_sql(file, R"(PRAGMA journal_mode=WAL;
    CREATE TABLE messages(queue_id TEXT PRIMARY KEY, received_at INTEGER NOT NULL, listener TEXT NOT NULL,
      client_address TEXT NOT NULL, helo TEXT NOT NULL, auth_user TEXT, tls_protocol TEXT, tls_cipher TEXT,
      sender TEXT NOT NULL, recipients INTEGER NOT NULL, size INTEGER NOT NULL);
    CREATE TABLE schema_version(version INTEGER NOT NULL);
    INSERT INTO schema_version(version) VALUES(1);
    INSERT INTO messages VALUES('0000000000000001', 1790000000, 'smarthost', '127.0.0.1', 'app', NULL, NULL, NULL,
      'app@example.org', 1, 100);)");
  EXPECT_THROW(read_message_story(file, "0000000000000001"), std::runtime_error)
      << "a reader does not read a schema older than its own";
  { database db(file); }
  EXPECT_EQ(scalar(file, "SELECT group_concat(version) FROM schema_version"), std::to_string(schema::newest_version));
  auto kept = select(file, "SELECT * FROM messages");
  ASSERT_EQ(kept.size(), 1u);
  EXPECT_EQ(kept[0]["sender"], "app@example.org");
  EXPECT_EQ(kept[0]["message_id"], std::nullopt) << "a column added by a migration is NULL for old rows";
  auto fresh = dir_ / "fresh.sqlite";
  { database db(fresh); }
  EXPECT_EQ(schema_of(file), schema_of(fresh));
  auto story = read_message_story(file, "0000000000000001");
  ASSERT_TRUE(story.message);
  EXPECT_EQ(story.message->size, 100);
}

TEST_F(RecordTest, ADatabaseFromANewerSealgateIsRefused) {
  auto file = copy_of_709c782();
  write_sql(file, "UPDATE schema_version SET version = " + std::to_string(schema::newest_version + 1));
  try {
    database db(file);
    ADD_FAILURE() << "opened a schema this code does not know";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("newer than this sealgate knows"), std::string::npos) << e.what();
  }
  EXPECT_THROW(count_deliveries(file, report_grouping::method, 0), std::runtime_error);
  EXPECT_EQ(scalar(file, "SELECT COUNT(*) FROM messages"), "15");
}

TEST_F(RecordTest, AFileThatIsNotADatabaseIsRefused) {
  auto file = dir_ / "not-a-database";
  std::ofstream(file) << "this is not an SQLite file, but it is long enough to have a header of one............\n";
  EXPECT_THROW(database db(file), std::runtime_error);  // and, under ASan, frees what it opened
}

TEST_F(RecordTest, ReportQueriesReadTheUpgradedDatabase) {
  auto file = copy_of_709c782();
  { database db(file); }
  auto by_method = count_deliveries(file, report_grouping::method, 0);
  // The largest group first, then by key.
  std::vector<std::string> keys;
  for (const auto& g : by_method) keys.push_back(g.key);
  EXPECT_EQ(keys, (std::vector<std::string>{"plain", "tls", "defer", "hold", "none", "reject"}));
  ASSERT_EQ(by_method.size(), 6u);
  const auto& plain = by_method[0];
  EXPECT_EQ(plain.recipients, 12);
  EXPECT_EQ(plain.delivered, 8);
  EXPECT_EQ(plain.secured, 0);
  EXPECT_EQ(plain.deferred, 1);
  EXPECT_EQ(plain.bounced, 2) << "expired counts as bounced";
  EXPECT_EQ(plain.deleted, 1);
  const auto& tls = by_method[1];
  EXPECT_EQ(tls.recipients, 2);
  EXPECT_EQ(tls.secured, 2);
  EXPECT_EQ(by_method[3].queued, 1) << "held counts as queued";

  int64_t total = 0;
  for (const auto& g : count_deliveries(file, report_grouping::recipient_domain, 0)) {
    EXPECT_EQ(g.recipients, g.delivered + g.queued + g.deferred + g.bounced + g.deleted) << g.key;
    total += g.recipients;
  }
  EXPECT_EQ(total, 18);
  auto by_sender = count_deliveries(file, report_grouping::sender, 0);
  ASSERT_EQ(by_sender.size(), 2u);
  EXPECT_EQ(by_sender[0].key, "app@ours.dlv.test");
  EXPECT_EQ(by_sender[0].recipients, 14);
  EXPECT_EQ(by_sender[1].key, "") << "the DSNs' null sender";
  auto by_day = count_deliveries(file, report_grouping::day, 0);
  ASSERT_EQ(by_day.size(), 1u);
  EXPECT_EQ(by_day[0].key, "2026-12-06");
  EXPECT_TRUE(count_deliveries(file, report_grouping::method, 1796530034 + 1).empty()) << "--since after the last";

  auto story = read_message_story(file, queue_id_of(file, "<fixture-submission@ours.dlv.test>"));
  ASSERT_TRUE(story.message);
  EXPECT_EQ(story.message->listener, "submission");
  EXPECT_EQ(story.message->auth_user, "clinic-app");
  EXPECT_EQ(story.message->recipients, 2);
  ASSERT_EQ(story.recipients.size(), 2u);
  EXPECT_EQ(story.recipients[0].address, "a@tls.dlv.test");
  EXPECT_EQ(story.recipients[0].certificate, "verified");
  EXPECT_TRUE(story.recipients[0].final_at);
  EXPECT_EQ(story.recipients[1].address, "b@plain.dlv.test");
  EXPECT_EQ(story.attempts.size(), 2u);

  auto nullmx = read_message_story(file, queue_id_of(file, "<fixture-nullmx@ours.dlv.test>"));
  ASSERT_EQ(nullmx.recipients.size(), 1u);
  EXPECT_EQ(nullmx.recipients[0].rule, "") << "NULL reads as empty";
  EXPECT_TRUE(nullmx.attempts.empty());
  auto held = read_message_story(file, queue_id_of(file, "<fixture-phi@ours.dlv.test>"));
  ASSERT_EQ(held.recipients.size(), 1u);
  EXPECT_EQ(held.recipients[0].status, "held");
  EXPECT_FALSE(held.recipients[0].final_at);

  auto unknown = read_message_story(file, "0123456789ABCDEF");
  EXPECT_FALSE(unknown.message);
  EXPECT_TRUE(unknown.recipients.empty());
  EXPECT_TRUE(unknown.attempts.empty());

  EXPECT_EQ(report_grouping_from("recipient-domain"), report_grouping::recipient_domain);
  EXPECT_EQ(report_grouping_from("day"), report_grouping::day);
  EXPECT_EQ(report_grouping_from("recipient_domain"), std::nullopt);
}

TEST_F(RecordTest, TheUpgradedDatabaseTakesNewRowsBesideTheOldOnes) {
  auto file = copy_of_709c782();
  auto later = queue_id_of(file, "<fixture-mixed@ours.dlv.test>");  // later@flaky, index 2, still deferred
  {
    database db(file);
    spooled_envelope m;
    m.queue_id = "00000000000000AA";
    m.received = 1796540000;
    m.listener = "smarthost";
    m.client_address = "127.0.0.1";
    m.helo = "app.ours.dlv.test";
    m.sender = "app@ours.dlv.test";
    m.recipients = {{"new@plain.dlv.test", {}}, {"New@Example.ORG", {}}};
    m.content_size = 321;
    db.record_accepted({m});
    db.set_message_id(m.queue_id, "<new@ours.dlv.test>");
    attempt_row delivered;
    delivered.queue_id = m.queue_id;
    delivered.index = 0;
    delivered.address = "new@plain.dlv.test";
    delivered.at = 1796540001;
    delivered.outcome = "delivered";
    delivered.method = "plain";
    delivered.rule = "clear-ok";
    delivered.policy_sha256 = fixture_policy;
    delivered.mx_host = "mx-plain.dlv.test";
    delivered.mx_address = "127.0.9.14";
    delivered.certificate = "none";
    delivered.reply = "250 2.0.0 Ok";
    // The old deferred recipient finally goes, through a connection that
    // reports no rule (kept from its earlier attempts).
    attempt_row old = delivered;
    old.queue_id = later;
    old.index = 2;
    old.address = "later@flaky.dlv.test";
    old.rule.clear();
    db.submit({delivered, old}, nullptr);
    db.flush();
    EXPECT_EQ(db.accepted_count(), 16);
    EXPECT_EQ(db.unrecorded({m.queue_id, later, "00000000000000BB"}), std::vector<std::string>{"00000000000000BB"});
  }
  EXPECT_EQ(scalar(file, "SELECT COUNT(*) FROM messages"), "16");
  EXPECT_EQ(scalar(file, "SELECT COUNT(*) FROM recipients"), "20");
  EXPECT_EQ(scalar(file, "SELECT COUNT(*) FROM attempts"), "19");
  auto story = read_message_story(file, "00000000000000AA");
  ASSERT_TRUE(story.message);
  EXPECT_EQ(story.message->message_id, "<new@ours.dlv.test>");
  EXPECT_EQ(story.message->size, 321);
  EXPECT_EQ(story.message->auth_user, "") << "stored as NULL";
  ASSERT_EQ(story.recipients.size(), 2u);
  EXPECT_EQ(story.recipients[0].status, "delivered");
  EXPECT_EQ(story.recipients[0].attempts, 1);
  EXPECT_EQ(story.recipients[0].final_at, 1796540001);
  EXPECT_EQ(story.recipients[1].status, "queued");
  EXPECT_EQ(story.recipients[1].domain, "example.org");
  EXPECT_FALSE(story.recipients[1].final_at);
  auto was_deferred = select(file, "SELECT status, rule, attempts, final_at FROM recipients WHERE address = 'later@flaky.dlv.test'");
  ASSERT_EQ(was_deferred.size(), 1u);
  EXPECT_EQ(was_deferred[0]["status"], "delivered");
  EXPECT_EQ(was_deferred[0]["rule"], "clear-ok") << "a detail the attempt lacks keeps its earlier value";
  EXPECT_EQ(was_deferred[0]["attempts"], "3");
  EXPECT_EQ(was_deferred[0]["final_at"], "1796540001");
  EXPECT_EQ(scalar(file, "SELECT COUNT(*) FROM attempts WHERE rule IS NULL"), "1") << "the attempt row itself has none";
  // The old rows are as they were.
  EXPECT_EQ(tally(file, "SELECT status AS key, COUNT(*) AS n FROM recipients WHERE queue_id <> '00000000000000AA'"
                        " GROUP BY status"),
            (std::map<std::string, std::string>{{"delivered", "11"}, {"bounced", "3"}, {"deferred", "1"},
                                                {"held", "1"}, {"deleted", "1"}, {"expired", "1"}}));
}

TEST_F(RecordTest, ARecipientRowLostInACrashIsCreatedByItsFirstAttempt) {
  auto file = dir_ / "fresh.sqlite";
  database db(file);
  attempt_row r;
  r.queue_id = "00000000000000CC";
  r.index = 1;
  r.address = "late@Example.org";
  r.at = 1796550000;
  r.outcome = "deferred";
  r.method = "tls";
  r.reply = "451 4.3.0 later";
  db.record_attempts({r});
  auto rows = select(file, "SELECT status, domain, attempts, reply, final_at FROM recipients");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0]["status"], "deferred");
  EXPECT_EQ(rows[0]["domain"], "example.org");
  EXPECT_EQ(rows[0]["attempts"], "1");
  EXPECT_EQ(rows[0]["reply"], "451 4.3.0 later");
  EXPECT_EQ(rows[0]["final_at"], std::nullopt);
}

TEST(SchemaDescription, MigrationStatementsFollowTheDescription) {
  auto first = migration_statements(1);
  ASSERT_EQ(first.size(), 2u);
  EXPECT_EQ(first[0].rfind("CREATE TABLE messages(", 0), 0u) << first[0];
  EXPECT_EQ(first[0].find("message_id"), std::string::npos) << "added by migration 2, not there in 1";
  EXPECT_EQ(first[1].rfind("CREATE TABLE schema_version(", 0), 0u) << first[1];
  auto second = migration_statements(2);
  EXPECT_EQ(second.front(), "ALTER TABLE messages ADD COLUMN message_id TEXT");
  EXPECT_EQ(second.back(), "CREATE INDEX recipients_by_status ON recipients(status)");
  EXPECT_EQ(insert_statement(schema::recipients, sealgate::sql::on_conflict::do_nothing, {"queue_id", "idx"}),
            "INSERT INTO recipients(queue_id, idx) VALUES(:queue_id, :idx) ON CONFLICT DO NOTHING");
  EXPECT_EQ(insert_statement(schema::audit_cursors, sealgate::sql::on_conflict::error),
            "INSERT INTO audit_cursors(name, value) VALUES(:name, :value)");
  // The conflict target is the description's primary key, a column's or the table's.
  EXPECT_EQ(insert_statement(schema::audit_cursors, sealgate::sql::on_conflict::update),
            "INSERT INTO audit_cursors(name, value) VALUES(:name, :value)"
            " ON CONFLICT (name) DO UPDATE SET value = excluded.value");
  EXPECT_EQ(insert_statement(schema::tls_reports, sealgate::sql::on_conflict::update),
            "INSERT INTO tls_reports(day, policy_domain, destination, result, at)"
            " VALUES(:day, :policy_domain, :destination, :result, :at)"
            " ON CONFLICT (day, policy_domain, destination) DO UPDATE SET result = excluded.result, at = excluded.at");
  EXPECT_THROW(insert_statement(schema::recipients, sealgate::sql::on_conflict::error, {"queue_id", "no_such_column"}),
               std::logic_error);
  EXPECT_THROW(insert_statement(schema::attempts, sealgate::sql::on_conflict::update), std::logic_error)
      << "attempts has no key to update by";
  EXPECT_EQ(select_statement(schema::schema_version, "LIMIT 1"), "SELECT version FROM schema_version LIMIT 1");
}

}  // namespace

// TLS sessions (RFC 8460): counted through the writer thread, read back per
// day and domain, and made into the report a domain is sent.
TEST_F(RecordTest, TlsSessionsAreCountedPerDayAndBecomeOneReportPerDomain) {
  auto file = dir_ / "records.sqlite";
  {
    database db(file);
    for (int i = 0; i < 3; ++i) db.submit_tls_session({"2026-12-05", "example.com", "sts", "mx1.example.com", "192.0.2.1", "success"});
    db.submit_tls_session({"2026-12-05", "example.com", "sts", "mx2.example.com", "192.0.2.2", "certificate-host-mismatch"});
    db.submit_tls_session({"2026-12-05", "dane.example", "tlsa", "mx.dane.example", "", "dnssec-invalid"});
    db.submit_tls_session({"2026-12-06", "example.com", "sts", "mx1.example.com", "192.0.2.1", "success"});
    db.flush();
  }
  auto rows = read_tls_sessions(file, "2026-12-05");
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].policy_domain, "dane.example");
  EXPECT_EQ(read_tls_sessions(file, "2026-12-05", "example.com").size(), 2u);
  EXPECT_EQ(read_tls_sessions(file, "2026-12-06").at(0).sessions, 1);

  auto reports = make_tls_reports(rows, "2026-12-05", {"Example Health", "mailto:tls@gw.test", "gw.test"});
  ASSERT_EQ(reports.size(), 2u);
  const auto& r = reports[1];
  EXPECT_EQ(r.policy_domain, "example.com");
  EXPECT_EQ(r.successes, 3);
  EXPECT_EQ(r.failures, 1);
  // RFC 8460 5.1: sender!policy-domain!begin!end, the day's first and last second.
  EXPECT_EQ(r.file_name, "gw.test!example.com!1796428800!1796515199.json");
  EXPECT_NE(r.json.find("\"date-range\": {\"start-datetime\": \"2026-12-05T00:00:00Z\", \"end-datetime\": "
                        "\"2026-12-05T23:59:59Z\"}"), std::string::npos) << r.json;
  EXPECT_NE(r.json.find("\"policy-type\": \"sts\", \"policy-domain\": \"example.com\", \"mx-host\": "
                        "[\"mx1.example.com\", \"mx2.example.com\"]"), std::string::npos) << r.json;
  EXPECT_NE(r.json.find("\"total-successful-session-count\": 3, \"total-failure-session-count\": 1"), std::string::npos);
  EXPECT_NE(r.json.find("{\"result-type\": \"certificate-host-mismatch\", \"receiving-mx-hostname\": "
                        "\"mx2.example.com\", \"receiving-ip\": \"192.0.2.2\", \"failed-session-count\": 1}"),
            std::string::npos) << r.json;
  // No connection, no receiving-ip.
  EXPECT_EQ(reports[0].json.find("receiving-ip"), std::string::npos) << reports[0].json;
  EXPECT_TRUE(make_tls_reports(rows, "2026-02-31", {}).empty());
  EXPECT_TRUE(make_tls_reports(rows, "yesterday", {}).empty());
}

// RFC 8460 3: the _smtp._tls record, and what is refused in it.
TEST(TlsReport, TheRecordNamesMailtoAndHttpsDestinations) {
  auto r = parse_tlsrpt_record("v=TLSRPTv1; rua=mailto:tls@example.com, https://r.example.com/v1/tls ;");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->mailto, std::vector<std::string>{"tls@example.com"});
  EXPECT_EQ(r->https, std::vector<std::string>{"https://r.example.com/v1/tls"});
  EXPECT_TRUE(parse_tlsrpt_record("v=TLSRPTv1;rua=MAILTO:a@b.example;x=unknown"));
  EXPECT_FALSE(parse_tlsrpt_record("v=TLSRPTv2; rua=mailto:a@b.example"));
  EXPECT_FALSE(parse_tlsrpt_record("rua=mailto:a@b.example; v=TLSRPTv1"));
  EXPECT_FALSE(parse_tlsrpt_record("v=TLSRPTv1"));
  EXPECT_FALSE(parse_tlsrpt_record("v=TLSRPTv1; rua=mailto:a@b.example; rua=mailto:c@d.example"));
  // Nothing that could become a header or a command: hfields, a second
  // address, line breaks; plain http.
  EXPECT_FALSE(parse_tlsrpt_record("v=TLSRPTv1; rua=mailto:a@b.example?subject=x"));
  EXPECT_FALSE(parse_tlsrpt_record("v=TLSRPTv1; rua=mailto:a@b.example\r\nBcc: c@d.example"));
  EXPECT_FALSE(parse_tlsrpt_record("v=TLSRPTv1; rua=http://r.example.com/"));
  EXPECT_FALSE(parse_tlsrpt_record("v=TLSRPTv1; rua=mailto:@b.example"));
}

TEST(TlsReport, TheMailCarriesTheGzipReportAndSection53Fields) {
  std::vector<tls_session_count> rows{{"example.com", "sts", "mx1.example.com", "192.0.2.1", "success", 7}};
  auto rep = make_tls_reports(rows, "2026-12-05", {"Example Health", "mailto:tls@gw.test", "gw.test"}).at(0);
  std::string gz = gzip_report(rep.json);
  ASSERT_GE(gz.size(), 18u);
  EXPECT_EQ(gz.substr(0, 2), std::string("\x1f\x8b"));  // RFC 1952 magic
  std::string mail = tls_report_mail(rep, gz, "tlsrpt-noreply@gw.test", "tls@example.com", 1796515300);
  EXPECT_NE(mail.find("\r\nSubject: Report Domain: example.com Submitter: gw.test Report-ID: <" + rep.report_id + ">\r\n"),
            std::string::npos) << mail;
  EXPECT_NE(mail.find("\r\nTLS-Report-Domain: example.com\r\nTLS-Report-Submitter: gw.test\r\n"), std::string::npos);
  EXPECT_NE(mail.find("\r\nTLS-Required: No\r\n"), std::string::npos);
  EXPECT_NE(mail.find("Content-Type: multipart/report; report-type=\"tlsrpt\";"), std::string::npos);
  EXPECT_NE(mail.find("Content-Type: application/tlsrpt+gzip"), std::string::npos);
  EXPECT_NE(mail.find("filename=\"gw.test!example.com!1796428800!1796515199.json.gz\""), std::string::npos);
  EXPECT_NE(mail.find(sealgate::base64_encode(gz).substr(0, 76) + "\r\n"), std::string::npos);
  for (size_t at = 0; (at = mail.find('\n', at)) != std::string::npos; ++at) ASSERT_EQ(mail[at - 1], '\r');
}
