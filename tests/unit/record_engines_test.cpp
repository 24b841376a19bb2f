// The record on both engines (a SQLite file and a real PostgreSQL 15): the
// same writer, chain, reports and checkpoints, and on PostgreSQL two writers
// (two nodes) appending to one chain at once without forking it.
#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "gateway/record/audit_log.hpp"
#include "gateway/record/compliance.hpp"
#include "gateway/record/database.hpp"
#include "gateway/record/record_journal.hpp"
#include "gateway/record/report.hpp"
#include "gateway/record/schema.hpp"
#include "tests/unit/test_databases.hpp"

namespace sealgate::gateway {
namespace {

using sealgate::testing::engine_name;
using sealgate::testing::test_database;

spooled_envelope accepted(const std::string& queue_id, int64_t at) {
  spooled_envelope m;
  m.queue_id = queue_id;
  m.received = at;
  m.listener = "smarthost";
  m.client_address = "192.0.2.7";
  m.helo = "app.example";
  m.sender = "app@clinic.example";
  m.recipients = {{"pat@example.org", {}}, {"lee@example.net", {}}};
  m.content_size = 2048;
  return m;
}

attempt_row attempt(const std::string& queue_id, size_t index, const std::string& outcome, int64_t at) {
  attempt_row r;
  r.queue_id = queue_id;
  r.index = index;
  r.address = index == 0 ? "pat@example.org" : "lee@example.net";
  r.at = at;
  r.outcome = outcome;
  r.method = "tls";
  r.rule = "phi";
  r.policy_sha256 = std::string(64, 'b');
  r.mx_host = "mx.example.org";
  r.reply = std::string("250 2.0.0 ok \xff", 14);  // not UTF-8: stored all the same
  return r;
}

class RecordEngines : public ::testing::TestWithParam<sql::engine> {
 protected:
  RecordEngines() : database_(GetParam()) {}
  test_database database_;
};

TEST_P(RecordEngines, TheWriterTheChainAndTheReportsWorkAlike) {
  const int64_t t = 1796540000;
  auto key = audit::ed25519_key::generate();
  {
    database db(database_.where());
    db.record_accepted({accepted("00000000000000A1", t)});
    db.set_message_id("00000000000000A1", "<a1@clinic.example>");
    db.submit({attempt("00000000000000A1", 0, "delivered", t + 1), attempt("00000000000000A1", 1, "deferred", t + 1)},
              nullptr);
    db.submit_tls_session({"2026-12-05", "example.org", "sts", "mx.example.org", "192.0.2.25", "success"});
    db.submit_tls_session({"2026-12-05", "example.org", "sts", "mx.example.org", "192.0.2.25", "success"});
    db.flush();
    db.record_policy(std::string(64, 'b'), "policy.yaml", "rules: []\n", t, "start", "");
    ASSERT_TRUE(db.make_checkpoint(key, t + 2));
    // Recorded again (a restart after a crash re-derives it): nothing new.
    auto again = attempt("00000000000000A1", 0, "delivered", t + 1);
    again.attempted = false;
    db.record_attempts({again});
  }
  auto story = read_message_story(database_.where(), "00000000000000A1");
  ASSERT_TRUE(story.message);
  EXPECT_EQ(story.message->message_id, "<a1@clinic.example>");
  ASSERT_EQ(story.recipients.size(), 2u);
  EXPECT_EQ(story.recipients[0].status, "delivered");
  EXPECT_EQ(story.recipients[1].status, "deferred");
  ASSERT_GE(story.attempts.size(), 2u);
  EXPECT_EQ(story.attempts[0].reply.substr(0, 13), "250 2.0.0 ok ");

  auto counts = count_deliveries(database_.where(), report_grouping::method, 0);
  ASSERT_EQ(counts.size(), 1u);
  EXPECT_EQ(counts[0].key, "tls");
  EXPECT_EQ(counts[0].delivered, 1);
  EXPECT_EQ(counts[0].deferred, 1);
  auto days = count_deliveries(database_.where(), report_grouping::day, 0);
  ASSERT_EQ(days.size(), 1u);
  EXPECT_EQ(days[0].key, "2026-12-06");

  auto sessions = read_tls_sessions(database_.where(), "2026-12-05");
  ASSERT_EQ(sessions.size(), 1u);
  EXPECT_EQ(sessions[0].sessions, 2);

  message_search search;
  search.recipient = "PAT@example.org";
  auto found = find_messages(database_.where(), search);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].queue_id, "00000000000000A1");

  auto policy = read_policy_version(database_.where(), std::string(12, 'b'));
  ASSERT_TRUE(policy);
  EXPECT_EQ(policy->text, "rules: []\n");

  auto entries = read_audit_entries(database_.where(), "00000000000000A1");
  ASSERT_EQ(entries.size(), 4u) << "accepted, message-id, delivered, deferred; the re-derived row added none";
  EXPECT_EQ(entries[0].kind, "accepted");

  auto report = audit::verify_chain(database_.where(), key);
  EXPECT_TRUE(report.intact()) << (report.problems.empty() ? "" : report.problems.front().what);

  auto summary = summarize_compliance(database_.where(), 0, t + 86400);
  EXPECT_EQ(summary.messages, 1);
}

TEST_P(RecordEngines, TwoWritersAppendToOneChainWithoutForkingIt) {
  // Two nodes on PostgreSQL, or the gateway and the command line on SQLite.
  auto key = audit::ed25519_key::generate();
  {
    database a(database_.where()), b(database_.where());
    auto write = [](database& db, char node) {
      for (int i = 0; i < 40; ++i) {
        std::string id = std::string("00000000000") + node + "0" + std::to_string(100 + i);
        db.submit_accepted({accepted(id, 1796540000 + i)});
        db.submit({attempt(id, 0, "delivered", 1796540001 + i)}, nullptr);
      }
      db.flush();
    };
    std::thread ta(write, std::ref(a), 'A'), tb(write, std::ref(b), 'B');
    ta.join();
    tb.join();
    ASSERT_TRUE(a.make_checkpoint(key, 1796600000));
  }
  auto report = audit::verify_chain(database_.where(), key);
  EXPECT_TRUE(report.intact()) << (report.problems.empty() ? "" : report.problems.front().what);
  EXPECT_EQ(report.entries, 160);
}

int64_t count(const sql::location& where, const std::string& table) {
  auto db = sql::open(where, sql::access::read_only, schema::schema_name);
  sql::statement q(db.get(), "SELECT COUNT(*) AS n FROM " + table);
  return q.next_row() ? q.integer("n") : -1;
}

TEST_P(RecordEngines, ABatchLeftInTheJournalIsWrittenAtStartAndOnlyOnce) {
  char tmpl[] = "/tmp/sealgate-recj-XXXXXX";
  std::filesystem::path dir = ::mkdtemp(tmpl);
  record_batch b;
  b.id = new_batch_id();
  b.accepted = {accepted("00000000000000C1", 1796540000)};
  b.rows = {attempt("00000000000000C1", 0, "delivered", 1796540001)};
  { database create(database_.where()); }
  ASSERT_FALSE(record_journal(dir).append(b));
  { database db(database_.where(), dir); }
  EXPECT_TRUE(record_journal(dir).empty());
  EXPECT_EQ(count(database_.where(), "messages"), 1);
  EXPECT_EQ(count(database_.where(), "attempts"), 1);
  const auto entries = count(database_.where(), "audit_events");
  // Its COMMIT had reached the database, its reply had not: journaled again.
  ASSERT_FALSE(record_journal(dir).append(b));
  { database db(database_.where(), dir); }
  EXPECT_TRUE(record_journal(dir).empty());
  EXPECT_EQ(count(database_.where(), "attempts"), 1) << "recorded once";
  EXPECT_EQ(count(database_.where(), "audit_events"), entries);
  std::filesystem::remove_all(dir);
}

TEST(RecordPostgreSql, RecordsTheServerRefusesWaitInTheJournalAndAreWrittenWhenItTakesThemAgain) {
  test_database pg(sql::engine::postgresql);
  char tmpl[] = "/tmp/sealgate-recj-XXXXXX";
  std::filesystem::path dir = ::mkdtemp(tmpl);
  auto key = audit::ed25519_key::generate();
  {
    database db(pg.where(), dir);
    db.submit_accepted({accepted("00000000000000D1", 1796540000)});
    db.flush();
    // The server drops every connection of the gateway (a restart, a failover).
    {
      auto admin = sql::open(pg.where(), sql::access::read_write, "public");
      sql::statement end(admin.get(),
                         "SELECT pg_terminate_backend(pid) AS ended FROM pg_stat_activity"
                         " WHERE datname = current_database() AND pid <> pg_backend_pid()");
      while (end.next_row()) {
      }
    }
    bool committed = false;
    db.submit({attempt("00000000000000D1", 0, "delivered", 1796540001)}, [&](bool ok) { committed = ok; });
    db.flush();
    EXPECT_TRUE(committed) << "durable in the journal: the caller may remove its files";
    EXPECT_EQ(record_journal(dir).waiting().size(), 1u);
    // Within the back-off the next batch joins the journal, after the first.
    db.submit({attempt("00000000000000D1", 1, "deferred", 1796540002)}, nullptr);
    db.flush();
    std::this_thread::sleep_for(std::chrono::milliseconds(700));
    db.submit_accepted({accepted("00000000000000D2", 1796540003)});
    db.flush();
    EXPECT_TRUE(record_journal(dir).empty());
    ASSERT_TRUE(db.make_checkpoint(key, 1796600000));
  }
  EXPECT_EQ(count(pg.where(), "messages"), 2);
  EXPECT_EQ(count(pg.where(), "attempts"), 2);
  auto story = read_message_story(pg.where(), "00000000000000D1");
  ASSERT_EQ(story.recipients.size(), 2u);
  EXPECT_EQ(story.recipients[0].status, "delivered");
  EXPECT_EQ(story.recipients[1].status, "deferred");
  auto report = audit::verify_chain(pg.where(), key);
  EXPECT_TRUE(report.intact()) << (report.problems.empty() ? "" : report.problems.front().what);
  std::filesystem::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Engines, RecordEngines, ::testing::Values(sql::engine::sqlite, sql::engine::postgresql),
                         [](const auto& info) { return engine_name(info.param); });

}  // namespace
}  // namespace sealgate::gateway
