// The portal's request handling (portal/web/app.hpp) on a real store in a
// temporary file, without a socket: that a GET changes nothing, the code flow
// (CSRF, the sealed code in the outbox, lockout), sessions, the answers for
// unknown, retracted and expired links, the security headers, the rate limit,
// attachments. The HTTPS server around it is tests/integration/portal_test.py's.
#include <gtest/gtest.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <filesystem>
#include <regex>
#include <string>
#include <unistd.h>

#include "common/text.hpp"
#include "gateway/methods/portal_service.hpp"
#include "portal/store/store.hpp"
#include "portal/store/vault.hpp"
#include "portal/web/app.hpp"

namespace sealgate::portal {
namespace {

namespace fs = std::filesystem;
namespace http = boost::beast::http;

constexpr int64_t t0 = 1'800'000'000;

const std::string message =
    "From: Dr. Ada <ada@clinic.example>\r\nTo: <pat@patient.example>\r\nSubject: Results\r\n"
    "Message-ID: <m1@clinic.example>\r\nMIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
    "--b\r\nContent-Type: text/plain\r\n\r\nYour result: PHI-42\r\n"
    "--b\r\nContent-Type: text/html; name=\"x.html\"\r\nContent-Disposition: attachment; filename=\"x.html\"\r\n\r\n"
    "<script>alert(1)</script>\r\n--b--\r\n";

class PortalApp : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = fs::temp_directory_path() / ("sealgate-app-" + std::to_string(::getpid()) + "-" +
                                       ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir);
    fs::create_directories(dir);
    config.configured = true;
    config.store = dir / "portal.db";
    config.base_url = "https://portal.example";
    config.requests_per_minute = 1000;
    keys = new_box_keys();
    auto s = open_store(config.store);
    s->set_setting("outbox_public_key", base64_encode(keys.public_key));
    token = new_token();
    deposit d;
    d.lookup = lookup_key(token);
    d.queue_id = "Q1";
    d.recipient = "pat@patient.example";
    d.sender = "ada@clinic.example";
    d.created = t0;
    d.expires = t0 + 86400;
    d.size = message.size();
    d.sealed = seal_message(message, token, d.lookup);
    entry_id = s->add(d);
    app = std::make_unique<portal_app>(config, open_store(config.store));
    observer = open_store(config.store);
  }
  void TearDown() override { fs::remove_all(dir); }

  http_response request(http::verb verb, const std::string& target, const std::string& body = "",
                        const std::string& type = "application/x-www-form-urlencoded", int64_t now = t0 + 60) {
    http_request r{verb, target, 11};
    if (!cookie.empty()) r.set(http::field::cookie, "__Host-sg=" + cookie);
    if (!body.empty()) r.set(http::field::content_type, type);
    r.body() = body;
    r.prepare_payload();
    auto res = app->handle(r, boost::asio::ip::make_address("192.0.2.7"), now);
    auto set = res[http::field::set_cookie];
    std::smatch m;
    std::string header(set);
    if (std::regex_search(header, m, std::regex("__Host-sg=([A-Za-z0-9_-]{43})"))) cookie = m[1];
    return res;
  }
  static std::string csrf(const http_response& r) {
    std::smatch m;
    EXPECT_TRUE(std::regex_search(r.body(), m, std::regex("name=\"csrf\" value=\"([A-Za-z0-9_-]+)\"")));
    return m.size() > 1 ? std::string(m[1]) : "";
  }
  std::string code_from_outbox() {
    auto items = observer->outbox(10);
    if (items.empty()) return "";
    auto code = box_open(keys.private_key, items.back().box);
    return code ? *code : "";
  }
  std::string snapshot() {
    std::string out;
    for (const auto& e : observer->list({}))
      out += e.code_hash + "|" + e.code_session + "|" + std::to_string(e.failed_codes) + "|" +
             std::to_string(e.codes_sent) + "|" + std::string(to_string(e.state)) + ";";
    for (const auto& ev : observer->events("Q1")) out += ev.kind + ";";
    return out + std::to_string(observer->outbox(100).size());
  }
  static void expect_security_headers(const http_response& r) {
    EXPECT_EQ(r["X-Content-Type-Options"], "nosniff");
    EXPECT_EQ(r["Referrer-Policy"], "no-referrer");
    EXPECT_NE(std::string(r["Content-Security-Policy"]).find("frame-ancestors 'none'"), std::string::npos);
    EXPECT_EQ(std::string(r["Content-Security-Policy"]).find("unsafe-inline"), std::string::npos);
    EXPECT_NE(std::string(r["Strict-Transport-Security"]).find("max-age="), std::string::npos);
  }

  fs::path dir;
  portal_config config;
  box_keys keys;
  std::string token, cookie;
  int64_t entry_id = 0;
  std::unique_ptr<portal_app> app;
  std::unique_ptr<store> observer;
};

TEST_F(PortalApp, GetsAndHeadsOfTheLinkChangeNothing) {
  std::string before = snapshot();
  for (int i = 0; i < 10; ++i) {
    cookie.clear();
    auto r = request(i % 2 ? http::verb::head : http::verb::get, "/m/" + token);
    EXPECT_EQ(r.result(), http::status::ok);
    EXPECT_EQ(r[http::field::cache_control], "no-store");
    expect_security_headers(r);
    if (i % 2) EXPECT_TRUE(r.body().empty());
    else EXPECT_NE(r.body().find("Send me a code"), std::string::npos);
    EXPECT_EQ(r.body().find("PHI-42"), std::string::npos);
  }
  EXPECT_EQ(snapshot(), before);
  EXPECT_TRUE(observer->outbox(10).empty());
}

TEST_F(PortalApp, TheCookieIsHostOnlySecureHttpOnlyStrict) {
  auto r = request(http::verb::get, "/m/" + token);
  std::string set(r[http::field::set_cookie]);
  EXPECT_EQ(set.rfind("__Host-sg=", 0), 0u);
  for (const char* flag : {"Path=/", "Secure", "HttpOnly", "SameSite=Strict"})
    EXPECT_NE(set.find(flag), std::string::npos) << flag;
  EXPECT_EQ(set.find("Domain"), std::string::npos);
}

TEST_F(PortalApp, ACodeOpensTheMessageOnceAndOnlyInTheBrowserThatAskedForIt) {
  auto landing = request(http::verb::get, "/m/" + token);
  // No CSRF token, or another browser's: refused, nothing sent.
  EXPECT_EQ(request(http::verb::post, "/m/" + token + "/code", "csrf=x").result(), http::status::forbidden);
  EXPECT_TRUE(observer->outbox(10).empty());
  auto sent = request(http::verb::post, "/m/" + token + "/code", "csrf=" + csrf(landing));
  EXPECT_EQ(sent.result(), http::status::see_other);
  std::string code = code_from_outbox();
  ASSERT_EQ(code.size(), 6u);
  // The store keeps no code in the clear.
  EXPECT_NE(observer->list({})[0].code_hash, code);

  auto page = request(http::verb::get, "/m/" + token);
  EXPECT_NE(page.body().find("Enter your code"), std::string::npos);
  std::string mine = cookie;
  cookie = new_token();  // another browser with the right code and its own valid CSRF token
  auto other = request(http::verb::get, "/m/" + token);
  auto r = request(http::verb::post, "/m/" + token + "/verify", "csrf=" + csrf(other) + "&code=" + code);
  EXPECT_EQ(r.result(), http::status::ok);
  EXPECT_EQ(r.body().find("PHI-42"), std::string::npos);

  cookie = mine;
  r = request(http::verb::post, "/m/" + token + "/verify", "csrf=" + csrf(page) + "&code=" + code);
  EXPECT_EQ(r.result(), http::status::see_other);
  EXPECT_NE(cookie, mine);  // the session that may read gets a new token
  auto shown = request(http::verb::get, "/m/" + token);
  EXPECT_NE(shown.body().find("PHI-42"), std::string::npos);
  EXPECT_NE(shown.body().find("Results"), std::string::npos);
  // The HTML attachment is listed, never rendered; it downloads as an attachment with a safe type.
  EXPECT_EQ(shown.body().find("<script>alert"), std::string::npos);
  auto file = request(http::verb::get, "/m/" + token + "/a/0");
  EXPECT_EQ(file.result(), http::status::ok);
  EXPECT_EQ(file[http::field::content_type], "application/octet-stream");
  EXPECT_EQ(std::string(file[http::field::content_disposition]).rfind("attachment;", 0), 0u);
  expect_security_headers(file);

  // Single use: the same code again does nothing for a new browser session.
  cookie = new_token();
  auto again = request(http::verb::get, "/m/" + token);
  r = request(http::verb::post, "/m/" + token + "/verify", "csrf=" + csrf(again) + "&code=" + code);
  EXPECT_EQ(r.body().find("PHI-42"), std::string::npos);
  // And the session expires.
  EXPECT_EQ(request(http::verb::get, "/m/" + token, "", "", t0 + 60 + 3600).body().find("PHI-42"),
            std::string::npos);
}

TEST_F(PortalApp, FiveWrongCodesLockTheEntry) {
  auto landing = request(http::verb::get, "/m/" + token);
  request(http::verb::post, "/m/" + token + "/code", "csrf=" + csrf(landing));
  std::string code = code_from_outbox();
  std::string wrong = code == "000000" ? "111111" : "000000";
  http_response r;
  for (int i = 0; i < 5; ++i)
    r = request(http::verb::post, "/m/" + token + "/verify", "csrf=" + csrf(landing) + "&code=" + wrong);
  EXPECT_NE(r.body().find("Too many wrong codes"), std::string::npos);
  // Locked: even the right code does not open it now.
  r = request(http::verb::post, "/m/" + token + "/verify", "csrf=" + csrf(landing) + "&code=" + code);
  EXPECT_EQ(r.body().find("PHI-42"), std::string::npos);
  int locked = 0;
  for (const auto& e : observer->events("Q1")) locked += e.kind == "locked";
  EXPECT_EQ(locked, 1);
}

TEST_F(PortalApp, UnknownRetractedAndExpiredLinksSaySoWithoutContent) {
  auto unknown = request(http::verb::get, "/m/" + new_token());
  EXPECT_EQ(unknown.result(), http::status::not_found);
  EXPECT_EQ(request(http::verb::get, "/m/short").result(), http::status::not_found);
  auto expired = request(http::verb::get, "/m/" + token, "", "", t0 + 86400 + 1);
  EXPECT_EQ(expired.result(), http::status::gone);
  EXPECT_NE(expired.body().find("expired"), std::string::npos);
  observer->retract("Q1", "", t0 + 100, "tester");
  auto retracted = request(http::verb::get, "/m/" + token);
  EXPECT_EQ(retracted.result(), http::status::gone);
  EXPECT_NE(retracted.body().find("withdrawn"), std::string::npos);
  for (const auto* r : {&unknown, &expired, &retracted}) expect_security_headers(*r);
}

TEST_F(PortalApp, WrongMethodsAndPathsGet4xx) {
  EXPECT_EQ(request(http::verb::put, "/m/" + token).result(), http::status::method_not_allowed);
  EXPECT_EQ(request(http::verb::post, "/style.css").result(), http::status::method_not_allowed);
  EXPECT_EQ(request(http::verb::get, "/m/" + token + "/nothing").result(), http::status::not_found);
  EXPECT_EQ(request(http::verb::get, "/etc/passwd").result(), http::status::not_found);
  EXPECT_EQ(request(http::verb::get, "/m/" + token + "/a/99").result(), http::status::see_other);  // no session
}

TEST_F(PortalApp, ClientsOverTheirMinuteGet429) {
  config.requests_per_minute = 3;
  app = std::make_unique<portal_app>(config, open_store(config.store));
  for (int i = 0; i < 3; ++i) EXPECT_EQ(request(http::verb::get, "/m/" + token).result(), http::status::ok);
  auto r = request(http::verb::get, "/m/" + token);
  EXPECT_EQ(r.result(), http::status::too_many_requests);
  EXPECT_EQ(r[http::field::retry_after], "60");
  // The next minute is a new one.
  EXPECT_EQ(request(http::verb::get, "/m/" + token, "", "", t0 + 180).result(), http::status::ok);
}

// Behind a trusted load balancer the minute is the client's that
// X-Forwarded-For names, not the balancer's; from anyone else the header is
// ignored, so a client cannot buy fresh minutes by writing one.
TEST_F(PortalApp, TheRateLimitIsKeyedByTheForwardedClient) {
  config.requests_per_minute = 2;
  config.trusted_proxies = {*ip_network::parse("10.0.0.5")};
  app = std::make_unique<portal_app>(config, open_store(config.store));
  auto get = [&](const char* peer, const char* forwarded_for) {
    http_request r{http::verb::get, "/m/" + token, 11};
    if (forwarded_for) r.insert("X-Forwarded-For", forwarded_for);
    return app->handle(r, boost::asio::ip::make_address(peer), t0 + 60).result();
  };
  EXPECT_EQ(get("10.0.0.5", "198.51.100.1"), http::status::ok);
  EXPECT_EQ(get("10.0.0.5", "198.51.100.1"), http::status::ok);
  EXPECT_EQ(get("10.0.0.5", "198.51.100.1"), http::status::too_many_requests);
  EXPECT_EQ(get("10.0.0.5", "198.51.100.2"), http::status::ok);  // another client through the same balancer
  EXPECT_EQ(get("192.0.2.9", "198.51.100.3"), http::status::ok);  // untrusted peer: its own minute
  EXPECT_EQ(get("192.0.2.9", "198.51.100.4"), http::status::ok);
  EXPECT_EQ(get("192.0.2.9", "198.51.100.5"), http::status::too_many_requests);
  EXPECT_EQ(get("10.0.0.5", nullptr), http::status::ok);  // the balancer's own minute
}

}  // namespace
}  // namespace sealgate::portal

namespace sealgate::gateway {
namespace {

// Template values are made safe for where they go: no line breaks in a header
// (a sender's name cannot add a Bcc), braces by doubling, unknown names
// refused at load time (config_test), never sent as text.
TEST(PortalNotice, PlaceholdersAreFilledAndCannotInjectHeaders) {
  EXPECT_EQ(render_template("Hi {a}, {{literal}} {b}", {{"a", "A"}, {"b", "B"}}), "Hi A, {literal} B");
  portal::portal_config c;
  c.from = "secure@ours.example";
  c.organisation = "Example\r\nBcc: evil@example.org";
  c.notification.subject = "{sender_name} sent you a message";
  notice_input in;
  in.sender_name = "Eve\r\nBcc: evil@example.org";
  in.sender_address = "eve@ours.example";
  in.recipient = "pat@patient.example";
  in.link = "https://portal.example/m/TOKEN";
  in.hostname = "gw.example";
  in.now = 1'800'000'000;
  in.expires = in.now + 86400;
  std::string m = compose_notification(c, in);
  std::string head = m.substr(0, m.find("\r\n\r\n") + 2);
  EXPECT_EQ(head.find("\r\nBcc:"), std::string::npos) << head;
  EXPECT_NE(head.find("Reply-To: <eve@ours.example>"), std::string::npos) << head;
  EXPECT_NE(head.find("From: \"EveBcc: evil@example.org via ExampleBcc: evil@example.org\" <secure@ours.example>"),
            std::string::npos)
      << head;
  EXPECT_NE(m.find("https://portal.example/m/TOKEN"), std::string::npos);
  // A display name with a quote or a backslash stays one quoted string.
  in.sender_name = "Ada \"Doc\" \\ Smith";
  m = compose_notification(c, in);
  EXPECT_NE(m.find("From: \"Ada \\\"Doc\\\" \\\\ Smith via "), std::string::npos) << m.substr(0, 300);
}

TEST(PortalNotice, NonAsciiSubjectsAreEncodedWords) {
  portal::portal_config c;
  c.from = "secure@ours.example";
  notice_input in;
  in.sender_name = "Jürgen Müller";
  in.sender_address = "j@ours.example";
  in.recipient = "pat@patient.example";
  in.link = "https://portal.example/m/T";
  in.hostname = "gw.example";
  std::string m = compose_notification(c, in);
  std::string head = m.substr(0, m.find("\r\n\r\n"));
  for (unsigned char ch : head) EXPECT_LT(ch, 0x80);
  EXPECT_NE(head.find("=?utf-8?b?"), std::string::npos);
  EXPECT_NE(m.find("Content-Transfer-Encoding: base64"), std::string::npos);
}

// With a logo the notification has an HTML alternative that shows it from
// a related part (never a remote image), every value escaped, the link a link.
TEST(PortalNotice, ALogoMakesAnHtmlAlternativeWithTheLogoInline) {
  portal::portal_config c;
  c.from = "secure@ours.example";
  c.organisation = "Example <Health>";
  notice_input in;
  in.sender_name = "<script>alert(1)</script>";
  in.sender_address = "eve@ours.example";
  in.recipient = "pat@patient.example";
  in.link = "https://portal.example/m/TOKEN";
  in.hostname = "gw.example";
  std::string png = "\x89PNG\r\n\x1a\nlogo-bytes";
  in.logo = png;
  std::string m = compose_notification(c, in);
  EXPECT_NE(m.find("Content-Type: multipart/alternative"), std::string::npos);
  EXPECT_NE(m.find("Content-Type: multipart/related"), std::string::npos);
  EXPECT_NE(m.find("Content-ID: <logo@sealgate>"), std::string::npos);
  EXPECT_NE(m.find(base64_encode(png)), std::string::npos);
  // The HTML part is base64 or 7bit: find it decoded.
  size_t at = m.find("Content-Type: text/html");
  ASSERT_NE(at, std::string::npos);
  size_t body = m.find("\r\n\r\n", at) + 4;
  std::string part = m.substr(body, m.find("\r\n--", body) - body);
  if (m.compare(m.find("Content-Transfer-Encoding: ", at) + 27, 6, "base64") == 0) {
    std::string joined;
    for (char ch : part)
      if (ch != '\r' && ch != '\n') joined += ch;
    bool ok = false;
    part = base64_decode(joined, ok);
    ASSERT_TRUE(ok);
  }
  EXPECT_NE(part.find("src=\"cid:logo@sealgate\""), std::string::npos);
  EXPECT_NE(part.find("<a href=\"https://portal.example/m/TOKEN\">"), std::string::npos);
  EXPECT_EQ(part.find("<script>"), std::string::npos);
  EXPECT_NE(part.find("&lt;script&gt;"), std::string::npos);
  EXPECT_NE(part.find("alt=\"Example &lt;Health&gt;\""), std::string::npos);
  EXPECT_EQ(part.find("http://"), std::string::npos);
}

TEST(PortalNotice, TheCodeMailSaysTheCodeAndItsLifetime) {
  portal::portal_config c;
  c.from = "secure@ours.example";
  c.codes.lifetime = 300;
  std::string m = compose_code_mail(c, "pat@patient.example", "012345", "gw.example", 1'800'000'000);
  EXPECT_NE(m.find("012345"), std::string::npos);
  EXPECT_NE(m.find("valid for 5 minutes"), std::string::npos);
  EXPECT_NE(m.find("Auto-Submitted: auto-generated"), std::string::npos);
}

}  // namespace
}  // namespace sealgate::gateway

namespace sealgate::gateway {
namespace {

boost::asio::awaitable<void> one_deposit(portal_service* svc, int n, std::vector<int64_t>* ids) {
  portal_deposit_request r;
  r.queue_id = "Q" + std::to_string(n);
  r.sender = "ada@clinic.example";
  r.recipient = "pat" + std::to_string(n) + "@patient.example";
  r.content = message_content::in_memory("From: Ada <ada@clinic.example>\r\nSubject: s\r\n\r\nbody " +
                                         std::to_string(n) + "\r\n");
  std::string why;
  auto result = co_await svc->deposit(std::move(r), &why);
  ids->push_back(result ? result->entry_id : -1);
}

// The group commit: deposits that arrive together share transactions, and
// each still gets its own entry, its own id and its own notification.
TEST(PortalService, ConcurrentDepositsEachGetTheirEntry) {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("sealgate-service-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  portal::portal_config c;
  c.configured = true;
  c.store = dir / "portal.db";
  c.outbox_key = dir / "outbox.key";
  c.base_url = "https://portal.example";
  c.from = "secure@clinic.example";
  {
    boost::asio::thread_pool pool(8);
    portal_service svc(c, "gw.example", pool);
    EXPECT_TRUE(svc.available());
    boost::asio::io_context io;
    std::vector<int64_t> ids;
    for (int i = 0; i < 40; ++i) boost::asio::co_spawn(io, one_deposit(&svc, i, &ids), boost::asio::detached);
    io.run();
    ASSERT_EQ(ids.size(), 40u);
    std::sort(ids.begin(), ids.end());
    EXPECT_EQ(std::unique(ids.begin(), ids.end()), ids.end());
    EXPECT_GT(ids.front(), 0);
    pool.join();
  }
  auto s = portal::open_store(c.store);
  EXPECT_EQ(s->list({}).size(), 40u);
  // The outbox key was made 0600 and its public half published for the portal process.
  EXPECT_EQ(fs::status(c.outbox_key).permissions() & fs::perms::all, fs::perms::owner_read | fs::perms::owner_write);
  EXPECT_TRUE(s->setting("outbox_public_key"));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace sealgate::gateway
