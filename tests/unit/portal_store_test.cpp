// The SQLite portal store (portal/store/store.hpp): the calls' semantics
// (codes: rate, lockout, single use, the session that asked), that retracted
// and expired ciphertext leaves the file's bytes at once, that nothing in
// the file opens a message without its link, and that two processes share
// one file.
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <tuple>
#include <vector>

#include "portal/store/store.hpp"
#include "portal/store/store_schema.hpp"
#include "portal/store/vault.hpp"
#include "tests/unit/test_databases.hpp"

namespace sealgate::portal {
namespace {

namespace fs = std::filesystem;

constexpr int64_t t0 = 1'700'000'000;
constexpr int64_t day = 86400;

std::string file_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Every byte SQLite keeps for the store: the file, its WAL and its shared-memory index.
std::string store_bytes(const fs::path& file) {
  return file_bytes(file) + file_bytes(file.string() + "-wal") + file_bytes(file.string() + "-shm");
}

bool contains(const std::string& haystack, std::string_view needle) {
  return haystack.find(needle) != std::string::npos;
}

// How many of data's 16-byte chunks appear in haystack. SQLite splits a
// large BLOB over overflow pages (each with a 4-byte link), so a chunk that
// straddles a page boundary is missed even when the data is there: callers
// compare fractions, not "all or nothing". A random 16-byte chunk appears by
// chance with probability ~2^-128 per offset.
constexpr size_t chunk = 16;
size_t chunks_in(const std::string& haystack, std::string_view data) {
  size_t found = 0;
  for (size_t at = 0; at + chunk <= data.size(); at += chunk) found += contains(haystack, data.substr(at, chunk));
  return found;
}
size_t chunks_of(std::string_view data) { return data.size() / chunk; }

mode_t mode_of(const fs::path& p) {
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

struct sealed_deposit {
  deposit d;
  std::string token;
  std::string message;
};

sealed_deposit make_deposit(const std::string& queue_id, const std::string& recipient, const std::string& message,
                            int64_t expires = t0 + 30 * day, std::string_view master_key = {}) {
  sealed_deposit s;
  s.token = new_token();
  s.message = message;
  s.d.lookup = lookup_key(s.token);
  s.d.queue_id = queue_id;
  s.d.recipient = recipient;
  s.d.sender = "clinic@example.com";
  s.d.created = t0;
  s.d.expires = expires;
  s.d.size = message.size();
  s.d.sealed = seal_message(message, s.token, s.d.lookup, master_key);
  return s;
}

// A browser: its session token lives in its cookie; the store sees its key.
struct browser {
  std::string token = new_token();
  std::string key = session_key(token);
};

const box_keys& gateway_keys() {
  static const box_keys keys = new_box_keys();
  return keys;
}

// As the portal process asks for a code: the code goes to the gateway in a
// box, the store keeps its hash. Returns the code through `code`.
code_request_result ask(store& s, int64_t entry_id, const browser& b, std::string& code, int64_t now,
                        const code_rules& rules = {}) {
  code = new_code();
  return s.request_code(entry_id, b.key, code_hash(b.token, code), box_seal(gateway_keys().public_key, code), now,
                        rules);
}

code_check_result check(store& s, int64_t entry_id, const browser& b, const std::string& code, int64_t now,
                        const code_rules& rules = {}) {
  return s.check_code(entry_id, b.key, code_hash(b.token, code), now, rules, "192.0.2.7");
}

list_filter filter(std::string_view recipient, std::string_view queue_id, bool active_only = false,
                   size_t limit = 1000) {
  list_filter f;
  f.recipient = recipient;
  f.queue_id = queue_id;
  f.active_only = active_only;
  f.limit = limit;
  return f;
}

event event_of(int64_t entry_id, int64_t at, const std::string& kind, const std::string& detail) {
  event e;
  e.entry_id = entry_id;
  e.queue_id = "Q1";
  e.recipient = "pat@example.org";
  e.at = at;
  e.kind = kind;
  e.detail = detail;
  return e;
}

std::string another_code(const std::string& code) { return code == "000000" ? "000001" : "000000"; }

std::vector<std::string> kinds(store& s, const std::string& queue_id) {
  std::vector<std::string> out;
  for (const auto& e : s.events(queue_id)) out.push_back(e.kind);
  return out;
}

size_t count_of(const std::vector<std::string>& v, std::string_view what) {
  return static_cast<size_t>(std::count(v.begin(), v.end(), what));
}

// A statement on the store's file through SQLite itself, as an operator would.
std::string scalar(const fs::path& file, const std::string& sql) {
  sqlite3* db = nullptr;
  std::string out = "(error)";
  if (sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK) {
      int rc = sqlite3_step(st);
      if (rc == SQLITE_ROW) {
        auto* t = sqlite3_column_text(st, 0);
        out = t ? reinterpret_cast<const char*>(t) : "(null)";
      } else if (rc == SQLITE_DONE) {
        out = "(none)";
      }
    }
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return out;
}

class PortalStore : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sealgate-portal-store-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    file_ = dir_ / "portal.sqlite";
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::unique_ptr<store> open() { return open_sqlite_store(file_); }
  fs::path dir_, file_;
};

TEST_F(PortalStore, ADepositIsFoundByItsLookupKeyAndOpensWithItsLink) {
  auto s = open();
  auto a = make_deposit("Q1", "pat@example.org", "Your results are ready.");
  int64_t id = s->add(a.d);
  EXPECT_GT(id, 0);

  auto e = s->find(a.d.lookup);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->id, id);
  EXPECT_EQ(e->lookup, a.d.lookup);
  EXPECT_EQ(e->queue_id, "Q1");
  EXPECT_EQ(e->recipient, "pat@example.org");
  EXPECT_EQ(e->sender, "clinic@example.com");
  EXPECT_EQ(e->notice_queue_id, "");
  EXPECT_EQ(e->created, t0);
  EXPECT_EQ(e->expires, t0 + 30 * day);
  EXPECT_EQ(e->size, a.message.size());
  EXPECT_EQ(e->state, entry_state::active);
  EXPECT_EQ(e->state_changed, 0);
  EXPECT_EQ(e->code_hash, "");
  EXPECT_EQ(e->failed_codes, 0);
  EXPECT_EQ(e->codes_sent, 0);

  auto sealed_back = s->sealed(id);
  ASSERT_TRUE(sealed_back);
  EXPECT_EQ(sealed_back->body, a.d.sealed.body);
  EXPECT_EQ(sealed_back->link_wrap, a.d.sealed.link_wrap);
  EXPECT_EQ(sealed_back->master_wrap, "");
  EXPECT_EQ(open_message(*sealed_back, a.token, e->lookup), a.message);

  EXPECT_FALSE(s->find(lookup_key(new_token())));
  EXPECT_FALSE(s->sealed(id + 1));

  s->set_notice(id, "N1");
  EXPECT_EQ(s->find(a.d.lookup)->notice_queue_id, "N1");
  EXPECT_THROW(s->set_notice(id + 100, "N2"), store_error);

  auto events = s->events("Q1");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, "deposited");
  EXPECT_EQ(events[0].entry_id, id);
  EXPECT_EQ(events[0].recipient, "pat@example.org");
  EXPECT_EQ(events[0].at, t0);
}

TEST_F(PortalStore, AMasterWrapAndLargeBodiesRoundTripByteForByte) {
  auto s = open();
  std::string master = random_bytes(32);
  auto a = make_deposit("Q1", "pat@example.org", random_bytes(3 << 20), t0 + day, master);
  int64_t id = s->add(a.d);
  auto back = s->sealed(id);
  ASSERT_TRUE(back);
  EXPECT_TRUE(back->body == a.d.sealed.body) << "3 MiB of ciphertext changed on its way through the store";
  EXPECT_EQ(back->master_wrap, a.d.sealed.master_wrap);
  auto reissued = reissue(*back, master, a.d.lookup, new_token(), "new aad");
  EXPECT_TRUE(reissued);
}

// Master-key mode: a new link replaces a lost one. The old link no longer
// finds the entry, the new one opens it, the notification waits in the
// outbox as a "notice", and a retracted deposit cannot be reissued.
TEST_F(PortalStore, ReissueGivesANewLinkAndTheOldOneStopsWorking) {
  auto s = open();
  std::string master = random_bytes(32);
  auto a = make_deposit("Q1", "pat@example.org", "the message", t0 + day, master);
  int64_t id = s->add(a.d);
  std::string token = new_token(), lookup = lookup_key(token);
  auto resealed = reissue(*s->sealed(id), master, a.d.lookup, token, lookup);
  ASSERT_TRUE(resealed);
  EXPECT_TRUE(s->reissue(id, lookup, *resealed, "sealed notice", t0 + 60, "operator"));
  EXPECT_FALSE(s->find(a.d.lookup));
  auto e = s->find(lookup);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->id, id);
  EXPECT_EQ(open_message(*s->sealed(id), token, lookup), "the message");
  EXPECT_FALSE(open_message(*s->sealed(id), a.token, a.d.lookup));
  auto items = s->outbox(10);
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].kind, "notice");
  EXPECT_EQ(items[0].box, "sealed notice");
  EXPECT_EQ(s->events("Q1").back().kind, "reissued");
  EXPECT_EQ(s->events("Q1").back().detail, "by operator");
  s->retract("Q1", "", t0 + 120, "operator");
  EXPECT_FALSE(s->reissue(id, lookup_key(new_token()), *resealed, "x", t0 + 180, "operator"));
}

TEST_F(PortalStore, AddRefusesADuplicateLookupKeyOrAnEmptyDeposit) {
  auto s = open();
  auto a = make_deposit("Q1", "pat@example.org", "one");
  s->add(a.d);
  try {
    s->add(a.d);
    ADD_FAILURE() << "a second entry with the same lookup key";
  } catch (const store_error& e) {
    std::string what = e.what();
    EXPECT_TRUE(contains(what, "add")) << what;
    EXPECT_TRUE(contains(what, file_.string())) << what;
    EXPECT_FALSE(contains(what, a.d.sealed.body)) << "never ciphertext in an error";
  }
  deposit empty = a.d;
  empty.lookup = lookup_key(new_token());
  empty.sealed.body.clear();
  EXPECT_THROW(s->add(empty), store_error);
  EXPECT_EQ(s->list({}).size(), 1u) << "a refused add leaves nothing behind";
}

TEST_F(PortalStore, ListFiltersByRecipientQueueIdAndStateNewestFirst) {
  auto s = open();
  int64_t q1_pat = s->add(make_deposit("Q1", "pat@example.org", "a").d);
  int64_t q1_lee = s->add(make_deposit("Q1", "lee@example.org", "b").d);
  int64_t q2_pat = s->add(make_deposit("Q2", "pat@example.org", "c").d);
  auto ids = [](const std::vector<entry>& entries) {
    std::vector<int64_t> out;
    for (const auto& e : entries) out.push_back(e.id);
    return out;
  };
  EXPECT_EQ(ids(s->list({})), (std::vector<int64_t>{q2_pat, q1_lee, q1_pat}));
  EXPECT_EQ(ids(s->list(filter("pat@example.org", ""))), (std::vector<int64_t>{q2_pat, q1_pat}));
  EXPECT_EQ(ids(s->list(filter("", "Q1"))), (std::vector<int64_t>{q1_lee, q1_pat}));
  EXPECT_EQ(ids(s->list(filter("pat@example.org", "Q1"))), (std::vector<int64_t>{q1_pat}));
  EXPECT_EQ(ids(s->list(filter("nobody@example.org", ""))), (std::vector<int64_t>{}));
  EXPECT_EQ(ids(s->list(filter("", "", false, 1))), (std::vector<int64_t>{q2_pat}));
  EXPECT_EQ(ids(s->list(filter("", "", false, 0))), (std::vector<int64_t>{}));

  s->retract("Q1", "lee@example.org", t0 + 10, "operator");
  EXPECT_EQ(ids(s->list(filter("", "", true))), (std::vector<int64_t>{q2_pat, q1_pat}));
  EXPECT_EQ(ids(s->list(filter("", "Q1", true))), (std::vector<int64_t>{q1_pat}));
  auto all = s->list(filter("", "Q1"));
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].state, entry_state::retracted);
}

TEST_F(PortalStore, RetractDeletesTheCiphertextFromTheFileAtOnce) {
  auto s = open();
  auto portal = open();  // the portal process has the file open meanwhile
  auto kept = make_deposit("Q1", "keep@example.org", random_bytes(20000));
  auto gone = make_deposit("Q1", "gone@example.org", random_bytes(20000));
  auto other = make_deposit("Q2", "gone@example.org", random_bytes(20000));
  int64_t kept_id = s->add(kept.d), gone_id = s->add(gone.d), other_id = s->add(other.d);
  ASSERT_TRUE(portal->sealed(gone_id));

  // The search finds ciphertext that is there (or the checks below prove nothing).
  std::string before = store_bytes(file_);
  EXPECT_GT(chunks_in(before, gone.d.sealed.body), chunks_of(gone.d.sealed.body) * 9 / 10);
  EXPECT_TRUE(contains(before, gone.d.sealed.link_wrap));

  EXPECT_EQ(s->retract("Q1", "gone@example.org", t0 + 60, "operator alice"), 1u);
  EXPECT_FALSE(portal->sealed(gone_id)) << "the other process sees it gone at once";
  auto e = portal->find(gone.d.lookup);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->state, entry_state::retracted);
  EXPECT_EQ(e->state_changed, t0 + 60);

  std::string after = store_bytes(file_);
  EXPECT_EQ(chunks_in(after, gone.d.sealed.body), 0u) << "retracted ciphertext left in the file's bytes";
  EXPECT_FALSE(contains(after, gone.d.sealed.link_wrap));
  EXPECT_GT(chunks_in(after, kept.d.sealed.body), chunks_of(kept.d.sealed.body) * 9 / 10) << "the others stay";
  EXPECT_GT(chunks_in(after, other.d.sealed.body), chunks_of(other.d.sealed.body) * 9 / 10);
  EXPECT_EQ(fs::file_size(file_.string() + "-wal"), 0u) << "the WAL, which held the first writes, is truncated";

  EXPECT_TRUE(s->sealed(kept_id));
  EXPECT_TRUE(s->sealed(other_id)) << "one recipient of one message only";
  auto events = s->events("Q1");
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[2].kind, "retracted");
  EXPECT_EQ(events[2].detail, "operator alice");
  EXPECT_EQ(events[2].entry_id, gone_id);
  EXPECT_EQ(events[2].at, t0 + 60);

  EXPECT_EQ(s->retract("Q1", "gone@example.org", t0 + 70, "operator alice"), 0u) << "only active entries";
  EXPECT_EQ(s->retract("Q1", "", t0 + 80, "operator bob"), 1u) << "the whole message: the one still active";
  EXPECT_FALSE(s->sealed(kept_id));
  EXPECT_EQ(s->retract("Q9", "", t0 + 80, "operator bob"), 0u);
}

TEST_F(PortalStore, ExpireMarksEntriesPastTheirExpiryAndDeletesTheirCiphertext) {
  auto s = open();
  auto soon = make_deposit("Q1", "pat@example.org", random_bytes(20000), t0 + day);
  auto later = make_deposit("Q1", "lee@example.org", random_bytes(20000), t0 + 2 * day);
  int64_t soon_id = s->add(soon.d), later_id = s->add(later.d);

  EXPECT_EQ(s->expire(t0 + day - 1), 0u);
  EXPECT_TRUE(s->sealed(soon_id));
  EXPECT_EQ(s->expire(t0 + day), 1u) << "an entry expires at its expiry";
  EXPECT_FALSE(s->sealed(soon_id));
  EXPECT_TRUE(s->sealed(later_id));
  auto e = s->find(soon.d.lookup);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->state, entry_state::expired);
  EXPECT_EQ(e->state_changed, t0 + day);
  EXPECT_EQ(s->expire(t0 + day + 1), 0u) << "once";

  std::string bytes = store_bytes(file_);
  EXPECT_EQ(chunks_in(bytes, soon.d.sealed.body), 0u);
  EXPECT_GT(chunks_in(bytes, later.d.sealed.body), chunks_of(later.d.sealed.body) * 9 / 10);

  auto events = s->events("Q1");
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[2].kind, "expired");
  EXPECT_EQ(events[2].entry_id, soon_id);
  EXPECT_EQ(events[2].at, t0 + day);

  EXPECT_EQ(s->expire(t0 + 3 * day), 1u);
  EXPECT_EQ(s->list(filter("", "", true)).size(), 0u);
}

TEST_F(PortalStore, ACodeIsIssuedCountedAndSentThroughTheOutbox) {
  auto s = open();
  auto a = make_deposit("Q1", "pat@example.org", "m");
  int64_t id = s->add(a.d);
  browser b;
  std::string code;
  ASSERT_EQ(ask(*s, id, b, code, t0 + 100), code_request_result::issued);

  auto e = s->find(a.d.lookup);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->code_hash, code_hash(b.token, code));
  EXPECT_EQ(e->code_session, b.key);
  EXPECT_EQ(e->code_expires, t0 + 100 + 600);
  EXPECT_EQ(e->codes_sent, 1);
  EXPECT_EQ(e->codes_window, t0 + 100);

  auto items = s->outbox(10);
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].entry_id, id);
  EXPECT_EQ(items[0].kind, "code");
  EXPECT_EQ(items[0].created, t0 + 100);
  EXPECT_EQ(box_open(gateway_keys().private_key, items[0].box), code) << "only the gateway opens the code";
  EXPECT_EQ(kinds(*s, "Q1"), (std::vector<std::string>{"deposited", "code-sent"}));
}

TEST_F(PortalStore, RequestCodeIsRateLimitedPerWindow) {
  auto s = open();
  int64_t id = s->add(make_deposit("Q1", "pat@example.org", "m").d);
  code_rules rules;  // 5 per 3600 s
  browser b;
  std::string code;
  for (int i = 0; i < rules.max_per_window; ++i)
    EXPECT_EQ(ask(*s, id, b, code, t0 + i * 60, rules), code_request_result::issued) << i;
  EXPECT_EQ(ask(*s, id, b, code, t0 + 3599, rules), code_request_result::rate_limited);
  EXPECT_EQ(s->outbox(100).size(), 5u) << "a refused request sends nothing";
  EXPECT_EQ(count_of(kinds(*s, "Q1"), "code-sent"), 5u);
  // The window began with the first code: it is over an hour later.
  EXPECT_EQ(ask(*s, id, b, code, t0 + 3600, rules), code_request_result::issued);
  EXPECT_EQ(s->list({})[0].codes_sent, 1);
  EXPECT_EQ(s->list({})[0].codes_window, t0 + 3600);
}

TEST_F(PortalStore, RequestCodeRefusesAnEntryThatIsNotActive) {
  auto s = open();
  auto a = make_deposit("Q1", "pat@example.org", "m", t0 + day);
  int64_t id = s->add(a.d);
  browser b;
  std::string code;
  EXPECT_EQ(ask(*s, id, b, code, t0 + day), code_request_result::not_active) << "past its expiry, swept or not";
  EXPECT_EQ(ask(*s, id + 1, b, code, t0), code_request_result::not_active) << "no such entry";
  s->retract("Q1", "", t0 + 10, "operator");
  EXPECT_EQ(ask(*s, id, b, code, t0 + 20), code_request_result::not_active);
  EXPECT_TRUE(s->outbox(10).empty());
}

TEST_F(PortalStore, ACodeOpensOnceForTheSessionThatAskedForIt) {
  auto s = open();
  auto a = make_deposit("Q1", "pat@example.org", "m");
  int64_t id = s->add(a.d);
  browser b;
  std::string code;
  ASSERT_EQ(ask(*s, id, b, code, t0), code_request_result::issued);
  EXPECT_EQ(check(*s, id, b, code, t0 + 30), code_check_result::accepted);
  EXPECT_EQ(check(*s, id, b, code, t0 + 31), code_check_result::none) << "single use";
  auto e = s->find(a.d.lookup);
  EXPECT_EQ(e->code_hash, "");
  EXPECT_EQ(e->code_session, "");
  EXPECT_EQ(e->failed_codes, 0);

  auto events = s->events("Q1");
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[2].kind, "opened");
  EXPECT_EQ(events[2].detail, "192.0.2.7");
  EXPECT_EQ(events[2].at, t0 + 30);
}

TEST_F(PortalStore, AWrongCodeCountsAndASuccessClearsTheCount) {
  auto s = open();
  auto a = make_deposit("Q1", "pat@example.org", "m");
  int64_t id = s->add(a.d);
  browser b;
  std::string code;
  ASSERT_EQ(ask(*s, id, b, code, t0), code_request_result::issued);
  EXPECT_EQ(check(*s, id, b, another_code(code), t0 + 1), code_check_result::wrong);
  EXPECT_EQ(check(*s, id, b, another_code(code), t0 + 2), code_check_result::wrong);
  EXPECT_EQ(s->find(a.d.lookup)->failed_codes, 2);
  EXPECT_EQ(check(*s, id, b, code, t0 + 3), code_check_result::accepted) << "a miss does not spend the code";
  EXPECT_EQ(s->find(a.d.lookup)->failed_codes, 0);
  EXPECT_EQ(kinds(*s, "Q1"),
            (std::vector<std::string>{"deposited", "code-sent", "code-failed", "code-failed", "opened"}));
}

TEST_F(PortalStore, FiveWrongCodesLockTheEntryForTheLockout) {
  auto s = open();
  auto a = make_deposit("Q1", "pat@example.org", "m");
  int64_t id = s->add(a.d);
  code_rules rules;  // 5 failures, 900 s
  browser b;
  std::string code;
  ASSERT_EQ(ask(*s, id, b, code, t0), code_request_result::issued);
  for (int i = 1; i < rules.max_failures; ++i)
    EXPECT_EQ(check(*s, id, b, another_code(code), t0 + i), code_check_result::wrong) << i;
  EXPECT_EQ(check(*s, id, b, another_code(code), t0 + 5), code_check_result::locked) << "the fifth miss locks";

  auto e = s->find(a.d.lookup);
  EXPECT_EQ(e->locked_until, t0 + 5 + rules.lockout);
  EXPECT_EQ(e->failed_codes, 0) << "counted afresh after the lock";
  EXPECT_EQ(e->code_hash, "") << "the code goes with the lock";
  auto k = kinds(*s, "Q1");
  EXPECT_EQ(count_of(k, "code-failed"), 5u);
  EXPECT_EQ(k.back(), "locked");

  EXPECT_EQ(check(*s, id, b, code, t0 + 6), code_check_result::locked) << "even the right code while locked";
  EXPECT_EQ(ask(*s, id, b, code, t0 + 7), code_request_result::locked);
  EXPECT_EQ(count_of(kinds(*s, "Q1"), "code-failed"), 5u) << "tries while locked are not counted";

  int64_t unlocked = t0 + 5 + rules.lockout;
  EXPECT_EQ(check(*s, id, b, code, unlocked), code_check_result::none) << "the old code was forgotten";
  ASSERT_EQ(ask(*s, id, b, code, unlocked), code_request_result::issued);
  EXPECT_EQ(check(*s, id, b, code, unlocked + 1), code_check_result::accepted);
}

TEST_F(PortalStore, AnotherSessionsCodeIsNotAcceptedAndNotCounted) {
  auto s = open();
  auto a = make_deposit("Q1", "pat@example.org", "m");
  int64_t id = s->add(a.d);
  browser asking, other;
  std::string code;
  ASSERT_EQ(ask(*s, id, asking, code, t0), code_request_result::issued);
  // The right digits from another browser: its hash differs, and the store
  // holds no code for that session.
  EXPECT_EQ(check(*s, id, other, code, t0 + 1), code_check_result::none);
  // Even the asking session's very hash, presented under another session key.
  EXPECT_EQ(s->check_code(id, other.key, code_hash(asking.token, code), t0 + 2, {}, "198.51.100.9"),
            code_check_result::none);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(check(*s, id, other, another_code(code), t0 + 3), code_check_result::none);
  EXPECT_EQ(s->find(a.d.lookup)->failed_codes, 0) << "a link holder elsewhere cannot lock the recipient out";
  EXPECT_EQ(count_of(kinds(*s, "Q1"), "code-failed"), 0u);
  EXPECT_EQ(check(*s, id, asking, code, t0 + 4), code_check_result::accepted) << "the asking browser still can";
}

TEST_F(PortalStore, AnExpiredCodeIsExpiredAndNotCounted) {
  auto s = open();
  auto a = make_deposit("Q1", "pat@example.org", "m");
  int64_t id = s->add(a.d);
  browser b;
  std::string code;
  ASSERT_EQ(ask(*s, id, b, code, t0), code_request_result::issued);
  EXPECT_EQ(check(*s, id, b, code, t0 + 600), code_check_result::expired) << "valid for 600 s, not 601";
  EXPECT_EQ(check(*s, id, b, another_code(code), t0 + 700), code_check_result::expired);
  EXPECT_EQ(s->find(a.d.lookup)->failed_codes, 0);
  ASSERT_EQ(ask(*s, id, b, code, t0 + 800), code_request_result::issued);
  EXPECT_EQ(check(*s, id, b, code, t0 + 801), code_check_result::accepted);
}

TEST_F(PortalStore, ANewCodeReplacesTheEarlierOne) {
  auto s = open();
  int64_t id = s->add(make_deposit("Q1", "pat@example.org", "m").d);
  browser b;
  std::string first, second;
  ASSERT_EQ(ask(*s, id, b, first, t0), code_request_result::issued);
  ASSERT_EQ(ask(*s, id, b, second, t0 + 10), code_request_result::issued);
  if (first != second) {
    EXPECT_EQ(check(*s, id, b, first, t0 + 11), code_check_result::wrong);
  }
  EXPECT_EQ(check(*s, id, b, second, t0 + 12), code_check_result::accepted);
}

TEST_F(PortalStore, CheckCodeRefusesAnEntryThatIsNotActive) {
  auto s = open();
  auto a = make_deposit("Q1", "pat@example.org", "m", t0 + day);
  int64_t id = s->add(a.d);
  browser b;
  std::string code;
  ASSERT_EQ(ask(*s, id, b, code, t0), code_request_result::issued);
  EXPECT_EQ(check(*s, id + 1, b, code, t0 + 1), code_check_result::not_active);
  s->retract("Q1", "", t0 + 2, "operator");
  EXPECT_EQ(check(*s, id, b, code, t0 + 3), code_check_result::not_active) << "a retracted message opens no more";
  EXPECT_EQ(s->find(a.d.lookup)->code_hash, "") << "retracting forgets the code";
}

TEST_F(PortalStore, ACodeOpensOnceWhenProcessesRaceToCheckIt) {
  int64_t id = 0;
  browser b;
  std::string code;
  {
    auto s = open();
    id = s->add(make_deposit("Q1", "pat@example.org", "m").d);
    ASSERT_EQ(ask(*s, id, b, code, t0), code_request_result::issued);
  }  // closed: a child must not inherit an open SQLite connection
  int start[2];
  ASSERT_EQ(::pipe(start), 0);
  constexpr int racers = 4;
  std::vector<pid_t> children;
  for (int i = 0; i < racers; ++i) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(start[1]);
      char c;
      (void)!::read(start[0], &c, 1);  // all start together when the pipe closes
      int status = 9;
      try {
        auto s = open_sqlite_store(file_);
        auto r = s->check_code(id, b.key, code_hash(b.token, code), t0 + 10, {}, "racer");
        status = r == code_check_result::accepted ? 0 : r == code_check_result::none ? 1 : 2;
      } catch (...) {
        status = 3;
      }
      ::_exit(status);
    }
    children.push_back(pid);
  }
  ::close(start[0]);
  ::close(start[1]);
  int accepted = 0, none = 0;
  for (pid_t pid : children) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    accepted += WEXITSTATUS(status) == 0;
    none += WEXITSTATUS(status) == 1;
  }
  EXPECT_EQ(accepted, 1) << "a code is single use across processes";
  EXPECT_EQ(none, racers - 1);
  EXPECT_EQ(count_of(kinds(*open(), "Q1"), "opened"), 1u);
}

TEST_F(PortalStore, SessionsLeadToTheirEntryUntilTheyExpire) {
  auto s = open();
  int64_t first = s->add(make_deposit("Q1", "pat@example.org", "m").d);
  int64_t second = s->add(make_deposit("Q2", "pat@example.org", "n").d);
  browser b, stranger;
  s->add_session(b.key, first, t0 + 3600);
  EXPECT_EQ(s->session_entry(b.key, t0), first);
  EXPECT_EQ(s->session_entry(b.key, t0 + 3599), first);
  EXPECT_FALSE(s->session_entry(b.key, t0 + 3600)) << "expired at its expiry";
  EXPECT_FALSE(s->session_entry(stranger.key, t0));
  EXPECT_FALSE(s->session_entry("", t0));

  s->add_session(b.key, second, t0 + 7200);
  EXPECT_EQ(s->session_entry(b.key, t0 + 3600), second) << "one entry per session: the latest code passed";
  EXPECT_THROW(s->add_session(stranger.key, second + 100, t0 + 3600), store_error) << "no such entry";

  // expire() sweeps expired sessions: gone even for a clock that reads earlier.
  s->add_session(stranger.key, first, t0 + 100);
  s->expire(t0 + 200);
  EXPECT_FALSE(s->session_entry(stranger.key, t0));
  EXPECT_EQ(s->session_entry(b.key, t0 + 200), second);
  EXPECT_EQ(scalar(file_, "SELECT COUNT(*) FROM sessions"), "1");
  EXPECT_FALSE(contains(store_bytes(file_), b.token)) << "the store keeps the session key, never the token";
}

TEST_F(PortalStore, TheOutboxKeepsItemsInOrderUntilRemoved) {
  auto s = open();
  int64_t id = s->add(make_deposit("Q1", "pat@example.org", "m").d);
  std::string reply_box = box_seal(gateway_keys().public_key, std::string("reply\0with a NUL", 16));
  s->put_outbox(id, "reply", reply_box, t0 + 5);
  s->put_outbox(id, "code", "box two", t0 + 6);
  s->put_outbox(id, "reply", "box three", t0 + 7);
  auto items = s->outbox(10);
  ASSERT_EQ(items.size(), 3u);
  EXPECT_EQ(items[0].kind, "reply");
  EXPECT_EQ(items[0].box, reply_box) << "every byte of a binary box";
  EXPECT_EQ(items[0].created, t0 + 5);
  EXPECT_EQ(items[1].box, "box two");
  EXPECT_LT(items[0].id, items[1].id);
  EXPECT_EQ(s->outbox(1).size(), 1u);

  s->remove_outbox(items[0].id);
  s->remove_outbox(items[0].id);  // removing twice is harmless (a gateway retrying)
  items = s->outbox(10);
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].box, "box two");
  // Emptied, the newest id removed: the next item still gets a new id (the
  // gateway removes by id, and must never remove an item it did not send).
  int64_t newest = items[1].id;
  s->remove_outbox(items[0].id);
  s->remove_outbox(newest);
  ASSERT_TRUE(s->outbox(10).empty());
  s->put_outbox(id, "code", "box four", t0 + 8);
  EXPECT_GT(s->outbox(10).at(0).id, newest) << "an id is never reused";

  try {
    s->put_outbox(id, "postcard", "secret box bytes", t0);
    ADD_FAILURE() << "an unknown kind";
  } catch (const store_error& e) {
    EXPECT_TRUE(contains(e.what(), "put_outbox")) << e.what();
    EXPECT_FALSE(contains(e.what(), "secret box bytes")) << e.what();
  }
  EXPECT_THROW(s->put_outbox(id + 100, "code", "box", t0), store_error) << "no such entry";
}

TEST_F(PortalStore, SettingsHoldBytes) {
  auto s = open();
  EXPECT_FALSE(s->setting("box_public_key"));
  std::string key = gateway_keys().public_key + std::string(1, '\0');
  s->set_setting("box_public_key", key);
  EXPECT_EQ(s->setting("box_public_key"), key);
  s->set_setting("box_public_key", "replaced");
  EXPECT_EQ(s->setting("box_public_key"), "replaced");
  s->set_setting("empty", "");
  EXPECT_EQ(s->setting("empty"), "") << "an empty value is a value";
}

TEST_F(PortalStore, RecordedEventsComeBackInTheOrderTheyHappened) {
  auto s = open();
  int64_t id = s->add(make_deposit("Q1", "pat@example.org", "m").d);
  s->record(event_of(id, t0 + 50, "downloaded", "attachment 1, 2048 bytes"));
  s->record(event_of(id, t0 + 20, "notified", "N1"));
  s->record(event_of(0, t0 + 60, "reissued", "operator"));
  auto events = s->events("Q1");
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[1].kind, "notified") << "by time, not by the order recorded";
  EXPECT_EQ(events[2].kind, "downloaded");
  EXPECT_EQ(events[2].detail, "attachment 1, 2048 bytes");
  EXPECT_EQ(events[3].entry_id, 0);
  EXPECT_TRUE(s->events("Q2").empty());
  EXPECT_THROW(s->record(event_of(id, t0, "opend", "")), store_error)
      << "an unknown kind is a caller's typo";
  EXPECT_THROW(s->record(event_of(id + 100, t0, "opened", "")), store_error) << "no such entry";
}

// The gateway's metrics read the events after the newest they saw, by kind.
TEST_F(PortalStore, EventsAreCountedByKindAfterAnId) {
  auto s = open();
  auto before = s->count_events(0);
  EXPECT_TRUE(before.by_kind.empty());
  EXPECT_EQ(before.last_id, 0);
  int64_t id = s->add(make_deposit("Q1", "pat@example.org", "m").d);  // records "deposited"
  auto first = s->count_events(0);
  EXPECT_EQ(first.by_kind, (std::vector<std::pair<std::string, int64_t>>{{"deposited", 1}}));
  s->record(event_of(id, t0 + 1, "code-failed", ""));
  s->record(event_of(id, t0 + 2, "code-failed", ""));
  s->record(event_of(id, t0 + 3, "locked", ""));
  auto next = s->count_events(first.last_id);
  EXPECT_EQ(next.by_kind, (std::vector<std::pair<std::string, int64_t>>{{"code-failed", 2}, {"locked", 1}}));
  EXPECT_GT(next.last_id, first.last_id);
  auto none = s->count_events(next.last_id);
  EXPECT_TRUE(none.by_kind.empty());
  EXPECT_EQ(none.last_id, next.last_id) << "nothing new: the same place";
}

TEST_F(PortalStore, CountsTheWindowsDepositsAndWhatBecameOfThem) {
  auto s = open();
  EXPECT_EQ(s->counts(0).deposits, 0) << "an empty store";
  auto deposit_at = [&](const std::string& queue_id, const std::string& recipient, int64_t created) {
    auto a = make_deposit(queue_id, recipient, "m");
    a.d.created = created;
    return s->add(a.d);
  };
  int64_t old = deposit_at("Q0", "old@example.org", t0 - day);
  int64_t pat = deposit_at("Q1", "pat@example.org", t0);
  int64_t sam = deposit_at("Q1", "sam@example.org", t0 + 10);
  deposit_at("Q2", "kim@example.org", t0 + 20);  // never opened
  // pat opens twice (two browsers), downloads two attachments and replies.
  for (const auto& [id, at, kind] : std::vector<std::tuple<int64_t, int64_t, std::string>>{
           {pat, t0 + 100, "opened"},     {pat, t0 + 200, "opened"},   {pat, t0 + 210, "downloaded"},
           {pat, t0 + 220, "downloaded"}, {pat, t0 + 300, "replied"},  {sam, t0 + 100, "code-failed"},
           {sam, t0 + 400, "opened"},     {old, t0 + 500, "opened"},   {old, t0 + 510, "downloaded"}}) {
    auto e = event_of(id, at, kind, "");
    e.entry_id = id;
    s->record(e);
  }
  s->record(event_of(0, t0 + 600, "reissued", "about no one entry"));

  auto c = s->counts(t0);
  EXPECT_EQ(c.deposits, 3) << "created at or after since";
  EXPECT_EQ(c.opened, 2) << "distinct deposits opened, not opens; the older deposit's open counts with it";
  EXPECT_EQ(c.downloads, 2);
  EXPECT_EQ(c.replies, 1);

  auto all = s->counts(0);
  EXPECT_EQ(all.deposits, 4);
  EXPECT_EQ(all.opened, 3);
  EXPECT_EQ(all.downloads, 3);
  EXPECT_EQ(all.replies, 1);

  auto none = s->counts(t0 + 21);
  EXPECT_EQ(none.deposits, 0);
  EXPECT_EQ(none.opened, 0);
  EXPECT_EQ(none.downloads, 0);
  EXPECT_EQ(none.replies, 0);

  s->retract("Q1", "", t0 + 700, "operator");
  EXPECT_EQ(s->counts(t0).deposits, 3) << "a retracted deposit was made all the same";
  EXPECT_EQ(s->counts(t0).opened, 2);
}

TEST_F(PortalStore, AReadOnlyStoreNeverCreatesOrChangesTheFile) {
  EXPECT_THROW(open_sqlite_store(file_, store_access::read_only), store_error);
  EXPECT_FALSE(fs::exists(file_)) << "a reader never creates the store";

  auto writer = open();
  auto a = make_deposit("Q1", "pat@example.org", "m");
  int64_t id = writer->add(a.d);
  writer->set_notice(id, "N1");
  writer->record(event_of(id, t0 + 5, "opened", "192.0.2.7"));

  auto reader = open_sqlite_store(file_, store_access::read_only);
  auto entries = reader->list(filter("", "Q1"));
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].notice_queue_id, "N1");
  EXPECT_EQ(kinds(*reader, "Q1"), (std::vector<std::string>{"deposited", "opened"}));
  EXPECT_EQ(reader->counts(0).opened, 1);

  // Writes it sees as it goes, and writes it never makes.
  writer->record(event_of(id, t0 + 6, "downloaded", "attachment 1, 10 bytes"));
  EXPECT_EQ(reader->counts(0).downloads, 1);
  EXPECT_FALSE(reader->writable());
  EXPECT_THROW(reader->record(event_of(id, t0 + 7, "replied", "")), store_error);
  EXPECT_THROW(reader->add(make_deposit("Q2", "kim@example.org", "m").d), store_error);
  EXPECT_THROW(reader->retract("Q1", "", t0 + 8, "operator"), store_error);
  EXPECT_TRUE(writer->sealed(id)) << "the deposit is still readable";
  EXPECT_EQ(kinds(*writer, "Q1"), (std::vector<std::string>{"deposited", "opened", "downloaded"}));

  // With no other process holding it (the last one to close removes the WAL).
  reader.reset();
  writer.reset();
  std::string before = file_bytes(file_);
  reader = open_sqlite_store(file_, store_access::read_only);
  EXPECT_EQ(reader->list(filter("pat@example.org", "")).size(), 1u);
  EXPECT_EQ(reader->counts(t0).downloads, 1);
  reader.reset();
  EXPECT_EQ(file_bytes(file_), before) << "reading changed the file";
  for (const char* suffix : {"-wal", "-shm"})
    if (fs::exists(file_.string() + suffix)) {
      EXPECT_EQ(mode_of(file_.string() + suffix), 0600u) << suffix;
    }
}

TEST_F(PortalStore, AReadOnlyStoreRefusesASchemaItDoesNotRead) {
  { std::ofstream(file_.string()); }  // an empty file: no schema at all
  try {
    open_sqlite_store(file_, store_access::read_only);
    ADD_FAILURE() << "read a file without the store's schema";
  } catch (const store_error& e) {
    EXPECT_TRUE(contains(e.what(), "start the gateway")) << e.what();
  }
  EXPECT_EQ(file_bytes(file_), "") << "and left it as it was";
  fs::remove(file_);
  open()->set_setting("x", "y");
  scalar(file_, "UPDATE schema_version SET version = " + std::to_string(schema::newest_version + 1));
  try {
    open_sqlite_store(file_, store_access::read_only);
    ADD_FAILURE() << "read a schema this code does not know";
  } catch (const store_error& e) {
    EXPECT_TRUE(contains(e.what(), "newer")) << e.what();
  }
}

TEST_F(PortalStore, TwoHandlesOnOneFileSeeEachOthersWrites) {
  auto gateway = open();
  auto portal = open();
  auto a = make_deposit("Q1", "pat@example.org", "m");
  int64_t id = gateway->add(a.d);
  ASSERT_TRUE(portal->find(a.d.lookup));
  browser b;
  std::string code;
  ASSERT_EQ(ask(*portal, id, b, code, t0), code_request_result::issued);
  EXPECT_EQ(gateway->outbox(10).size(), 1u);
  EXPECT_EQ(gateway->find(a.d.lookup)->codes_sent, 1);
  gateway->set_setting("box_public_key", gateway_keys().public_key);
  EXPECT_EQ(portal->setting("box_public_key"), gateway_keys().public_key);
  gateway->retract("Q1", "", t0 + 1, "operator");
  EXPECT_FALSE(portal->sealed(id));
}

TEST_F(PortalStore, AnotherProcessSeesTheWritesAndSeesItsOwnSeen) {
  auto a = make_deposit("Q1", "pat@example.org", "from the gateway process");
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    int status = 1;
    try {
      auto s = open_sqlite_store(file_);
      s->add(a.d);
      s->set_setting("box_public_key", "published by the child");
      status = 0;
    } catch (...) {
    }
    ::_exit(status);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  auto s = open();
  auto e = s->find(a.d.lookup);
  ASSERT_TRUE(e);
  EXPECT_EQ(open_message(*s->sealed(e->id), a.token, e->lookup), "from the gateway process");
  EXPECT_EQ(s->setting("box_public_key"), "published by the child");
}

TEST_F(PortalStore, TheFileItsWalAndItsShmAreCreated0600WhateverTheUmask) {
  mode_t old = ::umask(0);
  auto s = open_sqlite_store(dir_ / "deeper" / "portal.sqlite");
  ::umask(old);
  s->set_setting("touch", "so that the WAL exists");
  for (const char* suffix : {"", "-wal", "-shm"}) {
    fs::path p = (dir_ / "deeper" / "portal.sqlite").string() + suffix;
    ASSERT_TRUE(fs::exists(p)) << p;
    EXPECT_EQ(mode_of(p), 0600u) << p;
  }
}

TEST_F(PortalStore, AnExistingFileOthersMayReadIsRefusedAndAGroupModeIsKept) {
  { std::ofstream(file_.string()); }
  ASSERT_EQ(::chmod(file_.c_str(), 0644), 0);
  try {
    open();
    ADD_FAILURE() << "opened a store every user may read";
  } catch (const store_error& e) {
    EXPECT_TRUE(contains(e.what(), "0644")) << e.what();
    EXPECT_TRUE(contains(e.what(), "chmod o-rwx")) << e.what();
  }
  EXPECT_EQ(mode_of(file_), 0644u) << "refused, not changed behind the operator's back";

  // A shared group (the portal process as another user) is the operator's call.
  ASSERT_EQ(::chmod(file_.c_str(), 0660), 0);
  auto s = open();
  s->set_setting("touch", "x");
  EXPECT_EQ(mode_of(file_), 0660u);
  EXPECT_EQ(mode_of(file_.string() + "-wal"), 0660u) << "SQLite gives the WAL the file's mode";
  EXPECT_EQ(mode_of(file_.string() + "-shm"), 0660u);

  ASSERT_EQ(::chmod((file_.string() + "-shm").c_str(), 0606), 0);
  EXPECT_THROW(open(), store_error) << "a -shm readable by others";
}

TEST_F(PortalStore, NothingInTheFileOpensAMessageWithoutItsLink) {
  const std::string marker = "SEALGATE-PLAINTEXT-MARKER-7f3c";
  const std::string attachment = random_bytes(64 * 1024);  // the bytes of an attached file
  const std::string message = "Subject: your results\r\n\r\n" + marker + "\r\n" + attachment + "\r\n" + marker;
  auto a = make_deposit("Q1", "pat@example.org", message, t0 + day, random_bytes(32));
  browser b;
  std::string code;
  {
    auto s = open();
    int64_t id = s->add(a.d);
    ASSERT_EQ(ask(*s, id, b, code, t0), code_request_result::issued);
    ASSERT_EQ(check(*s, id, b, code, t0 + 1), code_check_result::accepted);
    s->add_session(b.key, id, t0 + 3600);
  }
  std::string bytes = store_bytes(file_);
  // The search is sound: the ciphertext itself is found.
  EXPECT_GT(chunks_in(bytes, a.d.sealed.body), chunks_of(a.d.sealed.body) * 9 / 10);
  EXPECT_FALSE(contains(bytes, marker)) << "plaintext in the store file";
  EXPECT_EQ(chunks_in(bytes, attachment), 0u) << "attachment bytes in the store file";
  EXPECT_FALSE(contains(bytes, a.token)) << "the link's token in the store file";
  EXPECT_FALSE(contains(bytes, b.token)) << "a session token in the store file";

  // Everything the store hands out, with any key but the link's, opens nothing.
  auto s = open();
  auto e = s->find(a.d.lookup);
  ASSERT_TRUE(e);
  auto m = s->sealed(e->id);
  ASSERT_TRUE(m);
  EXPECT_FALSE(open_message(*m, new_token(), e->lookup));
  EXPECT_FALSE(open_message(*m, e->lookup, e->lookup)) << "the lookup key is no link";
  EXPECT_FALSE(open_message(*m, e->code_hash, e->lookup));
  EXPECT_FALSE(open_message(*m, b.key, e->lookup)) << "nor a session key";
  EXPECT_EQ(open_message(*m, a.token, e->lookup), message) << "the link opens it";
}

TEST_F(PortalStore, AFreshFileHasTheSchemaAndANewerOneIsRefused) {
  open()->set_setting("x", "y");
  EXPECT_EQ(scalar(file_, "SELECT group_concat(version) FROM schema_version"),
            std::to_string(schema::newest_version));
  for (const auto& t : schema::tables)
    EXPECT_EQ(scalar(file_, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '" +
                                std::string(t.name) + "'"),
              "1")
        << t.name;
  for (const auto& x : schema::indexes)
    EXPECT_EQ(scalar(file_, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = '" +
                                std::string(x.name) + "'"),
              "1")
        << x.name;
  EXPECT_EQ(scalar(file_, "PRAGMA journal_mode"), "wal");

  open();  // a second open runs no migration again
  EXPECT_EQ(scalar(file_, "SELECT COUNT(*) FROM schema_version"), "1");

  scalar(file_, "UPDATE schema_version SET version = " + std::to_string(schema::newest_version + 1));
  try {
    open();
    ADD_FAILURE() << "opened a schema this code does not know";
  } catch (const store_error& e) {
    EXPECT_TRUE(contains(e.what(), "newer")) << e.what();
  }
}

TEST_F(PortalStore, WritableIsFalseWhileAnotherWriterHoldsTheFileBeyondTheBusyTimeout) {
  auto s = open();
  EXPECT_TRUE(s->writable());
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(file_.c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  auto started = std::chrono::steady_clock::now();
  EXPECT_FALSE(s->writable()) << "the write lock is held";
  EXPECT_GE(std::chrono::steady_clock::now() - started, std::chrono::seconds(4)) << "after the busy timeout";
  sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(other);
  EXPECT_TRUE(s->writable());
  EXPECT_TRUE(s->writable()) << "the probe leaves no transaction open";
}

TEST(PortalStoreNames, StatesAndSessionKeys) {
  EXPECT_EQ(to_string(entry_state::active), "active");
  EXPECT_EQ(to_string(entry_state::retracted), "retracted");
  EXPECT_EQ(to_string(entry_state::expired), "expired");
  std::string token = new_token();
  EXPECT_EQ(session_key(token), hex(sha256(token)));
  EXPECT_EQ(session_key(token).size(), 64u);
  EXPECT_NE(session_key(token), session_key(new_token()));
}


// The store in the schema "portal" of a PostgreSQL database that several
// gateway nodes and portal processes share: a deposit made through one
// connection is found, opened, coded and retracted through another, as the
// gateway and the portal process do.
TEST(PortalStorePostgreSql, TheStoreWorksInTheSchemaOfASharedDatabase) {
  sealgate::testing::test_database pg(sql::engine::postgresql);
  auto gateway = open_store(pg.where());
  auto portal = open_store(pg.where());
  auto a = make_deposit("Q1", "pat@example.org", std::string("Your results\0 are ready \xff.", 27));
  int64_t id = gateway->add(a.d);
  auto e = portal->find(a.d.lookup);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->id, id);
  EXPECT_EQ(e->size, a.message.size());
  auto sealed_back = portal->sealed(id);
  ASSERT_TRUE(sealed_back);
  EXPECT_EQ(open_message(*sealed_back, a.token, e->lookup), a.message) << "every byte of the ciphertext";

  browser b;
  std::string code;
  ASSERT_EQ(ask(*portal, id, b, code, t0 + 100), code_request_result::issued);
  auto items = gateway->outbox(10);
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(box_open(gateway_keys().private_key, items[0].box), code);
  gateway->remove_outbox(items[0].id);
  EXPECT_EQ(check(*portal, id, b, code, t0 + 130), code_check_result::accepted);
  portal->add_session(b.key, id, t0 + 3600);
  EXPECT_EQ(portal->session_entry(b.key, t0 + 200), id);

  gateway->set_setting("outbox_public_key", std::string("\x00\x01\xfe", 3));
  EXPECT_EQ(portal->setting("outbox_public_key"), std::string("\x00\x01\xfe", 3));

  EXPECT_EQ(gateway->retract("Q1", "pat@example.org", t0 + 300, "operator"), 1u);
  EXPECT_FALSE(portal->sealed(id)) << "the ciphertext is deleted";
  auto events = portal->events_after(0, 100);
  ASSERT_GE(events.size(), 3u);
  EXPECT_EQ(events.front().kind, "deposited");
  EXPECT_EQ(events.back().kind, "retracted");

  auto reader = open_store(pg.where(), store_access::read_only);
  EXPECT_EQ(reader->list(filter("pat@example.org", "")).size(), 1u);
  EXPECT_FALSE(reader->writable());
}

}  // namespace
}  // namespace sealgate::portal
