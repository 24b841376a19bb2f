// The outbound queue with scripted facts and a scripted transport: grouping
// per domain and method, retries, bounces with DSNs that carry no content,
// method failures, expiry, restart from status files, and the records. The
// SMTP client itself is tested against real Postfix peers elsewhere; here the
// transport is a script so that every outcome can be forced.
#include "gateway/queue/delivery.hpp"
#include "gateway/methods/subject_tags.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <deque>
#include <tuple>
#include <fstream>
#include <map>
#include <unistd.h>

#include "policy/message_facts.hpp"
#include "policy_test_util.hpp"

using namespace sealgate;
using namespace sealgate::gateway;
namespace asio = boost::asio;

namespace {

struct script {
  std::map<std::string, std::deque<outcome::kind>> outcomes;  // per domain, consumed per transfer
  std::map<std::string, bool> method_fails;                              // per domain: STARTTLS missing
  std::vector<outbound_transfer> sent;
  std::map<std::string, policy::domain_facts> facts;  // default: STARTTLS, TLS 1.3, verified
  int fact_lookups = 0;
  int key_lookups = 0;
  std::vector<portal_deposit_request> deposits;                        // what the portal was given
  std::vector<std::tuple<int64_t, std::string, std::string, std::string>> notified;
};

// A portal that keeps nothing: it counts deposits and returns a notification.
asio::awaitable<std::optional<portal_deposit_result>> scripted_deposit(script* s, portal_deposit_request r) {
  s->deposits.push_back(r);
  co_return portal_deposit_result{
      static_cast<int64_t>(s->deposits.size()),
      "From: <secure@ours.example>\r\nTo: <" + r.recipient + ">\r\nSubject: A secure message\r\n\r\nLINK\r\n"};
}

// What a transfer would send, read from its source (memory or the spool file).
std::string text_of(const outbound_transfer& t) {
  std::string out;
  EXPECT_TRUE(t.content->read_all(out));
  return out;
}

asio::awaitable<destination_facts> scripted_facts(script* s, std::string domain) {
  ++s->fact_lookups;
  destination_facts out;
  if (domain == "nullmx.example") {
    out.takes_mail = false;
    out.refusal = permanent_outcome("5.1.10", "nullmx.example accepts no mail (null MX, RFC 7505)");
    co_return out;
  }
  if (s->facts.count(domain)) {
    out.policy = s->facts[domain];
    co_return out;
  }
  out.policy.starttls = policy::fact::found;
  out.policy.tls_version = sealgate::policy::tls_version::v1_3;
  out.policy.cert_verified = policy::fact::found;
  co_return out;
}

asio::awaitable<policy::key_facts> no_keys(script* s, std::string) {
  ++s->key_lookups;
  co_return policy::key_facts{};
}

asio::awaitable<std::vector<recipient_result>> scripted_send(script* s, outbound_transfer t) {
  s->sent.push_back(t);
  std::vector<recipient_result> out;
  auto o = outcome::kind::delivered;
  auto& q = s->outcomes[t.domain];
  if (!q.empty()) {
    o = q.front();
    q.pop_front();
  }
  for (size_t i = 0; i < t.recipients.size(); ++i) {
    recipient_result r;
    r.mx_host = "mx." + t.domain;
    r.mx_address = "127.0.5.1";
    if (s->method_fails[t.domain]) {
      r.method_failed = true;
      r.result = temporary_outcome("4.7.10", "mx." + t.domain + " does not offer STARTTLS");
      out.push_back(r);
      continue;
    }
    r.tls_protocol = "TLSv1.3";
    r.tls_cipher = "TLS_AES_256_GCM_SHA384";
    r.certificate = "verified";
    r.result = o == outcome::kind::delivered ? reply_outcome(250, "2.0.0", "250 2.0.0 Ok: queued")
               : o == outcome::kind::bounced
                   ? reply_outcome(550, "5.1.1", "550 5.1.1 <" + t.recipients[i] + ">: user unknown")
                   : reply_outcome(451, "4.7.1", "451 4.7.1 greylisted");
    out.push_back(r);
  }
  co_return out;
}

class Delivery : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sealgate-delivery-XXXXXX";
    dir_ = mkdtemp(tmpl);
    spooler_ = std::make_unique<spool>(dir_);
    spooler_->recover();
    db_ = std::make_unique<database>(dir_ / "audit.db");
    spooler_->on_committed([this](std::vector<spooled_envelope> m) { db_->record_accepted(m); });
    settings_.hostname = "gw.test";
    settings_.spool_dir = dir_;
    settings_.queue.retry_min = std::chrono::seconds(1);
    settings_.queue.retry_max = std::chrono::seconds(1);
  }
  void TearDown() override {
    if (manager_) manager_->stop();
    io_.run_for(std::chrono::milliseconds(50));
    manager_.reset();
    db_.reset();
    spooler_->stop();
    std::filesystem::remove_all(dir_);
  }

  void use_policy(const std::string& text) {
    policy_ = std::make_shared<const policy::policy>(temp_policy_.load(text));
  }

  void start(std::vector<std::string> ids = {}) {
    delivery_services sv;
    sv.domain_facts = [this](std::string d) { return scripted_facts(&script_, std::move(d)); };
    sv.key_facts = [this](std::string a) { return no_keys(&script_, std::move(a)); };
    sv.send = [this](outbound_transfer t) { return scripted_send(&script_, std::move(t)); };
    if (portal_) {
      sv.deposit = [this](portal_deposit_request r, std::string*) { return scripted_deposit(&script_, std::move(r)); };
      sv.portal_available = [] { return true; };
      sv.portal_notified = [this](int64_t e, std::string id, std::string rcpt, std::string notice) {
        script_.notified.emplace_back(e, id, rcpt, notice);
      };
      sv.portal_sender = "secure@ours.example";
    }
    std::function<std::shared_ptr<const policy::policy>()> pol;
    if (policy_) pol = [this] { return policy_; };
    manager_ = std::make_unique<queue_manager>(io_.get_executor(), settings_, *spooler_, db_.get(), pol, sv);
    spooler_->on_committed([this](std::vector<spooled_envelope> m) {
      db_->record_accepted(m);
      for (const auto& e : m) manager_->enqueue(e.queue_id);
    });
    manager_->start(ids);
  }

  std::string submit(const std::string& sender, std::vector<std::string> recipients, int64_t received = 0,
                     const std::string& ret = "", const std::string& subject = "Lab results", bool requiretls = false,
                     const std::string& body = "SECRET BODY 123-45-6789\r\n") {
    auto msg = spooler_->begin();
    auto& e = msg->envelope;
    e.queue_id = msg->id();
    e.received = received ? received : ::time(nullptr);
    e.listener = "smarthost";
    e.client_address = "127.0.0.1";
    e.helo = "app";
    e.sender = sender;
    e.params.ret = ret;
    e.params.requiretls = requiretls;
    for (auto& r : recipients) e.recipients.push_back({r, {}});
    std::string content = "Subject: " + subject + "\r\nMessage-ID: <m1@ours.example>\r\n\r\n" + body;
    e.content_size = content.size();
    msg->write(encode_envelope(e));
    msg->write(content);
    std::string id = e.queue_id;
    auto f = spooler_->async_commit(std::move(msg), asio::use_future);
    while (f.wait_for(std::chrono::milliseconds(0)) != std::future_status::ready) {
      if (io_.stopped()) io_.restart();
      io_.run_for(std::chrono::milliseconds(5));
    }
    f.get();
    return id;
  }

  // Runs the io_context until pred holds (or fails the test after timeout).
  template <typename Pred>
  void run_until(Pred pred, std::chrono::seconds timeout = std::chrono::seconds(10)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!pred()) {
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "condition not reached";
      if (io_.stopped()) io_.restart();  // it stops whenever it runs out of work
      io_.run_for(std::chrono::milliseconds(10));
    }
  }

  bool gone(const std::string& id) {
    db_->flush();
    return !std::filesystem::exists(queue_file(dir_, id));
  }

  std::vector<std::vector<std::string>> rows(const std::string& sql) {
    db_->flush();
    sqlite3* db = nullptr;
    sqlite3_open((dir_ / "audit.db").c_str(), &db);
    sqlite3_stmt* st = nullptr;
    std::vector<std::vector<std::string>> out;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
    while (sqlite3_step(st) == SQLITE_ROW) {
      std::vector<std::string> row;
      for (int i = 0; i < sqlite3_column_count(st); ++i) {
        auto* t = sqlite3_column_text(st, i);
        row.push_back(t ? reinterpret_cast<const char*>(t) : "NULL");
      }
      out.push_back(row);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return out;
  }

  std::string read_queued(const std::string& id) {
    std::ifstream in(queue_file(dir_, id), std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  std::filesystem::path dir_;
  asio::io_context io_;
  std::unique_ptr<spool> spooler_;
  std::unique_ptr<database> db_;
  std::unique_ptr<queue_manager> manager_;
  delivery_settings settings_;
  script script_;
  bool portal_ = false;  // wire a scripted portal into the services
  policy_test::temp_policy temp_policy_;
  std::shared_ptr<const policy::policy> policy_;
};

}  // namespace

TEST_F(Delivery, OneTransferPerDomainAndMethodThenTheMessageLeavesTheSpool) {
  start();
  auto id = submit("app@ours.example", {"a@ok.example", "b@ok.example", "c@other.example"});
  run_until([&] { return gone(id); });
  ASSERT_EQ(script_.sent.size(), 2u);
  std::map<std::string, size_t> per_domain;
  for (auto& t : script_.sent) per_domain[t.domain] = t.recipients.size();
  EXPECT_EQ(per_domain["ok.example"], 2u);
  EXPECT_EQ(per_domain["other.example"], 1u);
  // No policy file: the built-in policy, TLS 1.2 at least, never in clear.
  EXPECT_EQ(script_.sent[0].method, policy::method::tls);
  EXPECT_EQ(script_.sent[0].transport, policy::tls_level::required);
  EXPECT_EQ(script_.sent[0].min_tls_version, sealgate::policy::tls_version::v1_2);
  EXPECT_FALSE(std::filesystem::exists(status_file(dir_, id)));
  auto r = rows("SELECT address, status, method, rule, policy_sha256, mx_host, tls_protocol, certificate, attempts"
                " FROM recipients WHERE queue_id='" + id + "' ORDER BY idx");
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0], (std::vector<std::string>{"a@ok.example", "delivered", "tls", "builtin-default", "builtin",
                                            "mx.ok.example", "TLSv1.3", "verified", "1"}));
  EXPECT_EQ(rows("SELECT message_id FROM messages WHERE queue_id='" + id + "'")[0][0], "<m1@ours.example>");
}

TEST_F(Delivery, RecipientsOfOneDomainWithDifferentMethodsGetSeparateTransfers) {
  use_policy(
      "rules:\n"
      "  - name: clear-ok\n    match: {recipients: 'news@ok.example'}\n    methods: [plain]\n"
      "  - name: default\n    methods: [tls]\n");
  start();
  auto id = submit("app@ours.example", {"a@ok.example", "news@ok.example", "b@ok.example"});
  run_until([&] { return gone(id); });
  ASSERT_EQ(script_.sent.size(), 2u);
  for (const auto& t : script_.sent) {
    if (t.method == policy::method::plain) {
      EXPECT_EQ(t.recipients, std::vector<std::string>{"news@ok.example"});
      EXPECT_EQ(t.transport, policy::tls_level::opportunistic);
    } else {
      EXPECT_EQ(t.recipients, (std::vector<std::string>{"a@ok.example", "b@ok.example"}));
    }
  }
  EXPECT_EQ(script_.fact_lookups, 1) << "one probe per domain and pass";
  auto r = rows("SELECT rule, policy_sha256 FROM recipients WHERE queue_id='" + id + "' ORDER BY idx");
  EXPECT_EQ(r[1][0], "clear-ok");
  EXPECT_EQ(r[1][1], policy_->sha256);
}

TEST_F(Delivery, ATemporaryFailureIsRetriedAndDeliveredLater) {
  script_.outcomes["retry.example"] = {outcome::kind::deferred, outcome::kind::delivered};
  start();
  auto id = submit("app@ours.example", {"x@retry.example"});
  run_until([&] { return gone(id); });
  EXPECT_EQ(script_.sent.size(), 2u);
  auto a = rows("SELECT outcome, reply FROM attempts WHERE queue_id='" + id + "' ORDER BY rowid");
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(a[0], (std::vector<std::string>{"deferred", "451 4.7.1 greylisted"}));
  EXPECT_EQ(a[1][0], "delivered");
  EXPECT_EQ(rows("SELECT attempts FROM recipients WHERE queue_id='" + id + "'")[0][0], "2");
}

TEST_F(Delivery, AStatusThatCannotBeWrittenNeverSendsADeliveredRecipientAgain) {
  // The spool disk full after a delivery: the status line could not be
  // written, the pass threw and was retried from the stale file, and the same
  // message went out again every retry_min (4 copies in 45 s), with no
  // attempt rows. A directory where the status file belongs makes every
  // write fail here.
  script_.outcomes["retry.example"] = {outcome::kind::deferred, outcome::kind::delivered};
  auto id = submit("app@ours.example", {"a@ok.example", "x@retry.example"});  // queued before the queue starts
  ASSERT_TRUE(std::filesystem::create_directory(status_file(dir_, id)));
  start({id});
  run_until([&] { return gone(id); });
  size_t to_ok = 0;
  for (const auto& t : script_.sent) to_ok += t.domain == "ok.example";
  EXPECT_EQ(to_ok, 1u) << "a delivered recipient was sent again";
  EXPECT_EQ(script_.sent.size(), 3u);
  auto r = rows("SELECT address, status FROM recipients WHERE queue_id='" + id + "' ORDER BY idx");
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0], (std::vector<std::string>{"a@ok.example", "delivered"}));
  EXPECT_EQ(r[1], (std::vector<std::string>{"x@retry.example", "delivered"}));
  EXPECT_EQ(rows("SELECT count(*) FROM attempts WHERE queue_id='" + id + "'")[0][0], "3");
}

TEST_F(Delivery, AnInternationalizedDomainIsLookedUpByItsALabel) {
  // The U-label domain went to the DNS raw (nothing found) and the message
  // expired after five days.
  start();
  auto id = submit("app@ours.example", {"j\xC3\xB6rg@b\xC3\xBC" "cher.example"});
  run_until([&] { return gone(id); });
  ASSERT_EQ(script_.sent.size(), 1u);
  EXPECT_EQ(script_.sent[0].domain, "xn--bcher-kva.example");
  EXPECT_EQ(script_.sent[0].recipients, std::vector<std::string>{"j\xC3\xB6rg@b\xC3\xBC" "cher.example"});
}

TEST_F(Delivery, APermanentFailureBouncesWithADsnThatHoldsNoContent) {
  script_.outcomes["bounce.example"] = {outcome::kind::bounced};
  start();
  auto id = submit("app@ours.example", {"x@bounce.example", "y@ok.example"});
  // The DSN is itself delivered: to the sender's domain, from the null sender.
  run_until([&] { return gone(id) && script_.sent.size() >= 3; });
  const outbound_transfer* dsn = nullptr;
  for (const auto& t : script_.sent)
    if (t.sender.empty()) dsn = &t;
  ASSERT_NE(dsn, nullptr);
  EXPECT_EQ(dsn->recipients, std::vector<std::string>{"app@ours.example"});
  const std::string text = text_of(*dsn);
  EXPECT_NE(text.find("Final-Recipient: rfc822; x@bounce.example"), std::string::npos);
  EXPECT_NE(text.find("Diagnostic-Code: smtp; 550 5.1.1 <x@bounce.example>: user unknown"), std::string::npos);
  EXPECT_EQ(text.find("y@ok.example"), std::string::npos) << "only the failed recipient is reported";
  EXPECT_EQ(text.find("SECRET BODY"), std::string::npos);
  EXPECT_EQ(text.find("Lab results"), std::string::npos) << "no RET: not even the Subject";
  auto r = rows("SELECT status FROM recipients WHERE queue_id='" + id + "' ORDER BY idx");
  EXPECT_EQ(r[0][0], "bounced");
  EXPECT_EQ(r[1][0], "delivered");
  EXPECT_EQ(manager_->stats().dsns, 1u);
}

TEST_F(Delivery, TheNullSenderNeverGetsABounce) {
  script_.outcomes["bounce.example"] = {outcome::kind::bounced};
  start();
  auto id = submit("", {"x@bounce.example"});
  run_until([&] { return gone(id); });
  io_.run_for(std::chrono::milliseconds(100));
  EXPECT_EQ(script_.sent.size(), 1u);
  EXPECT_EQ(manager_->stats().dsns, 0u);
}

TEST_F(Delivery, RetHdrsReturnsTheHeadersButNotTheBody) {
  script_.outcomes["bounce.example"] = {outcome::kind::bounced};
  start();
  auto id = submit("app@ours.example", {"x@bounce.example"}, 0, "HDRS");
  run_until([&] { return gone(id) && script_.sent.size() >= 2; });
  const std::string text = text_of(script_.sent.back());
  EXPECT_NE(text.find("Content-Type: text/rfc822-headers"), std::string::npos);
  EXPECT_NE(text.find("Subject: Lab results"), std::string::npos);
  EXPECT_EQ(text.find("SECRET BODY"), std::string::npos);
}

TEST_F(Delivery, AMissingStarttlsNeverFallsBackToClearUnderTheBuiltinPolicy) {
  script_.method_fails["strip.example"] = true;
  start();
  auto id = submit("app@ours.example", {"x@strip.example"});
  run_until([&] { return manager_->stats().deferred >= 1; });
  ASSERT_EQ(script_.sent.size(), 1u);
  EXPECT_EQ(script_.sent[0].transport, policy::tls_level::required);
  auto m = load_queued(dir_, id);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->status[0].state, rcpt_state::pending);
  EXPECT_EQ(m->status[0].detail, "mx.strip.example does not offer STARTTLS");
  EXPECT_EQ(manager_->stats().bounced, 0u);
}

TEST_F(Delivery, AMethodFailureMovesToTheNextMethodWhenTheRuleSaysSo) {
  use_policy("rules:\n  - name: default\n    methods: [tls, plain]\n    on_failure: next\n");
  script_.method_fails["strip.example"] = true;
  start();
  auto id = submit("app@ours.example", {"x@strip.example"});
  run_until([&] { return script_.sent.size() >= 2; });
  EXPECT_EQ(script_.sent[0].method, policy::method::tls);
  EXPECT_EQ(script_.sent[1].method, policy::method::plain);
  auto a = rows("SELECT outcome, method FROM attempts WHERE queue_id='" + id + "' ORDER BY rowid");
  ASSERT_GE(a.size(), 1u);
  EXPECT_EQ(a[0], (std::vector<std::string>{"method-failed", "tls"}));
}

// A portal deposit delivers the recipient and sends the notification as a
// message of its own, through the policy, which never sends it to the portal
// again (a notification of a notification would reach no one).
TEST_F(Delivery, APortalDepositSendsItsNotificationAsAMessageOfItsOwn) {
  use_policy("rules:\n  - name: default\n    methods: [portal, plain]\n    portal: {expire: 2d}\n");
  portal_ = true;
  start();
  auto id = submit("app@ours.example", {"pat@patient.example"});
  run_until([&] { return gone(id) && script_.sent.size() >= 1; });
  ASSERT_EQ(script_.deposits.size(), 1u);
  EXPECT_EQ(script_.deposits[0].expire, 2 * 86400);
  EXPECT_EQ(script_.deposits[0].sender, "app@ours.example");
  ASSERT_EQ(script_.sent.size(), 1u);
  const auto& notice = script_.sent[0];
  EXPECT_NE(notice.queue_id, id);
  EXPECT_EQ(notice.sender, "secure@ours.example");
  EXPECT_EQ(notice.method, policy::method::plain);
  EXPECT_EQ(text_of(notice).find("SECRET BODY"), std::string::npos);
  ASSERT_EQ(script_.notified.size(), 1u);
  EXPECT_EQ(std::get<1>(script_.notified[0]), id);
  EXPECT_EQ(std::get<3>(script_.notified[0]), notice.queue_id);
  auto r = rows("SELECT status, method FROM recipients WHERE queue_id='" + id + "'");
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0], (std::vector<std::string>{"delivered", "portal"}));
  auto n = rows("SELECT status, method FROM recipients WHERE queue_id='" + notice.queue_id + "'");
  ASSERT_EQ(n.size(), 1u);
  EXPECT_EQ(n[0], (std::vector<std::string>{"delivered", "plain"}));
}

TEST_F(Delivery, RequireTlsRaisesTheTransportAndBouncesWhenItCannotBeHonoured) {
  use_policy("rules:\n  - name: default\n    methods: [tls, plain]\n    on_failure: next\n");
  script_.method_fails["strip.example"] = true;
  start();
  auto ok = submit("app@ours.example", {"x@ok.example"}, 0, "", "s", true);
  auto id = submit("app@ours.example", {"x@strip.example"}, 0, "", "s", true);
  const outbound_transfer* dsn = nullptr;
  run_until([&] {
    for (const auto& t : script_.sent)
      if (t.sender.empty()) dsn = &t;
    return gone(ok) && gone(id) && dsn;
  });
  for (const auto& t : script_.sent) {
    if (t.sender.empty()) continue;  // the DSN
    EXPECT_TRUE(t.requiretls);
    EXPECT_EQ(t.transport, policy::tls_level::verified) << t.domain;
    EXPECT_NE(t.method, policy::method::plain) << "never the clear fallback";
  }
  EXPECT_EQ(rows("SELECT status FROM recipients WHERE queue_id='" + id + "'")[0][0], "bounced");
  EXPECT_NE(text_of(*dsn).find("Status: 5.7.30"), std::string::npos);
}

TEST_F(Delivery, ADomainThatTakesNoMailBouncesWithoutAskingThePolicy) {
  start();
  auto id = submit("app@ours.example", {"x@nullmx.example"});
  run_until([&] { return gone(id) && !script_.sent.empty(); });
  ASSERT_EQ(script_.sent.size(), 1u);  // only the DSN
  EXPECT_NE(text_of(script_.sent[0]).find("Status: 5.1.10"), std::string::npos);
  EXPECT_NE(text_of(script_.sent[0]).find("null MX"), std::string::npos);
}

TEST_F(Delivery, FactsThePolicyCannotReadAreNeverLookedUp) {
  use_policy(
      "rules:\n  - name: wait\n    match: {domains: 'held.example'}\n    methods: [hold]\n"
      "  - name: e2e\n    match: {domains: 'enc.example'}\n    methods: [pgp, tls]\n"
      "  - name: default\n    methods: [tls]\n");
  start();
  // hold reads neither key nor domain facts: no probe, no key search.
  auto held_id = submit("app@ours.example", {"x@held.example"});
  run_until([&] { return !rows("SELECT 1 FROM recipients WHERE status = 'held'").empty(); });
  EXPECT_EQ(script_.fact_lookups, 0);
  EXPECT_EQ(script_.key_lookups, 0);
  auto m = load_queued(dir_, held_id);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->status[0].detail, "held by policy rule wait");
  // tls reads the domain's facts, never keys.
  auto id = submit("app@ours.example", {"y@tls.example"});
  run_until([&] { return gone(id); });
  EXPECT_EQ(script_.fact_lookups, 1);
  EXPECT_EQ(script_.key_lookups, 0);
  ASSERT_EQ(script_.sent.size(), 1u);
  // pgp reads keys: one search, then tls (no key found) over the probed domain.
  auto enc_id = submit("app@ours.example", {"z@enc.example"});
  run_until([&] { return gone(enc_id); });
  EXPECT_EQ(script_.fact_lookups, 2);
  EXPECT_EQ(script_.key_lookups, 1);
}

TEST_F(Delivery, UnknownFactsDeferWithoutConnecting) {
  policy::domain_facts unknown;
  unknown.starttls = policy::fact::tempfail;
  script_.facts["servfail.example"] = unknown;
  start();
  auto id = submit("app@ours.example", {"x@servfail.example"});
  run_until([&] { return manager_->stats().deferred >= 1; });
  EXPECT_TRUE(script_.sent.empty());
  auto m = load_queued(dir_, id);
  ASSERT_TRUE(m);
  EXPECT_NE(m->status[0].detail.find("failed temporarily"), std::string::npos) << m->status[0].detail;
}

TEST_F(Delivery, PolicyRejectBouncesWithTheConfiguredText) {
  use_policy(
      "rules:\n  - name: no\n    match: {domains: 'evil.example'}\n    methods: [reject]\n"
      "    reject_text: 'Not to competitors.'\n  - name: default\n    methods: [tls]\n");
  start();
  auto id = submit("app@ours.example", {"x@evil.example"});
  run_until([&] { return gone(id) && script_.sent.size() >= 1; });
  ASSERT_EQ(script_.sent.size(), 1u);  // only the DSN
  EXPECT_TRUE(script_.sent[0].sender.empty());
  EXPECT_NE(text_of(script_.sent[0]).find("Status: 5.7.1"), std::string::npos);
  EXPECT_NE(text_of(script_.sent[0]).find("Not to competitors."), std::string::npos);
}

TEST_F(Delivery, AnOldMessageExpiresInsteadOfBeingRetried) {
  settings_.queue.max_age = std::chrono::seconds(3600);
  script_.outcomes["retry.example"] = {outcome::kind::deferred};
  start();
  auto id = submit("app@ours.example", {"x@retry.example"}, ::time(nullptr) - 7200);
  run_until([&] { return gone(id) && !script_.sent.empty() && script_.sent.back().sender.empty(); });
  EXPECT_EQ(manager_->stats().expired, 1u);
  const std::string text = text_of(script_.sent.back());
  EXPECT_NE(text.find("Status: 4.4.7"), std::string::npos);
  EXPECT_NE(text.find("delivery time expired; last problem: 451 4.7.1 greylisted"), std::string::npos);
}

TEST_F(Delivery, ADelayNoticeIsSentOnce) {
  settings_.queue.delay_warning = std::chrono::seconds(60);
  script_.outcomes["retry.example"] = {outcome::kind::deferred, outcome::kind::deferred,
                                       outcome::kind::delivered};
  start();
  auto id = submit("app@ours.example", {"x@retry.example"}, ::time(nullptr) - 120);
  run_until([&] { return gone(id); }, std::chrono::seconds(15));
  EXPECT_EQ(manager_->stats().dsns, 1u);
  bool found = false;
  for (const auto& t : script_.sent)
    if (t.sender.empty()) found = text_of(t).find("Action: delayed") != std::string::npos;
  EXPECT_TRUE(found);
}

TEST_F(Delivery, ARestartResumesWithoutRepeatingFinishedRecipients) {
  auto id = submit("app@ours.example", {"done@ok.example", "todo@ok.example"});
  rcpt_status delivered;
  delivered.state = rcpt_state::delivered;
  delivered.method = "tls";
  append_status(status_file(dir_, id), {{0, delivered}});
  start({id});
  run_until([&] { return gone(id); });
  ASSERT_EQ(script_.sent.size(), 1u);
  EXPECT_EQ(script_.sent[0].recipients, std::vector<std::string>{"todo@ok.example"});
  // The record of the recipient finished before the "crash" is completed from its status line.
  auto r = rows("SELECT status, method, attempts FROM recipients WHERE queue_id='" + id + "' ORDER BY idx");
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0], (std::vector<std::string>{"delivered", "tls", "0"}));
  EXPECT_EQ(r[1][0], "delivered");
}

TEST_F(Delivery, SubjectTagIsStrippedWhenTheRuleSaysSo) {
  use_policy(
      "classes:\n  - name: secure\n    when: {subject_tag: '[secure]'}\n"
      "rules:\n  - name: s\n    match: {classes: secure}\n    methods: [tls]\n    strip_subject_tag: true\n"
      "  - name: default\n    methods: [tls]\n");
  start();
  auto id = submit("app@ours.example", {"x@ok.example"}, 0, "", "[secure] Lab results");
  run_until([&] { return gone(id); });
  ASSERT_EQ(script_.sent.size(), 1u);
  EXPECT_NE(text_of(script_.sent[0]).find("Subject: Lab results\r\n"), std::string::npos) << text_of(script_.sent[0]);
  EXPECT_NE(text_of(script_.sent[0]).find("SECRET BODY"), std::string::npos) << "the body is untouched";
}

TEST_F(Delivery, ALargeMessageIsSentFromTheSpoolFileNotFromMemory) {
  // Each pass held the whole message: 20 x 20 MiB to a slow MX took 536 MB.
  // Over 1 MiB, a transfer reads the spool file as it sends; a Subject
  // rewrite replaces the header block alone.
  use_policy(
      "classes:\n  - name: secure\n    when: {subject_tag: '[secure]'}\n"
      "rules:\n  - name: s\n    match: {classes: secure}\n    methods: [tls]\n    strip_subject_tag: true\n"
      "  - name: default\n    methods: [tls]\n");
  start();
  std::string body;
  for (int i = 0; body.size() < 3 * 1024 * 1024; ++i) body += "line " + std::to_string(i) + " of a large report\r\n";
  auto plain = submit("app@ours.example", {"x@ok.example"}, 0, "", "Large", false, body);
  auto tagged = submit("app@ours.example", {"y@ok.example"}, 0, "", "[secure] Large", false, body);
  run_until([&] { return gone(plain) && gone(tagged); });
  ASSERT_EQ(script_.sent.size(), 2u);
  for (const auto& t : script_.sent) {
    EXPECT_EQ(t.content->memory(), nullptr) << "a 3 MiB message was copied into memory";
    std::string text = text_of(t);
    EXPECT_EQ(text, "Subject: Large\r\nMessage-ID: <m1@ours.example>\r\n\r\n" + body);
    EXPECT_EQ(t.content->size(), text.size());
  }
}

TEST(MessageContent, PiecesFromMemoryAndFile) {
  char path[] = "/tmp/sealgate-content-XXXXXX";
  int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ::unlink(path);
  std::string file = "ENVELOPE\n.\nSubject: x\r\n\r\nbody\r\n";
  ASSERT_EQ(::write(fd, file.data(), file.size()), static_cast<ssize_t>(file.size()));
  auto shared = std::make_shared<const shared_fd>(fd);
  auto c = message_content::from_file(shared, 11, file.size() - 11);
  std::string out;
  ASSERT_TRUE(c->read_all(out));
  EXPECT_EQ(out, "Subject: x\r\n\r\nbody\r\n");
  auto r = c->with_start_replaced(12, "Subject: y\r\nX: 1\r\n");
  ASSERT_TRUE(r->read(0, 100, out));
  EXPECT_EQ(out, "Subject: y\r\nX: 1\r\n\r\nbody\r\n");
  ASSERT_TRUE(r->read(15, 4, out));
  EXPECT_EQ(out, "1\r\n\r");
  // A file shorter than it should be is an error, never a short message.
  auto past = message_content::from_file(shared, 11, file.size());
  EXPECT_FALSE(past->read_all(out));
}

TEST(StripSubjectTags, PlainEncodedAndFolded) {
  EXPECT_EQ(strip_subject_tags_in("Subject: [secure] Hi\r\nX: 1\r\n\r\nbody [secure]\r\n", {"[secure]"}),
            "Subject: Hi\r\nX: 1\r\n\r\nbody [secure]\r\n");
  EXPECT_EQ(strip_subject_tags_in("Subject: =?UTF-8?Q?[secure]_Gr=C3=BC=C3=9Fe?=\r\n\r\nb\r\n", {"[secure]"}),
            "Subject: =?UTF-8?B?R3LDvMOfZQ==?=\r\n\r\nb\r\n");
  EXPECT_EQ(strip_subject_tags_in("Subject: a very\r\n long [secure] subject\r\n\r\nb\r\n", {"[secure]"}),
            "Subject: a very long subject\r\n\r\nb\r\n");
  std::string untouched = "Subject: nothing here\r\n\r\nb\r\n";
  EXPECT_EQ(strip_subject_tags_in(untouched, {"[secure]"}), untouched);
}

TEST(StripSubjectTags, EachEncodedWordKeepsItsCharset) {
  // An ISO-8859-1 word was decoded and labelled UTF-8: "Gr\xFC\xDFe" shown as garbage.
  auto out = strip_subject_tags_in("Subject: =?ISO-8859-1?Q?[secure]_Gr=FC=DFe?= und =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r\n\r\nb\r\n",
                                   {"[secure]"});
  EXPECT_EQ(out, "Subject: =?ISO-8859-1?B?R3L832U=?= und =?UTF-8?B?R3LDvMOfZQ==?=\r\n\r\nb\r\n");
  EXPECT_EQ(sealgate::policy::decode_rfc2047("=?ISO-8859-1?B?R3L832U=?="), "Gr\xFC\xDF" "e");
}

TEST(StripSubjectTags, TheRewrittenFieldIsFoldedWithinRfc5322Limits) {
  // A long subject came out as one 2,078-byte line.
  std::string words;
  for (int i = 0; i < 60; ++i) words += "=?UTF-8?Q?Befund_Nr=2E_" + std::to_string(i) + "_f=C3=BCr_Sie?= ";
  std::string in = "Subject: [secure] " + words + "\r\nX-After: 1\r\n\r\nbody\r\n";
  auto out = strip_subject_tags_in(in, {"[secure]"});
  size_t end = out.find("\r\nX-After: 1\r\n\r\nbody\r\n");
  ASSERT_NE(end, std::string::npos) << out;
  std::string field = out.substr(0, end);
  size_t lines = 0;
  for (size_t pos = 0; pos <= field.size();) {
    size_t eol = field.find("\r\n", pos);
    std::string line = field.substr(pos, eol == std::string::npos ? std::string::npos : eol - pos);
    EXPECT_LE(line.size(), 78u) << line;
    if (lines > 0) {
      EXPECT_EQ(line.front(), ' ') << "a continuation line starts with whitespace";
    }
    ++lines;
    if (eol == std::string::npos) break;
    pos = eol + 2;
  }
  EXPECT_GT(lines, 20u);
  // What a reader decodes is the original text without the tag.
  std::string unfolded;
  for (size_t i = 0; i < field.size(); ++i) {
    if (field.compare(i, 2, "\r\n") == 0) {
      ++i;
      continue;
    }
    unfolded += field[i];
  }
  std::string expected;
  for (int i = 0; i < 60; ++i) expected += "Befund Nr. " + std::to_string(i) + " f\xC3\xBCr Sie";
  EXPECT_EQ(sealgate::policy::decode_rfc2047(unfolded.substr(9)), expected);
}

TEST(StripSubjectTags, SpacesAroundEncodedWordsStayAsTheyShowed) {
  EXPECT_EQ(strip_subject_tags_in("Subject: Re: [SECURE] =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=!\r\n\r\nb\r\n", {"[secure]"}),
            "Subject: Re: =?UTF-8?B?R3LDvMOfZQ==?=!\r\n\r\nb\r\n");
  EXPECT_EQ(strip_subject_tags_in("Subject: [secure]\r\n\r\nb\r\n", {"[secure]"}), "Subject:\r\n\r\nb\r\n");
}
