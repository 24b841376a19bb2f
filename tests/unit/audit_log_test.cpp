// The audit chain: every record event becomes a chained entry; a verified
// copy stays verified; editing, deleting or inserting an entry (with plain
// sqlite3, as anyone with the file could) is found and the right entry named;
// a checkpoint rewritten by someone without the key is refused; a purge
// keeps the rest verifiable. The chain is also checked here the way
// docs/audit.md tells an auditor to, without the code under test.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "common/text.hpp"
#include "gateway/record/audit_log.hpp"
#include "gateway/record/database.hpp"
#include "gateway/record/report.hpp"
#include "gateway/record/schema.hpp"

using namespace sealgate::gateway;
namespace fs = std::filesystem;

namespace {

class AuditLog : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("sealgate-audit-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    file_ = dir_ / "record.db";
    key_ = audit::ed25519_key::generate();
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Three messages, each accepted, deferred once and delivered: nine entries.
  void write_history(database& db, int64_t at = 1'800'000'000, int first_id = 10) {
    for (int i = 0; i < 3; ++i) {
      spooled_envelope m;
      m.queue_id = "00000000000000" + std::to_string(first_id + i);
      m.received = at + i;
      m.listener = "submission";
      m.client_address = "127.0.0.1";
      m.helo = "app.example";
      m.sender = "billing@example.org";
      m.recipients.push_back({"patient" + std::to_string(i) + "@example.net", {}});
      m.content_size = 1234;
      db.record_accepted({m});
      attempt_row r;
      r.queue_id = m.queue_id;
      r.address = m.recipients[0].recipient;
      r.at = at + 10 + i;
      r.outcome = "deferred";
      r.method = "tls";
      r.reply = "451 4.3.0 try later";
      db.record_attempts({r});
      r.at += 100;
      r.outcome = "delivered";
      r.tls_protocol = "TLSv1.3";
      r.certificate = "dane";
      r.reply = "250 2.0.0 ok";
      db.record_attempts({r});
    }
  }

  void sql(const std::string& statement, const fs::path& file = {}) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((file.empty() ? file_ : file).c_str(), &db), SQLITE_OK);
    char* error = nullptr;
    int rc = sqlite3_exec(db, statement.c_str(), nullptr, nullptr, &error);
    std::string why = error ? error : "";
    sqlite3_free(error);
    sqlite3_close(db);
    ASSERT_EQ(rc, SQLITE_OK) << statement << ": " << why;
  }

  audit::verify_report verify(const audit::verify_options& o = {}) { return audit::verify_chain(file_, key_, o); }

  // One value of the file, as text ("NULL" for NULL).
  std::string scalar(const std::string& query, const fs::path& file = {}) {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open((file.empty() ? file_ : file).c_str(), &db), SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    std::string out = "<no row>";
    if (sqlite3_prepare_v2(db, query.c_str(), -1, &st, nullptr) != SQLITE_OK) {
      ADD_FAILURE() << query << ": " << sqlite3_errmsg(db);
    } else if (sqlite3_step(st) == SQLITE_ROW) {
      auto* t = sqlite3_column_text(st, 0);
      out = t ? reinterpret_cast<const char*>(t) : "NULL";
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return out;
  }

  static std::string problems(const audit::verify_report& r) {
    std::string s;
    for (const auto& p : r.problems) s += std::to_string(p.seq) + ": " + p.what + "\n";
    return s;
  }

  fs::path dir_, file_;
  audit::ed25519_key key_ = audit::ed25519_key::generate();
};

TEST_F(AuditLog, EveryEventIsAChainedEntryAndAnUntouchedCopyVerifies) {
  {
    database db(file_);
    write_history(db);
    EXPECT_TRUE(db.make_checkpoint(key_, 1'800'001'000));
    EXPECT_FALSE(db.make_checkpoint(key_, 1'800'001'001)) << "nothing new to sign";
  }
  auto r = verify();
  EXPECT_TRUE(r.intact()) << problems(r);
  EXPECT_EQ(r.entries, 9);
  EXPECT_EQ(r.checkpoints, 1);
  EXPECT_EQ(r.unsigned_entries, 0);
  // The copy an auditor takes verifies the same.
  fs::copy_file(file_, dir_ / "copy.db");
  EXPECT_TRUE(audit::verify_chain(dir_ / "copy.db", key_).intact());
}

TEST_F(AuditLog, AnEditedFieldIsNamed) {
  {
    database db(file_);
    write_history(db);
  }
  // Entry 6 is the second message's delivery: someone claims it went by PGP.
  sql("UPDATE audit_events SET entry = replace(entry, '\"method\":\"tls\"', '\"method\":\"pgp\"') WHERE seq = 6");
  auto r = verify();
  ASSERT_FALSE(r.intact());
  EXPECT_EQ(r.problems.front().seq, 6) << problems(r);
  EXPECT_NE(r.problems.front().what.find("altered"), std::string::npos) << problems(r);
  // The rows that still say tls now disagree with the entry: named at the same entry.
  for (const auto& p : r.problems) EXPECT_EQ(p.seq, 6) << problems(r);
}

TEST_F(AuditLog, AnEditedEntryWithItsHashRecomputedIsNamed) {
  {
    database db(file_);
    write_history(db);
  }
  // Edited and rehashed by someone who knows the format: the next link breaks.
  sql("UPDATE audit_events SET entry = replace(entry, 'TLSv1.3', 'TLSv1.2') WHERE seq = 6");
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(file_.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT prev, entry FROM audit_events WHERE seq = 6", -1, &st, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  std::string hash = audit::link_hash(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)),
                                      reinterpret_cast<const char*>(sqlite3_column_text(st, 1)));
  sqlite3_finalize(st);
  sqlite3_close(db);
  sql("UPDATE audit_events SET hash = '" + hash + "' WHERE seq = 6");
  auto r = verify();
  ASSERT_FALSE(r.intact());
  EXPECT_EQ(r.problems.front().seq, 6) << problems(r);
  EXPECT_NE(r.problems.front().what.find("altered"), std::string::npos) << problems(r);
}

TEST_F(AuditLog, ADeletedEntryIsNamed) {
  {
    database db(file_);
    write_history(db);
  }
  sql("DELETE FROM audit_events WHERE seq = 4");
  auto r = verify();
  ASSERT_FALSE(r.intact());
  EXPECT_EQ(r.problems.front().seq, 5) << problems(r);
  EXPECT_NE(r.problems.front().what.find("deleted: entries 4 to 4"), std::string::npos) << problems(r);
  // Renumbered to hide the gap: still found, at the same place.
  sql("UPDATE audit_events SET seq = seq - 1 WHERE seq > 4");
  r = verify();
  ASSERT_FALSE(r.intact());
  EXPECT_EQ(r.problems.front().seq, 3) << problems(r);
}

TEST_F(AuditLog, AnInsertedEntryIsNamed) {
  {
    database db(file_);
    write_history(db);
  }
  // Room made after entry 3, and an entry put there: naively, then linked
  // properly to entry 3 by someone who knows the format.
  sql("UPDATE audit_events SET seq = seq + 100 WHERE seq > 3; UPDATE audit_events SET seq = seq - 99 WHERE seq > 100");
  sql("INSERT INTO audit_events (seq, queue_id, entry, prev, hash) SELECT 4, '00000000000000099', "
      "'{\"kind\":\"delivered\",\"at\":1800000050,\"queue_id\":\"00000000000000099\"}', hash, 'bogus' FROM audit_events WHERE seq = 3");
  auto r = verify();
  ASSERT_FALSE(r.intact());
  EXPECT_EQ(r.problems.front().seq, 4) << problems(r);
  EXPECT_NE(r.problems.front().what.find("inserted"), std::string::npos) << problems(r);
  EXPECT_EQ(r.problems.size(), 1u) << problems(r);

  std::string entry = "{\"kind\":\"delivered\",\"at\":1800000050,\"queue_id\":\"00000000000000099\"}";
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(file_.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT hash FROM audit_events WHERE seq = 3", -1, &st, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  std::string prev = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  sqlite3_close(db);
  sql("UPDATE audit_events SET hash = '" + audit::link_hash(prev, entry) + "' WHERE seq = 4");
  r = verify();
  ASSERT_FALSE(r.intact());
  EXPECT_EQ(r.problems.front().seq, 4) << problems(r);
  EXPECT_NE(r.problems.front().what.find("inserted"), std::string::npos) << problems(r);
}

TEST_F(AuditLog, ARewrittenChainFailsItsSignedCheckpoint) {
  {
    database db(file_);
    write_history(db);
    ASSERT_TRUE(db.make_checkpoint(key_, 1'800'001'000));
  }
  // The whole chain rebuilt from an edited entry 2 on: every link holds, but
  // the signed head no longer matches, and a checkpoint re-signed with
  // another key does not count.
  sql("UPDATE audit_events SET entry = replace(entry, '451 4.3.0', '550 5.0.0') WHERE seq = 2");
  for (int seq = 2; seq <= 9; ++seq) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(file_.c_str(), &db), SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    std::string q = "SELECT (SELECT hash FROM audit_events WHERE seq = " + std::to_string(seq - 1) +
                    ") AS prev, entry FROM audit_events WHERE seq = " + std::to_string(seq);
    ASSERT_EQ(sqlite3_prepare_v2(db, q.c_str(), -1, &st, nullptr), SQLITE_OK);
    ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
    std::string prev = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    std::string entry = reinterpret_cast<const char*>(sqlite3_column_text(st, 1));
    sqlite3_finalize(st);
    sqlite3_close(db);
    sql("UPDATE audit_events SET prev = '" + prev + "', hash = '" + audit::link_hash(prev, entry) +
        "' WHERE seq = " + std::to_string(seq));
  }
  auto r = verify();
  ASSERT_FALSE(r.intact());
  EXPECT_EQ(r.problems.front().seq, 9) << problems(r);
  EXPECT_NE(r.problems.front().what.find("rewritten"), std::string::npos) << problems(r);

  auto other = audit::ed25519_key::generate();
  sql("DELETE FROM audit_checkpoints WHERE key_id = '" + key_.key_id() + "'");
  {
    database db(file_);
    db.make_checkpoint(other, 1'800'002'000);
  }
  r = verify();
  EXPECT_FALSE(r.intact()) << "a checkpoint signed by another key proves nothing";
  EXPECT_NE(problems(r).find("another key"), std::string::npos) << problems(r);
}

TEST_F(AuditLog, AWitnessCopyCatchesACheckpointRemoved) {
  std::vector<audit::checkpoint> witness;
  {
    database db(file_);
    write_history(db);
    witness.push_back(*db.make_checkpoint(key_, 1'800'001'000));
  }
  auto line = audit::witness_line(witness[0]);
  auto parsed = audit::parse_witness_line(line + "\n");
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->statement, witness[0].statement);
  audit::verify_options o;
  o.witness = {*parsed};
  auto r = verify(o);
  EXPECT_TRUE(r.intact()) << problems(r);
  EXPECT_EQ(r.witnessed, 1);
  sql("DELETE FROM audit_checkpoints");
  r = verify(o);
  ASSERT_FALSE(r.intact());
  EXPECT_NE(problems(r).find("witness holds a checkpoint"), std::string::npos) << problems(r);
}

TEST_F(AuditLog, APurgeKeepsTheRestVerifiable) {
  {
    database db(file_);
    write_history(db, 1'700'000'000);  // old: purged
    write_history(db, 1'800'000'000, 20);  // recent: kept
    ASSERT_TRUE(db.make_checkpoint(key_, 1'800'001'000));
    auto p = db.purge(1'750'000'000, key_, 1'800'002'000, "retention");
    EXPECT_EQ(p.up_to, 9);
    EXPECT_EQ(p.entries, 9);
  }
  auto r = verify();
  EXPECT_TRUE(r.intact()) << problems(r);
  EXPECT_EQ(r.purged_up_to, 9);
  EXPECT_EQ(r.first_seq, 10);
  // Deleting more of the beginning by hand is not a purge.
  sql("DELETE FROM audit_events WHERE seq <= 10");
  r = verify();
  EXPECT_FALSE(r.intact()) << problems(r);
}

TEST_F(AuditLog, ARecordRowEditedBesideItsEntryIsNamed) {
  {
    database db(file_);
    write_history(db);
  }
  EXPECT_TRUE(verify().intact()) << problems(verify());
  EXPECT_EQ(verify().rows_checked, 3 + 6 + 3);  // messages, attempts, recipients
  // The tables reports read, edited while the chain stays as it was.
  sql("UPDATE recipients SET method = 'pgp' WHERE queue_id = '0000000000000011'");
  auto r = verify();
  ASSERT_EQ(r.problems.size(), 1u) << problems(r);
  EXPECT_EQ(r.problems[0].seq, 6);
  EXPECT_NE(r.problems[0].what.find("recipients row 0000000000000011 #0 says another method"), std::string::npos)
      << problems(r);
  sql("UPDATE recipients SET method = 'tls' WHERE queue_id = '0000000000000011'");
  sql("UPDATE attempts SET certificate = 'dane' WHERE rowid = 1");
  sql("UPDATE messages SET sender = 'someone@else.example' WHERE queue_id = '0000000000000012'");
  r = verify();
  EXPECT_NE(problems(r).find("attempts row 1 of 0000000000000010 says another certificate than its audit entry 2"),
            std::string::npos) << problems(r);
  EXPECT_NE(problems(r).find("messages row of 0000000000000012 says another sender than its audit entry 7"),
            std::string::npos) << problems(r);
  // A row put in without an entry.
  sql("INSERT INTO attempts (queue_id, idx, at, outcome, method) VALUES ('0000000000000010', 0, 1800000500, 'delivered', 'pgp')");
  EXPECT_NE(problems(verify()).find("inserted: the attempts row 7 of 0000000000000010 has no audit entry"),
            std::string::npos) << problems(verify());
}

TEST_F(AuditLog, APurgeNeverSignsOverAnAlteredChain) {
  {
    database db(file_);
    write_history(db, 1'700'000'000);
  }
  sql("UPDATE audit_events SET entry = replace(entry, 'TLSv1.3', 'TLSv1.2') WHERE seq = 3");
  {
    database db(file_);
    EXPECT_THROW(db.purge(1'750'000'000, key_, 1'800'002'000, "retention"), std::runtime_error);
  }
  auto r = verify();
  ASSERT_FALSE(r.intact());
  EXPECT_EQ(r.problems.front().seq, 3) << "the evidence is still there";
}

TEST_F(AuditLog, AVerifyFromACheckpointChecksOnlyWhatFollows) {
  {
    database db(file_);
    write_history(db);
    ASSERT_TRUE(db.make_checkpoint(key_, 1'800'001'000));
    write_history(db, 1'800'005'000, 20);
  }
  audit::verify_options o;
  o.since = 1'800'001'500;
  auto r = verify(o);
  EXPECT_TRUE(r.intact()) << problems(r);
  EXPECT_EQ(r.first_seq, 10);
  EXPECT_EQ(r.unsigned_entries, 9);
}

TEST_F(AuditLog, PolicyHistoryKeepsEveryVersion) {
  {
    database db(file_);
    db.record_policy(sealgate::sha256_hex("rules: [a]\n"), "/etc/sealgate/policy.yaml", "rules: [a]\n", 1, "start", "");
    db.record_policy(sealgate::sha256_hex("rules: [b]\n"), "/etc/sealgate/policy.yaml", "rules: [b]\n", 2, "SIGHUP", "");
  }
  auto v = read_policy_version(file_, sealgate::sha256_hex("rules: [a]\n").substr(0, 12));
  ASSERT_TRUE(v);
  EXPECT_EQ(v->text, "rules: [a]\n");
  EXPECT_FALSE(read_policy_version(file_, "0123456789abcdef"));
  EXPECT_TRUE(verify().intact());
  EXPECT_EQ(verify().entries, 2);
}

// The lookup columns beside each entry (kind, at, idx, attempt, queue_id)
// are not hashed: verify compares each with its entry, and names the one
// edited while the entry and the chain stay as they were.
TEST_F(AuditLog, AnEditedLookupColumnIsNamed) {
  {
    database db(file_);
    write_history(db);
  }
  EXPECT_EQ(scalar("SELECT kind || ' ' || at || ' ' || idx || ' ' || attempt FROM audit_events WHERE seq = 3"),
            "delivered 1800000110 0 2");
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM audit_events WHERE kind = 'accepted' AND idx IS NULL AND attempt IS NULL"), "3");
  struct edit {
    const char *column, *bogus, *as_written;
  };
  const edit edits[] = {{"kind", "'deferred'", "'delivered'"},
                        {"at", "1700000000", "1800000110"},
                        {"idx", "1", "0"},
                        {"attempt", "5", "2"},
                        {"queue_id", "'0000000000000012'", "'0000000000000010'"}};
  for (const auto& e : edits) {
    sql(std::string("UPDATE audit_events SET ") + e.column + " = " + e.bogus + " WHERE seq = 3");
    auto r = verify();
    ASSERT_FALSE(r.intact()) << e.column;
    EXPECT_EQ(r.problems.front().seq, 3) << problems(r);
    EXPECT_EQ(r.problems.front().what,
              std::string("altered: the ") + e.column + " column of entry 3 does not match the entry")
        << problems(r);
    sql(std::string("UPDATE audit_events SET ") + e.column + " = " + e.as_written + " WHERE seq = 3");
    EXPECT_TRUE(verify().intact()) << e.column << "\n" << problems(verify());
  }
  sql("UPDATE audit_events SET at = NULL WHERE seq = 1");
  EXPECT_EQ(verify().problems.front().what, "altered: the at column of entry 1 does not match the entry");
}

// close_pass derives rows again for recipients that were final before its
// pass: after a kill -9 between the commit of their rows and the unlink of
// the message, and for every recipient finished in an earlier pass of a
// message with several. Such a row changes nothing, so it adds no entry.
TEST_F(AuditLog, ARowDerivedAgainAddsNoEntry) {
  attempt_row delivered;
  {
    database db(file_);
    spooled_envelope m;
    m.queue_id = "0000000000000042";
    m.received = 1'800'000'000;
    m.listener = "submission";
    m.client_address = "127.0.0.1";
    m.helo = "app.example";
    m.sender = "billing@example.org";
    m.recipients.push_back({"pat@example.net", {}});
    m.recipients.push_back({"sam@example.com", {}});
    m.content_size = 100;
    db.record_accepted({m});
    // Pass 1: pat delivered, sam deferred.
    delivered.queue_id = m.queue_id;
    delivered.address = "pat@example.net";
    delivered.at = m.received + 5;
    delivered.outcome = "delivered";
    delivered.method = "tls";
    delivered.policy_sha256 = "ab";
    delivered.tls_protocol = "TLSv1.3";
    delivered.reply = "250 2.0.0 ok";
    attempt_row deferred = delivered;
    deferred.index = 1;
    deferred.address = "sam@example.com";
    deferred.outcome = "deferred";
    deferred.reply = "451 4.3.0 later";
    db.record_attempts({delivered, deferred});
    EXPECT_EQ(scalar("SELECT MAX(seq) FROM audit_events"), "3");
    // Pass 2: sam delivered, and pat's row derived again as close_pass does
    // (no attempt, its status line's method and detail, no policy).
    attempt_row sam = deferred;
    sam.at += 600;
    sam.outcome = "delivered";
    sam.reply = "250 2.0.0 ok";
    attempt_row pat_again = delivered;
    pat_again.at = sam.at;
    pat_again.attempted = false;
    pat_again.policy_sha256.clear();
    pat_again.tls_protocol.clear();
    db.record_attempts({sam, pat_again});
    EXPECT_EQ(scalar("SELECT MAX(seq) FROM audit_events"), "4") << "sam's delivery, nothing for pat";
    // Killed after that commit, before the unlink: the next start's pass
    // derives both rows again.
    attempt_row sam_again = sam;
    sam_again.attempted = false;
    db.record_attempts({pat_again, sam_again});
  }
  EXPECT_EQ(scalar("SELECT MAX(seq) FROM audit_events"), "4");
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM audit_events WHERE kind = 'delivered'"), "2");
  EXPECT_EQ(scalar("SELECT attempts || ' ' || updated_at FROM recipients WHERE idx = 0"), "1 1800000005")
      << "pat's row as its delivery left it";
  auto r = verify();
  EXPECT_TRUE(r.intact()) << problems(r);
  // A row that does change something is still an event: a recipient row lost
  // in a crash is created by its row, with its entry.
  sql("DELETE FROM recipients WHERE idx = 1");
  {
    database db(file_);
    attempt_row lost = delivered;
    lost.index = 1;
    lost.address = "sam@example.com";
    lost.attempted = false;
    db.record_attempts({lost});
  }
  EXPECT_EQ(scalar("SELECT MAX(seq) FROM audit_events"), "5");
  EXPECT_EQ(scalar("SELECT status FROM recipients WHERE idx = 1"), "delivered");
}

// A record written at schema version 5 (no lookup columns) gets them filled
// by migration 6, from its entries, and verifies as one written since.
TEST_F(AuditLog, AVersion5RecordGetsItsLookupColumnsAndVerifies) {
  {
    database db(file_);
    write_history(db);
    ASSERT_TRUE(db.make_checkpoint(key_, 1'800'001'000));
  }
  // The same rows in a file made by migrations 1 to 5, as sealgate 5 made it.
  const fs::path v5 = dir_ / "v5.db";
  {
    std::string ddl;
    for (int v = 1; v <= 5; ++v)
      for (const auto& statement : migration_statements(v)) ddl += statement + ";\n";
    ddl += "INSERT INTO schema_version(version) VALUES(5);"
           "ATTACH '" + file_.string() + "' AS v6;"
           "INSERT INTO messages SELECT * FROM v6.messages;"
           "INSERT INTO recipients SELECT * FROM v6.recipients;"
           "INSERT INTO attempts(rowid, queue_id, idx, at, outcome, method, rule, policy_sha256, mx_host, mx_address,"
           " tls_protocol, tls_cipher, certificate, reply, classes, key_fingerprint)"
           " SELECT rowid, queue_id, idx, at, outcome, method, rule, policy_sha256, mx_host, mx_address,"
           " tls_protocol, tls_cipher, certificate, reply, classes, key_fingerprint FROM v6.attempts;"
           "INSERT INTO audit_events(seq, queue_id, entry, prev, hash) SELECT seq, queue_id, entry, prev, hash FROM v6.audit_events;"
           "INSERT INTO audit_checkpoints SELECT * FROM v6.audit_checkpoints;";
    sql(ddl, v5);
  }
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM pragma_table_info('audit_events')", v5), "5");
  EXPECT_THROW(audit::verify_chain(v5, key_), std::runtime_error) << "a reader does not read an older schema";
  { database upgrade(v5); }
  EXPECT_EQ(scalar("SELECT version FROM schema_version", v5), std::to_string(schema::newest_version));
  // Every column as append fills it in a file made at version 6.
  const std::string columns = "SELECT group_concat(seq || ':' || COALESCE(queue_id, '-') || ':' || kind || ':' || at"
                              " || ':' || COALESCE(idx, '-') || ':' || COALESCE(attempt, '-'), ' ') FROM"
                              " (SELECT * FROM audit_events ORDER BY seq)";
  EXPECT_EQ(scalar(columns, v5), scalar(columns));
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM audit_events WHERE kind IS NULL OR at IS NULL", v5), "0");
  auto r = audit::verify_chain(v5, key_);
  EXPECT_TRUE(r.intact()) << problems(r);
  EXPECT_EQ(r.entries, 9);
  EXPECT_EQ(r.rows_checked, 3 + 6 + 3);
}

// Entries are read back in C++, exactly: json_string writes an octet >= 0x80
// as \u00XX, and SQLite's json_extract read that as the code point U+00XX (two
// octets in UTF-8), so a UTF-8 reply or HELO no longer matched its row.
TEST_F(AuditLog, EntriesReadBackToTheBytesWritten) {
  auto e = audit::entry_fields::parse(audit::event("delivered", 1800000000, "0000000000000010")
                                          .add("idx", int64_t{-3})
                                          .add("reply", std::string("250 d\xc3\xa9j\xc3\xa0 \"vu\"\\\n\0!", 19))
                                          .add("recipients", std::vector<std::string>{"a@x", "b@y"})
                                          .text());
  ASSERT_TRUE(e);
  EXPECT_EQ(e->text("kind"), "delivered");
  EXPECT_EQ(e->integer("at"), 1800000000);
  EXPECT_EQ(e->integer("idx"), -3);
  EXPECT_EQ(e->text("idx"), "-3");
  EXPECT_EQ(e->text("reply"), std::string("250 d\xc3\xa9j\xc3\xa0 \"vu\"\\\n\0!", 19));
  EXPECT_EQ(e->array_size("recipients"), 2u);
  EXPECT_FALSE(e->has("attempt"));
  EXPECT_EQ(e->text("attempt"), "");
  EXPECT_FALSE(e->integer("kind"));
  for (const char* bad : {"", "{", "[]", "{\"a\":1", "{\"a\":1}x", "{\"a\":true}", "{\"a\":{\"b\":1}}", "{\"a\":\"\\q\"}",
                          "{\"a\":12345678901234567890}", "{\"a\":\"unterminated}"})
    EXPECT_FALSE(audit::entry_fields::parse(bad)) << bad;

  {
    database db(file_);
    write_history(db);
    attempt_row r;
    r.queue_id = "0000000000000010";
    r.address = "patient0@example.net";
    r.at = 1'800'000'500;
    r.outcome = "bounced";
    r.method = "tls";
    r.reply = "550 5.1.1 Empf\xc3\xa4nger unbekannt";
    db.record_attempts({r});
  }
  auto v = verify();
  EXPECT_TRUE(v.intact()) << problems(v);
}

}  // namespace
