// The ESMTP state machine driven line by line, without sockets: each test reads
// like an SMTP transcript and checks every reply code and status.
#include <gtest/gtest.h>

#include "common/text.hpp"
#include "gateway/inbound/smtp_protocol.hpp"

using namespace sealgate::gateway;
using action = smtp_protocol::action;

namespace {
connection_facts facts(bool may_relay = true, listener_auth auth = listener_auth::optional,
                       listener_tls tls = listener_tls::starttls) {
  connection_facts f;
  f.hostname = "gw.test";
  f.listener = "smarthost";
  f.tls = tls;
  f.auth = auth;
  f.client_address = "127.0.0.1";
  f.client_may_relay = may_relay;
  return f;
}

std::string code(const smtp_protocol::step& s) { return s.output.substr(0, 3); }
// The last line's code and status ("250 2.1.0").
std::string last(const smtp_protocol::step& s) {
  auto end = s.output.rfind("\r\n");
  auto start = s.output.rfind("\r\n", end - 1);
  start = start == std::string::npos ? 0 : start + 2;
  auto status_end = s.output.find(' ', start + 4);
  return s.output.substr(start, status_end - start);
}
std::string b64(std::string_view s) { return sealgate::base64_encode(s); }
}  // namespace

TEST(Protocol, GreetingAndEhloExtensions) {
  smtp_protocol p(facts(), {});
  EXPECT_EQ(p.greeting().output, "220 gw.test ESMTP sealgate\r\n");
  auto s = p.on_line("EHLO client.test");
  EXPECT_EQ(s.output,
            "250-gw.test\r\n250-PIPELINING\r\n250-SIZE 26214400\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n"
            "250-ENHANCEDSTATUSCODES\r\n250-DSN\r\n250 STARTTLS\r\n");
}

TEST(Protocol, AuthIsOfferedOnlyInsideTls) {
  smtp_protocol p(facts(false), {});
  p.on_line("EHLO c");
  EXPECT_EQ(last(p.on_line("AUTH PLAIN " + b64(std::string("\0u\0p", 4)))), "538 5.7.11");
  p.tls_started("TLSv1.3", "TLS_AES_256_GCM_SHA384", 256, 256);
  EXPECT_EQ(last(p.on_line("MAIL FROM:<a@b.example>")), "503 5.5.1");  // EHLO again after TLS (RFC 3207 4.2)
  auto e = p.on_line("EHLO c");
  EXPECT_NE(e.output.find("250 AUTH PLAIN LOGIN\r\n"), std::string::npos) << e.output;
  EXPECT_NE(e.output.find("250-REQUIRETLS\r\n"), std::string::npos) << e.output;
  EXPECT_EQ(e.output.find("STARTTLS"), std::string::npos);
  auto a = p.on_line("AUTH PLAIN " + b64(std::string("\0alice\0secret", 13)));
  EXPECT_EQ(a.next, action::verify_auth);
  EXPECT_EQ(p.pending_credentials().user, "alice");
  EXPECT_EQ(p.pending_credentials().password, "secret");
  EXPECT_EQ(last(p.auth_result(true)), "235 2.7.0");
  EXPECT_TRUE(p.pending_credentials().password.empty());
  EXPECT_EQ(last(p.on_line("MAIL FROM:<a@b.example>")), "250 2.1.0");
  EXPECT_EQ(last(p.on_line("RCPT TO:<c@d.example>")), "250 2.1.5");
  EXPECT_EQ(p.transaction().auth_user, "alice");
}

TEST(Protocol, AuthLoginAndFailure) {
  smtp_protocol p(facts(false), {});
  p.tls_started("TLSv1.2", "ECDHE-RSA-AES256-GCM-SHA384", 256, 256);
  p.on_line("EHLO c");
  EXPECT_EQ(p.on_line("AUTH LOGIN").output, "334 VXNlcm5hbWU6\r\n");
  EXPECT_EQ(p.on_line(b64("alice")).output, "334 UGFzc3dvcmQ6\r\n");
  EXPECT_EQ(p.on_line(b64("wrong")).next, action::verify_auth);
  EXPECT_EQ(last(p.auth_result(false)), "535 5.7.8");
  p.on_line("MAIL FROM:<a@b.example>");
  EXPECT_EQ(p.on_line("RCPT TO:<c@d.example>").output, "554 5.7.1 <c@d.example>: Relay access denied\r\n");
}

TEST(Protocol, AuthCancelAndBadBase64) {
  smtp_protocol p(facts(), {});
  p.tls_started("TLSv1.3", "X", 256, 256);
  p.on_line("EHLO c");
  EXPECT_EQ(p.on_line("AUTH PLAIN").output, "334 \r\n");
  EXPECT_EQ(last(p.on_line("*")), "501 5.0.0");
  EXPECT_EQ(last(p.on_line("AUTH PLAIN !!!!")), "501 5.5.2");
  EXPECT_EQ(last(p.on_line("AUTH CRAM-MD5")), "504 5.5.4");
  EXPECT_EQ(last(p.on_line("AUTH PLAIN " + b64(std::string("bob\0alice\0pw", 12)))), "535 5.7.8");
}

TEST(Protocol, RelayDecisions) {
  {
    smtp_protocol p(facts(true), {});
    p.on_line("EHLO c");
    p.on_line("MAIL FROM:<a@b.example>");
    EXPECT_EQ(last(p.on_line("RCPT TO:<c@d.example>")), "250 2.1.5");
  }
  {
    smtp_protocol p(facts(true, listener_auth::required), {});
    p.on_line("EHLO c");
    p.on_line("MAIL FROM:<a@b.example>");
    EXPECT_EQ(last(p.on_line("RCPT TO:<c@d.example>")), "530 5.7.0");
  }
}

TEST(Protocol, TransactionOrderAndData) {
  smtp_protocol p(facts(), {});
  EXPECT_EQ(last(p.on_line("MAIL FROM:<a@b.example>")), "503 5.5.1");
  p.on_line("EHLO c");
  EXPECT_EQ(last(p.on_line("RCPT TO:<c@d.example>")), "503 5.5.1");
  EXPECT_EQ(last(p.on_line("DATA")), "503 5.5.1");
  p.on_line("MAIL FROM:<a@b.example>");
  EXPECT_EQ(last(p.on_line("MAIL FROM:<a@b.example>")), "503 5.5.1");
  EXPECT_EQ(last(p.on_line("DATA")), "554 5.5.1");
  p.on_line("RCPT TO:<c@d.example> NOTIFY=FAILURE");
  auto d = p.on_line("DATA");
  EXPECT_EQ(d.next, action::receive_data);
  EXPECT_EQ(code(d), "354");
  EXPECT_EQ(p.transaction().recipients.at(0).params.notify, "FAILURE");
  data_result ok;
  ok.queue_id = "ABC";
  EXPECT_EQ(p.data_done(ok).output, "250 2.0.0 Ok: queued as ABC\r\n");
  EXPECT_EQ(last(p.on_line("RCPT TO:<c@d.example>")), "503 5.5.1");  // transaction was reset
}

TEST(Protocol, DataOutcomes) {
  auto run = [](data_result r) {
    smtp_protocol p(facts(), {});
    p.on_line("EHLO c");
    p.on_line("MAIL FROM:<a@b.example>");
    p.on_line("RCPT TO:<c@d.example>");
    p.on_line("DATA");
    return p.data_done(r);
  };
  data_result bare;
  bare.bare_newline = true;
  auto s = run(bare);
  EXPECT_EQ(last(s), "554 5.5.2");
  EXPECT_EQ(s.next, action::close);
  data_result big;
  big.too_big = true;
  EXPECT_EQ(last(run(big)), "552 5.3.4");
  data_result io;
  io.spool_failed = true;
  EXPECT_EQ(last(run(io)), "451 4.3.0");
}

TEST(Protocol, LimitsAndErrors) {
  protocol_limits lim;
  lim.recipients = 2;
  lim.errors = 3;
  lim.message_size = 1000;
  smtp_protocol p(facts(), lim);
  p.on_line("EHLO c");
  EXPECT_EQ(last(p.on_line("MAIL FROM:<a@b.example> SIZE=1001")), "552 5.3.4");
  p.on_line("MAIL FROM:<a@b.example> SIZE=1000");
  p.on_line("RCPT TO:<c@d.example>");
  p.on_line("RCPT TO:<e@d.example>");
  EXPECT_EQ(last(p.on_line("RCPT TO:<f@d.example>")), "452 4.5.3");  // not an error (RFC 5321 4.5.3.1.10)
  EXPECT_EQ(p.on_line("BOGUS").next, action::read_line);
  auto s = p.on_line("BOGUS");
  EXPECT_EQ(s.next, action::close);
  EXPECT_NE(s.output.find("421 4.7.0 gw.test Error: too many errors"), std::string::npos);
}

TEST(Protocol, SimpleCommands) {
  smtp_protocol p(facts(), {});
  p.on_line("HELO c");
  EXPECT_EQ(last(p.on_line("NOOP")), "250 2.0.0");
  EXPECT_EQ(last(p.on_line("RSET")), "250 2.0.0");
  EXPECT_EQ(last(p.on_line("VRFY bob")), "252 2.5.2");
  EXPECT_EQ(last(p.on_line("EXPN list")), "502 5.5.1");
  EXPECT_EQ(code(p.on_line("HELP")), "214");
  EXPECT_EQ(last(p.on_line("MAIL FROM:<a@b.example> SIZE=10")), "555 5.5.4");  // parameters need EHLO
  EXPECT_EQ(last(p.on_line("STARTTLS now")), "501 5.5.4");
  EXPECT_EQ(p.on_line("STARTTLS").next, action::start_tls);
  EXPECT_EQ(p.on_line("QUIT").next, action::close);
  EXPECT_EQ(last(p.on_line_too_long()), "500 5.5.2");
  EXPECT_EQ(last(p.on_timeout()), "421 4.4.2");
  auto bye = p.on_shutdown();
  EXPECT_EQ(last(bye), "421 4.3.2");
  EXPECT_EQ(bye.next, action::close);
}

TEST(Protocol, ReceivedHeaderSaysHowTheHopWent) {
  smtp_protocol p(facts(), {});
  p.tls_started("TLSv1.3", "TLS_AES_256_GCM_SHA384", 256, 256);
  p.on_line("EHLO client.test");
  p.on_line("MAIL FROM:<a@b.example>");
  p.on_line("RCPT TO:<c@d.example>");
  auto h = received_header(p, "ABC123", "Tue, 24 Nov 2026 10:00:00 +0000");
  EXPECT_EQ(h,
            "Received: from client.test (unknown [127.0.0.1])\r\n"
            "\tby gw.test (sealgate) with ESMTPS id ABC123\r\n"
            "\t(listener smarthost, not authenticated)\r\n"
            "\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits))\r\n"
            "\t; Tue, 24 Nov 2026 10:00:00 +0000\r\n");
}

TEST(Protocol, RequireTlsOnlyInsideTlsAndKeptInTheEnvelope) {
  smtp_protocol p(facts(), {});
  auto e = p.on_line("EHLO c");
  EXPECT_EQ(e.output.find("REQUIRETLS"), std::string::npos) << "not offered in clear";
  EXPECT_EQ(p.on_line("MAIL FROM:<a@b.example> REQUIRETLS").output,
            "530 5.7.10 REQUIRETLS needs a TLS session; use STARTTLS first\r\n");
  p.tls_started("TLSv1.3", "TLS_AES_256_GCM_SHA384", 256, 256);
  p.on_line("EHLO c");
  EXPECT_EQ(last(p.on_line("MAIL FROM:<a@b.example> REQUIRETLS=yes")), "501 5.5.4");
  EXPECT_EQ(last(p.on_line("MAIL FROM:<a@b.example> REQUIRETLS")), "250 2.1.0");
  EXPECT_TRUE(p.transaction().params.requiretls);
}

TEST(Protocol, RecipientsOverTheLimitAreDeferredNotCountedAsErrors) {
  // 1,010 RCPTs against a limit of 1,000 and 20 errors: the ten extra get 452
  // and the transaction goes on with its 1,000 recipients (it once ended in
  // 421 and lost them all).
  protocol_limits lim;
  lim.recipients = 1000;
  lim.errors = 20;
  smtp_protocol p(facts(), lim);
  p.on_line("EHLO c");
  p.on_line("MAIL FROM:<a@b.example>");
  for (int i = 0; i < 1010; ++i) {
    auto s = p.on_line("RCPT TO:<r" + std::to_string(i) + "@d.example>");
    ASSERT_EQ(s.next, action::read_line) << i;
    EXPECT_EQ(last(s), i < 1000 ? "250 2.1.5" : "452 4.5.3") << i;
  }
  EXPECT_EQ(p.transaction().recipients.size(), 1000u);
  EXPECT_EQ(p.on_line("DATA").next, action::receive_data);
}

TEST(Protocol, EndlessOverLimitRecipientsAreCountedInTheEnd) {
  // A client that goes on past another limit's worth of 452s is not taking
  // the hint: those count, so it cannot hold the session for ever.
  protocol_limits lim;
  lim.recipients = 2;
  lim.errors = 3;
  smtp_protocol p(facts(), lim);
  p.on_line("EHLO c");
  p.on_line("MAIL FROM:<a@b.example>");
  smtp_protocol::step s;
  int sent = 0;
  while (s.next != action::close && sent < 100) s = p.on_line("RCPT TO:<r" + std::to_string(sent++) + "@d.example>");
  EXPECT_EQ(s.next, action::close);
  EXPECT_EQ(sent, 2 + 2 + 3);  // two taken, two forgiven, then three errors
}
