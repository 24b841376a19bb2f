// The outbound SMTP client over Beast's in-memory test stream (exact bytes
// written, hostile replies, EOF, injected plaintext after STARTTLS, simulated
// I/O failures), its pure pieces (reply parser, EHLO keywords, dot-stuffing),
// and its deadlines over real TCP on 127.0.3.40.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/_experimental/test/stream.hpp>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <random>

#include "crypto/tls_context.hpp"
#include "gateway/smtp_client/smtp_client.hpp"
#include "gateway/smtp_client/smtp_client_impl.hpp"

using namespace sealgate::gateway;
namespace asio = boost::asio;
namespace test = boost::beast::test;

template class sealgate::gateway::basic_smtp_client<test::stream>;
using memory_client = basic_smtp_client<test::stream>;

namespace {

std::shared_ptr<asio::ssl::context> client_context() { return sealgate::crypto::make_client_context(""); }

// Runs a named coroutine to completion on ioc (no capturing coroutine lambdas: g++ 12).
template <class T>
T run(asio::io_context& ioc, asio::awaitable<T> a) {
  T out{};
  std::exception_ptr failure;
  asio::co_spawn(ioc, std::move(a), [&](std::exception_ptr e, T v) {
    failure = e;
    out = std::move(v);
  });
  ioc.run();
  ioc.restart();
  if (failure) std::rethrow_exception(failure);
  return out;
}

struct transcript {
  std::vector<smtp_result> results;
};

asio::awaitable<transcript> full_session(memory_client* c) {
  transcript t;
  t.results.push_back(co_await c->greeting());
  t.results.push_back(co_await c->ehlo("client.test"));
  t.results.push_back(co_await c->command("MAIL FROM:<a@example.org>", std::chrono::seconds(5)));
  t.results.push_back(co_await c->command("RCPT TO:<b@example.net>", std::chrono::seconds(5)));
  t.results.push_back(co_await c->send_data(".leading dot\r\nline\r\n..two\r\nlast line without CRLF"));
  t.results.push_back(co_await c->quit());
  co_return t;
}

asio::awaitable<smtp_result> greeting_then_ehlo(memory_client* c) {
  auto r = co_await c->greeting();
  if (!r) co_return r;
  co_return co_await c->ehlo("client.test");
}

asio::awaitable<smtp_result> greeting_only(memory_client* c) { co_return co_await c->greeting(); }

asio::awaitable<smtp_result> greeting_then_data(memory_client* c) {
  auto r = co_await c->greeting();
  if (!r) co_return r;
  co_return co_await c->send_data("Subject: x\r\n\r\nbody\r\n");
}

asio::awaitable<std::vector<smtp_result>> pipelined(memory_client* c) {
  std::vector<smtp_result> out;
  out.push_back(co_await c->greeting());
  // A named vector: g++ 12 cannot compile a braced list inside a co_await expression.
  std::vector<std::string> lines;
  lines.push_back("MAIL FROM:<a@example.org>");
  lines.push_back("RCPT TO:<b@example.net>");
  lines.push_back("RCPT TO:<c@example.net>");
  auto replies = co_await c->pipeline(std::move(lines), std::chrono::seconds(5));
  for (auto& r : replies) out.push_back(std::move(r));
  co_return out;
}

asio::awaitable<smtp_result> to_starttls(memory_client* c) {
  auto r = co_await c->greeting();
  if (!r) co_return r;
  r = co_await c->ehlo("client.test");
  if (!r) co_return r;
  co_return co_await c->start_tls("mx.example.net", "client.test");
}

struct pair {
  asio::io_context ioc;
  test::stream server{ioc};
  std::unique_ptr<memory_client> client;
  explicit pair(std::string_view input) {
    test::stream s(ioc);
    s.connect(server);
    s.append(input);
    s.close_remote();  // EOF once the scripted replies are read
    client = std::make_unique<memory_client>(std::move(s), client_context(), smtp_timeouts{});
  }
};

}  // namespace

TEST(SmtpClient, SessionWritesExactlyTheProtocol) {
  pair p("220 mx.example.net ESMTP\r\n"
         "250-mx.example.net\r\n250-SIZE 10240000\r\n250-starttls\r\n250-PIPELINING\r\n250-8BITMIME\r\n"
         "250-SMTPUTF8\r\n250-REQUIRETLS\r\n250-ENHANCEDSTATUSCODES\r\n250-AUTH PLAIN LOGIN\r\n250 DSN\r\n"
         "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n250 2.0.0 Ok: queued as X\r\n"
         "221 2.0.0 Bye\r\n");
  auto t = run(p.ioc, full_session(p.client.get()));
  ASSERT_EQ(t.results.size(), 6u);
  for (auto& r : t.results) EXPECT_FALSE(r.error) << r.error.message();
  EXPECT_EQ(t.results[0].reply.code, 220);
  EXPECT_EQ(t.results[1].reply.lines.size(), 10u);
  EXPECT_EQ(t.results[2].reply.enhanced, "2.1.0");
  EXPECT_EQ(t.results[4].reply.text(), "250 2.0.0 Ok: queued as X");
  EXPECT_EQ(t.results[5].reply.code, 221);
  const auto& x = p.client->extensions();
  EXPECT_TRUE(x.esmtp && x.starttls && x.pipelining && x.eight_bit_mime && x.smtputf8 && x.requiretls &&
              x.enhanced_status_codes && x.dsn);
  EXPECT_FALSE(x.chunking);
  EXPECT_EQ(x.size, 10240000u);
  EXPECT_EQ(x.auth, (std::vector<std::string>{"PLAIN", "LOGIN"}));
  // Dot-stuffing (RFC 5321 4.5.2), a CRLF added before the final dot.
  EXPECT_EQ(p.server.str(),
            "EHLO client.test\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n"
            "..leading dot\r\nline\r\n...two\r\nlast line without CRLF\r\n.\r\nQUIT\r\n");
}

TEST(SmtpClient, PipelineWritesOnceAndReadsEveryReply) {
  // RFC 2920: the commands go in one write; the replies come back in order. A
  // server that hangs up after the second reply leaves the third with its error.
  pair p("220 mx ESMTP\r\n250 2.1.0 Ok\r\n550 5.1.1 no such user\r\n");
  auto r = run(p.ioc, pipelined(p.client.get()));
  ASSERT_EQ(r.size(), 4u);
  EXPECT_EQ(r[1].reply.code, 250);
  EXPECT_EQ(r[2].reply.enhanced, "5.1.1");
  EXPECT_EQ(r[3].error, make_error_code(smtp_client_error::connection_closed));
  EXPECT_EQ(p.server.str(), "MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nRCPT TO:<c@example.net>\r\n");
}

TEST(SmtpClient, HeloWhenEhloIsRefused) {
  pair p("220 old.example.net\r\n502 5.5.2 Error: command not recognized\r\n250 old.example.net\r\n");
  auto r = run(p.ioc, greeting_then_ehlo(p.client.get()));
  ASSERT_FALSE(r.error) << r.error.message();
  EXPECT_EQ(r.reply.code, 250);
  EXPECT_FALSE(p.client->extensions().esmtp);
  EXPECT_FALSE(p.client->extensions().starttls);
  EXPECT_EQ(p.server.str(), "EHLO client.test\r\nHELO client.test\r\n");
}

TEST(SmtpClient, HostileRepliesAreTransportErrors) {
  struct {
    const char* input;
    smtp_client_error expected;
  } cases[] = {
      {"hello there\r\n", smtp_client_error::malformed_reply},
      {"220-mx\r\n221 mixed codes\r\n", smtp_client_error::malformed_reply},
      {"2200 no separator\r\n", smtp_client_error::malformed_reply},
      {"120 not a completion code\r\n", smtp_client_error::malformed_reply},
      {"220-first line, then the server hangs up\r\n", smtp_client_error::connection_closed},
      {"", smtp_client_error::connection_closed},
  };
  for (auto& c : cases) {
    pair p(c.input);
    auto r = run(p.ioc, greeting_only(p.client.get()));
    EXPECT_EQ(r.error, make_error_code(c.expected)) << c.input << ": " << r.error.message();
    EXPECT_EQ(r.reply.code, 0) << c.input;
  }
}

TEST(SmtpClient, OnlyA354StartsTheContentAndOnlyA2xxAfterTheDotDelivers) {
  // A hostile MX answering 250 to DATA never saw the message; one answering
  // 354 after the final dot never said it took it. Neither is a success.
  pair early("220 mx\r\n250 2.0.0 Ok: queued\r\n");
  auto r = run(early.ioc, greeting_then_data(early.client.get()));
  EXPECT_EQ(r.error, make_error_code(smtp_client_error::unexpected_reply)) << r.error.message();
  EXPECT_EQ(r.reply.code, 250);
  EXPECT_EQ(early.server.str(), "DATA\r\n");  // no content after a reply that was not 354

  pair late("220 mx\r\n354 go ahead\r\n354 go ahead again\r\n");
  r = run(late.ioc, greeting_then_data(late.client.get()));
  EXPECT_EQ(r.error, make_error_code(smtp_client_error::unexpected_reply)) << r.error.message();

  pair refused("220 mx\r\n554 5.7.1 no thanks\r\n");
  r = run(refused.ioc, greeting_then_data(refused.client.get()));
  EXPECT_FALSE(r.error) << r.error.message();  // a refusal is a reply, kept as such
  EXPECT_EQ(r.reply.code, 554);

  pair ok("220 mx\r\n354 go ahead\r\n250 2.0.0 Ok\r\n");
  r = run(ok.ioc, greeting_then_data(ok.client.get()));
  EXPECT_FALSE(r.error) << r.error.message();
  EXPECT_TRUE(r.reply.positive());

  remote_reply intermediate;
  intermediate.code = 354;
  EXPECT_FALSE(intermediate.positive());
}

TEST(SmtpClient, ReplyLinesAndCountsAreBounded) {
  pair longline("220 " + std::string(3000, 'a') + "\r\n");
  EXPECT_EQ(run(longline.ioc, greeting_only(longline.client.get())).error.message(), "reply line too long");
  std::string many;
  for (int i = 0; i < 150; ++i) many += "220-line\r\n";
  pair lines(many + "220 end\r\n");
  EXPECT_EQ(run(lines.ioc, greeting_only(lines.client.get())).error.message(), "reply with too many lines");
  // No line end at all: refused once the buffer passes the line limit, not read forever.
  pair endless(std::string(5000, 'x'));
  EXPECT_EQ(run(endless.ioc, greeting_only(endless.client.get())).error.message(), "reply line too long");
}

TEST(SmtpClient, PlaintextAfterThe220ToStarttlsIsDiscarded) {
  // RFC 3207 5: the injected "250 injected" must never be read as a reply,
  // not before the handshake and not after it.
  pair p("220 mx ESMTP\r\n250-mx\r\n250 STARTTLS\r\n220 2.0.0 Ready to start TLS\r\n250 injected\r\n");
  auto r = run(p.ioc, to_starttls(p.client.get()));
  EXPECT_EQ(r.error, make_error_code(smtp_client_error::tls_handshake)) << r.error.message();
  EXPECT_EQ(p.client->tls().discarded_plaintext, std::string("250 injected\r\n").size());
  EXPECT_FALSE(p.client->tls().active);
  // Only a TLS ClientHello followed STARTTLS (a handshake record starts with 0x16).
  auto written = std::string(p.server.str());
  auto at = written.find("STARTTLS\r\n");
  ASSERT_NE(at, std::string::npos);
  ASSERT_GT(written.size(), at + 10);
  EXPECT_EQ(written[at + 10], '\x16');
}

namespace {
// A scripted server on the other end of an in-memory stream: greets, offers
// STARTTLS, answers it with "220" and an injected "250 injected" in the same
// write, then really does TLS and answers the second EHLO.
asio::awaitable<void> injecting_tls_server(test::stream* s, asio::ssl::context* ctx, std::string* second_ehlo) {
  std::string buf;
  auto line = [&]() -> std::string {  // one complete line from buf (not a coroutine)
    auto nl = buf.find("\r\n");
    std::string l = buf.substr(0, nl);
    buf.erase(0, nl + 2);
    return l;
  };
  co_await asio::async_write(*s, asio::buffer(std::string("220 mx.example.net ESMTP\r\n")), asio::use_awaitable);
  co_await asio::async_read_until(*s, asio::dynamic_buffer(buf), "\r\n", asio::use_awaitable);
  line();  // EHLO
  co_await asio::async_write(*s, asio::buffer(std::string("250-mx.example.net\r\n250 STARTTLS\r\n")), asio::use_awaitable);
  co_await asio::async_read_until(*s, asio::dynamic_buffer(buf), "\r\n", asio::use_awaitable);
  line();  // STARTTLS
  co_await asio::async_write(*s, asio::buffer(std::string("220 2.0.0 Ready\r\n250 injected\r\n")), asio::use_awaitable);
  asio::ssl::stream<test::stream&> tls(*s, *ctx);
  co_await tls.async_handshake(asio::ssl::stream_base::server, asio::use_awaitable);
  std::string tbuf;
  co_await asio::async_read_until(tls, asio::dynamic_buffer(tbuf), "\r\n", asio::use_awaitable);
  *second_ehlo = tbuf.substr(0, tbuf.find("\r\n"));
  co_await asio::async_write(tls, asio::buffer(std::string("250-mx.example.net\r\n250 SIZE 5\r\n")), asio::use_awaitable);
}

void fail_on_exception(std::exception_ptr e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    ADD_FAILURE() << "server: " << x.what();
  }
}
}  // namespace

TEST(SmtpClient, StarttlsThrowsAwayInjectedPlaintextThenTalksTls) {
  // RFC 3207 5: "250 injected" arrived in clear with the 220; after the
  // handshake, the reply to EHLO must be the one that came through TLS.
  char tmpl[] = "/tmp/sealgate-smtpclient-XXXXXX";
  std::filesystem::path dir = mkdtemp(tmpl);
  auto cert = dir / "cert.pem", key = dir / "key.pem";
  std::string cmd = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=mx.example.net "
                    "-addext subjectAltName=DNS:mx.example.net -keyout " + key.string() + " -out " + cert.string() +
                    " 2>/dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  auto server_ctx = sealgate::crypto::make_server_context(cert, key);
  std::filesystem::remove_all(dir);

  asio::io_context ioc;
  test::stream server(ioc), client_end(ioc);
  client_end.connect(server);
  memory_client client(std::move(client_end), client_context(), smtp_timeouts{});
  std::string second_ehlo;
  asio::co_spawn(ioc, injecting_tls_server(&server, server_ctx.get(), &second_ehlo), fail_on_exception);
  auto r = run(ioc, to_starttls(&client));
  ASSERT_FALSE(r.error) << r.error.message();
  EXPECT_EQ(r.reply.text(), "250 mx.example.net / SIZE 5");  // not "250 injected"
  EXPECT_EQ(second_ehlo, "EHLO client.test");
  const auto& tls = client.tls();
  EXPECT_TRUE(tls.active);
  EXPECT_EQ(tls.discarded_plaintext, std::string("250 injected\r\n").size());
  EXPECT_EQ(tls.facts.protocol, "TLSv1.3");
  EXPECT_FALSE(tls.verification.chain_verified);  // self-signed: recorded, not fatal
  EXPECT_EQ(tls.verification.chain_error, "self-signed certificate");
  EXPECT_TRUE(tls.verification.host_matched);     // SNI and the name check used the server name
  EXPECT_EQ(tls.chain.size(), 1u);
  EXPECT_EQ(client.extensions().size, 5u);        // what EHLO said inside TLS, not before
  EXPECT_FALSE(client.extensions().starttls);
}

TEST(SmtpClient, StarttlsRefusedKeepsTheReply) {
  pair p("220 mx ESMTP\r\n250-mx\r\n250 STARTTLS\r\n454 4.7.0 TLS not available due to local problem\r\n");
  auto r = run(p.ioc, to_starttls(p.client.get()));
  ASSERT_FALSE(r.error);
  EXPECT_EQ(r.reply.code, 454);
  EXPECT_EQ(r.reply.enhanced, "4.7.0");
  EXPECT_TRUE(r.reply.transient());
  EXPECT_FALSE(p.client->tls().active);
}

TEST(SmtpClient, SimulatedIoFailureIsReported) {
  asio::io_context ioc;
  test::fail_count fc(1);  // the first operation fails
  test::stream s(ioc, fc, "220 mx ESMTP\r\n");
  memory_client c(std::move(s), client_context(), smtp_timeouts{});
  auto r = run(ioc, greeting_only(&c));
  EXPECT_EQ(r.error, boost::beast::test::error::test_failure);
}

// -- pure pieces ---------------------------------------------------------------------

TEST(SmtpReplyParser, EnhancedCodeOnlyWhenWellFormedAndOfTheSameClass) {
  auto one = [](std::string_view line) {
    reply_parser p;
    EXPECT_FALSE(p.feed(line));
    EXPECT_TRUE(p.done());
    return p.take();
  };
  EXPECT_EQ(one("250 2.1.0 Ok").enhanced, "2.1.0");
  EXPECT_EQ(one("550 5.7.1 Relaying denied").enhanced, "5.7.1");
  EXPECT_EQ(one("550 2.7.1 wrong class").enhanced, "");
  EXPECT_EQ(one("250 2.1 too short").enhanced, "");
  EXPECT_EQ(one("250 2.1000.1 too long").enhanced, "");
  EXPECT_EQ(one("250").code, 250);
  EXPECT_EQ(one("250").lines, std::vector<std::string>{""});
  EXPECT_EQ(one("421 4.4.2 bye\x01").text(), "421 4.4.2 bye?");  // control characters never reach a log
}

TEST(SmtpEhlo, SizeWithoutNumberAndUnknownKeywords) {
  remote_reply r{250, "", {"mx", "SIZE", "X-EXPERIMENT yes", "auth=login plain", "CHUNKING"}};
  auto x = parse_ehlo_reply(r);
  EXPECT_EQ(x.size, 0u);
  EXPECT_TRUE(x.chunking);
  EXPECT_TRUE(x.auth.empty());  // "AUTH=" is a pre-RFC 4954 form, not AUTH
  EXPECT_EQ(x.keywords, (std::vector<std::string>{"SIZE", "X-EXPERIMENT", "AUTH=LOGIN", "CHUNKING"}));
  remote_reply huge{250, "", {"mx", "SIZE 99999999999999999999999"}};
  EXPECT_EQ(parse_ehlo_reply(huge).size, 0u);
}

TEST(SmtpDotStuff, PiecesBareLineEndsAndTheFinalDot) {
  bool bol = true, cr = false;
  std::string out = dot_stuff("a\r", bol, false, cr);
  out += dot_stuff("\n.b\nc\rd", bol, false, cr);
  out += dot_stuff("\r\n.", bol, true, cr);
  // A bare LF and a bare CR each become CRLF: a receiver must never see an
  // end of data we did not mean (SMTP smuggling).
  EXPECT_EQ(out, "a\r\n..b\r\nc\r\nd\r\n..\r\n.\r\n");
  bool b2 = true, c2 = false;
  EXPECT_EQ(dot_stuff("", b2, true, c2), ".\r\n");
  bool b3 = true, c3 = false;
  EXPECT_EQ(dot_stuff(".\r\n", b3, true, c3), "..\r\n.\r\n");
}

// dot_stuff copies whole runs of a line at once; it must give exactly what
// the rule does one character at a time, however the content is cut into
// pieces and whatever mix of CR, LF, dots and text it holds.
TEST(SmtpDotStuff, RunsGiveTheSameOctetsAsOneCharacterAtATime) {
  auto reference = [](std::string_view content) {
    std::string out;
    bool bol = true, pending = false;
    auto feed = [&](char c) {
      if (pending) {
        pending = false;
        out += "\r\n";
        bol = true;
        if (c == '\n') return;
      }
      if (c == '\r') {
        pending = true;
        return;
      }
      if (c == '\n') {
        out += "\r\n";
        bol = true;
        return;
      }
      if (bol && c == '.') out += '.';
      out += c;
      bol = false;
    };
    for (char c : content) feed(c);
    if (pending) {
      out += "\r\n";
      bol = true;
    }
    if (!bol) out += "\r\n";
    return out + ".\r\n";
  };
  std::mt19937 rng(20251126);
  const char alphabet[] = {'\r', '\n', '.', 'a', 'b', ' '};
  for (int round = 0; round < 3000; ++round) {
    std::string content(rng() % 40, ' ');
    for (auto& c : content) c = alphabet[rng() % sizeof alphabet];
    std::vector<size_t> cuts;
    for (size_t at = 0; at < content.size(); at += 1 + rng() % 7) cuts.push_back(at);
    cuts.push_back(content.size());
    std::string out;
    bool bol = true, cr = false;
    size_t from = 0;
    for (size_t i = 0; i < cuts.size(); ++i) {
      out += dot_stuff(std::string_view(content).substr(from, cuts[i] - from), bol, i + 1 == cuts.size(), cr);
      from = cuts[i];
    }
    ASSERT_EQ(out, reference(content)) << "round " << round;
  }
}

// -- deadlines, over real TCP -----------------------------------------------------------

namespace {
asio::awaitable<std::pair<boost::system::error_code, smtp_result>> connect_and_greet(asio::ip::tcp::endpoint ep) {
  auto ex = co_await asio::this_coro::executor;
  boost::beast::tcp_stream stream(asio::make_strand(ex));
  smtp_timeouts t;
  t.connect = std::chrono::seconds(2);
  t.helo = std::chrono::seconds(1);
  auto ec = co_await smtp_connect(stream, ep, t.connect);
  if (ec) co_return std::make_pair(ec, smtp_result{});
  smtp_client c(std::move(stream), client_context(), t);
  co_return std::make_pair(ec, co_await c.greeting());
}
}  // namespace

TEST(SmtpClient, SilentServerHitsTheBannerDeadline) {
  asio::io_context ioc;
  asio::ip::tcp::acceptor acceptor(ioc, {asio::ip::make_address("127.0.3.40"), 0});
  asio::ip::tcp::socket accepted(ioc);
  acceptor.async_accept(accepted, [](boost::system::error_code) {});  // accepts, then says nothing
  auto start = std::chrono::steady_clock::now();
  auto [ec, r] = run(ioc, connect_and_greet(acceptor.local_endpoint()));
  auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_EQ(r.error, make_error_code(smtp_client_error::timeout)) << r.error.message();
  EXPECT_GE(elapsed, std::chrono::milliseconds(900));
  EXPECT_LT(elapsed, std::chrono::seconds(3));
}

TEST(SmtpClient, TricklingServerHitsTheBannerDeadline) {
  // A banner sent a byte at a time, each byte well inside the 1 s helo
  // timeout, must still end at the deadline: one deadline per reply.
  asio::io_context ioc;
  asio::ip::tcp::acceptor acceptor(ioc, {asio::ip::make_address("127.0.3.40"), 0});
  asio::ip::tcp::socket accepted(ioc);
  asio::steady_timer tick(ioc);
  const std::string banner = "220 trickle.example.net ESMTP\r\n";
  size_t sent = 0;
  std::function<void()> drip = [&] {
    if (sent >= banner.size() || !accepted.is_open()) return;
    boost::system::error_code ec;
    accepted.write_some(asio::buffer(banner.data() + sent, 1), ec);
    if (ec) return;
    ++sent;
    tick.expires_after(std::chrono::milliseconds(150));
    tick.async_wait([&](boost::system::error_code e) {
      if (!e) drip();
    });
  };
  acceptor.async_accept(accepted, [&](boost::system::error_code ec) {
    if (!ec) drip();
  });
  auto [ec, r] = run(ioc, connect_and_greet(acceptor.local_endpoint()));
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_EQ(r.error, make_error_code(smtp_client_error::timeout)) << r.error.message() << " after " << sent << " bytes";
  EXPECT_LT(sent, banner.size());
}

TEST(SmtpClient, RefusedConnectionIsAnError) {
  asio::io_context ioc;
  asio::ip::tcp::endpoint ep;
  {
    asio::ip::tcp::acceptor a(ioc, {asio::ip::make_address("127.0.3.40"), 0});
    ep = a.local_endpoint();
  }  // closed again: nothing listens there now
  auto [ec, r] = run(ioc, connect_and_greet(ep));
  EXPECT_EQ(ec, asio::error::connection_refused) << ec.message();
}
