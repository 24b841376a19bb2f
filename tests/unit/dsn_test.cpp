// DSNs: structure, no content without RET, headers only with it, hostile
// remote replies contained, NOTIFY honoured.
#include "gateway/queue/dsn.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>

using namespace sealgate::gateway;

namespace {

const std::string original =
    "Received: from app (app [127.0.0.1])\r\n\tby gw.test; Wed, 25 Nov 2026 10:00:00 +0000\r\n"
    "From: clinic@ours.example\r\nTo: pat@example.org\r\nSubject: Lab results for Jane Doe\r\n\r\n"
    "Your HbA1c is 9.1. SSN 123-45-6789.\r\n";

dsn_input failure_input() {
  dsn_input in;
  in.reporting_mta = "gw.test";
  in.queue_id = "QID1";
  in.sender = "clinic@ours.example";
  in.arrival = 1795000000;
  in.now = 1795000600;
  in.original_headers = header_block(original);
  dsn_recipient r;
  r.address = "pat@example.org";
  r.orcpt = "rfc822;pat+2Bx@example.org";
  r.status = "5.1.1";
  r.remote_mta = "mx.example.org";
  r.diagnostic = "550 5.1.1 <pat@example.org>: user unknown";
  r.method = "tls";
  r.last_attempt = 1795000500;
  in.recipients.push_back(r);
  return in;
}

std::vector<std::string> lines_of(const std::string& m) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < m.size()) {
    size_t e = m.find("\r\n", pos);
    EXPECT_NE(e, std::string::npos) << "line without CRLF at " << pos;
    if (e == std::string::npos) break;
    out.push_back(m.substr(pos, e - pos));
    pos = e + 2;
  }
  return out;
}

}  // namespace

TEST(Dsn, FailureReportHasTheRfc3464PartsAndNoContent) {
  auto m = make_dsn(failure_input());
  EXPECT_NE(m.find("Content-Type: multipart/report; report-type=delivery-status;"), std::string::npos);
  EXPECT_NE(m.find("Content-Type: message/delivery-status"), std::string::npos);
  EXPECT_NE(m.find("Reporting-MTA: dns; gw.test\r\n"), std::string::npos);
  EXPECT_NE(m.find("Final-Recipient: rfc822; pat@example.org\r\n"), std::string::npos);
  EXPECT_NE(m.find("Original-Recipient: rfc822;pat+x@example.org\r\n"), std::string::npos);
  EXPECT_NE(m.find("Action: failed\r\nStatus: 5.1.1\r\nRemote-MTA: dns; mx.example.org\r\n"), std::string::npos);
  EXPECT_NE(m.find("Diagnostic-Code: smtp; 550 5.1.1 <pat@example.org>: user unknown\r\n"), std::string::npos);
  EXPECT_NE(m.find("X-Sealgate-Method: tls\r\n"), std::string::npos);
  EXPECT_NE(m.find("Auto-Submitted: auto-replied\r\n"), std::string::npos);
  // No RET: neither the body nor the headers (the Subject names a patient).
  EXPECT_EQ(m.find("HbA1c"), std::string::npos);
  EXPECT_EQ(m.find("123-45-6789"), std::string::npos);
  EXPECT_EQ(m.find("Jane Doe"), std::string::npos);
  EXPECT_EQ(m.find("text/rfc822-headers"), std::string::npos);
  for (const auto& l : lines_of(m)) EXPECT_LE(l.size(), 998u);
}

TEST(Dsn, RetHdrsAndRetFullReturnTheHeadersButNeverTheBody) {
  for (const char* ret : {"HDRS", "FULL"}) {
    auto in = failure_input();
    in.params.ret = ret;
    auto m = make_dsn(in);
    EXPECT_NE(m.find("Content-Type: text/rfc822-headers\r\n\r\nReceived: from app"), std::string::npos) << ret;
    EXPECT_NE(m.find("Subject: Lab results for Jane Doe\r\n"), std::string::npos) << ret;
    EXPECT_EQ(m.find("HbA1c"), std::string::npos) << ret;
    EXPECT_EQ(m.find("123-45-6789"), std::string::npos) << ret;
  }
}

TEST(Dsn, NullSenderNeverGetsOne) {
  auto in = failure_input();
  in.sender = "";
  EXPECT_EQ(make_dsn(in), "");
  in = failure_input();
  in.recipients.clear();
  EXPECT_EQ(make_dsn(in), "");
}

TEST(Dsn, HostileRemoteReplyCannotAddFieldsOrLongLines) {
  auto in = failure_input();
  in.recipients[0].diagnostic = "550 no\r\nBcc: victim@example.net\r\n\r\n--x" + std::string(5000, 'A') + "\xff";
  in.params.envid = "abc\r\nX-Evil: 1";
  auto m = make_dsn(in);
  for (const auto& l : lines_of(m)) {
    EXPECT_LE(l.size(), 998u);
    EXPECT_NE(l.rfind("Bcc:", 0), 0u) << l;
    EXPECT_NE(l.rfind("X-Evil:", 0), 0u) << l;
  }
  EXPECT_NE(m.find("Diagnostic-Code: smtp; 550 no  Bcc: victim@example.net"), std::string::npos);
}

TEST(Dsn, OurOwnReasonIsNotLabelledAsAnSmtpReply) {
  auto in = failure_input();
  in.recipients[0].diagnostic = "no MX offers STARTTLS, and the policy requires TLS 1.2";
  in.recipients[0].remote_mta = "";
  auto m = make_dsn(in);
  EXPECT_NE(m.find("Diagnostic-Code: x-sealgate; no MX offers STARTTLS"), std::string::npos);
  EXPECT_EQ(m.find("Remote-MTA:"), std::string::npos);
}

TEST(Dsn, DelayReportSaysWhenTheGatewayGivesUp) {
  auto in = failure_input();
  in.kind = dsn_kind::delay;
  in.retry_until = 1795432000;
  in.recipients[0].status = "4.4.1";
  auto m = make_dsn(in);
  EXPECT_NE(m.find("Subject: Delayed Mail (still being retried)\r\n"), std::string::npos);
  EXPECT_NE(m.find("Action: delayed\r\n"), std::string::npos);
  EXPECT_NE(m.find("Will-Retry-Until: "), std::string::npos);
}

TEST(Dsn, NotifyFollowsRfc3461) {
  EXPECT_TRUE(notify_wants("", dsn_kind::failure));
  EXPECT_TRUE(notify_wants("", dsn_kind::delay));
  EXPECT_FALSE(notify_wants("NEVER", dsn_kind::failure));
  EXPECT_FALSE(notify_wants("NEVER", dsn_kind::delay));
  EXPECT_TRUE(notify_wants("SUCCESS,FAILURE", dsn_kind::failure));
  EXPECT_FALSE(notify_wants("SUCCESS,FAILURE", dsn_kind::delay));
  EXPECT_TRUE(notify_wants("delay", dsn_kind::delay));
  EXPECT_FALSE(notify_wants("SUCCESS", dsn_kind::failure));
}

TEST(Dsn, HeaderFieldIsFoundUnfoldedAndCaseInsensitively) {
  std::string h = "Received: x\r\nmessage-id:\r\n <abc@ours.example>\r\nSubject: a\r\n";
  EXPECT_EQ(header_field(h, "Message-ID"), "<abc@ours.example>");
  EXPECT_EQ(header_field(h, "subject"), "a");
  EXPECT_EQ(header_field(h, "To"), "");
  EXPECT_EQ(header_field("X-Message-ID: no\r\n", "Message-ID"), "") << "a field name, not a suffix";
}

TEST(Dsn, HeaderBlockStopsAtTheEmptyLine) {
  EXPECT_EQ(header_block("A: 1\r\nB: 2\r\n\r\nbody\r\n"), "A: 1\r\nB: 2\r\n");
  EXPECT_EQ(header_block("A: 1\r\n"), "A: 1\r\n");
}

TEST(Dsn, SmtputfMessageGetsAnInternationalisedReport) {
  // RFC 6533: addresses as they are, in a message/global-delivery-status part.
  auto in = failure_input();
  in.params.smtputf8 = true;
  in.params.ret = "HDRS";
  in.sender = "klinik@bücher.example";
  in.recipients[0].address = "δοκιμή@παράδειγμα.example";
  in.recipients[0].orcpt = "";
  ASSERT_TRUE(dsn_is_global(in));
  auto m = make_dsn(in);
  EXPECT_NE(m.find("To: <klinik@bücher.example>\r\n"), std::string::npos);
  EXPECT_NE(m.find("Content-Type: text/plain; charset=utf-8\r\n"), std::string::npos);
  EXPECT_NE(m.find("<δοκιμή@παράδειγμα.example>: 550 5.1.1"), std::string::npos);
  EXPECT_NE(m.find("Content-Type: message/global-delivery-status\r\n"), std::string::npos);
  EXPECT_NE(m.find("Final-Recipient: utf-8; δοκιμή@παράδειγμα.example\r\n"), std::string::npos);
  EXPECT_NE(m.find("Content-Type: message/global-headers\r\n"), std::string::npos);
  EXPECT_EQ(m.find("message/delivery-status"), std::string::npos);
  EXPECT_EQ(m.find("HbA1c"), std::string::npos);  // still no body
}

TEST(Dsn, OnlyWellFormedUtf8PassesIntoAGlobalReport) {
  auto in = failure_input();
  in.params.smtputf8 = true;
  // An overlong '/', a lone continuation byte, a surrogate and a cut-off sequence.
  in.recipients[0].address = std::string("a\xC0\xAF" "b\x80" "c\xED\xA0\x80" "d\xE2\x82@example.org");
  auto m = make_dsn(in);
  EXPECT_NE(m.find("Final-Recipient: utf-8; a??b?c???d??@example.org\r\n"), std::string::npos);
}

TEST(Dsn, AsciiReportNeverCarriesEightBitOctets) {
  auto in = failure_input();
  in.recipients[0].address = "δ@example.org";  // not SMTPUTF8: the classic report
  ASSERT_FALSE(dsn_is_global(in));
  auto m = make_dsn(in);
  EXPECT_NE(m.find("Final-Recipient: rfc822; ??@example.org\r\n"), std::string::npos);
  EXPECT_TRUE(std::all_of(m.begin(), m.end(), [](char c) { return static_cast<unsigned char>(c) < 128; }));
}
