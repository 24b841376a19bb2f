// Table tests for SMTP argument parsing: every refusal is checked by its code,
// enhanced status and reason, since clients and operators act on those.
#include <gtest/gtest.h>

#include "dns/domain_name.hpp"
#include "gateway/mail/smtp_syntax.hpp"

using namespace sealgate::gateway;
namespace dns = sealgate::dns;

TEST(SplitCommand, UppercasesVerbAndKeepsArguments) {
  auto c = split_command("mail FROM:<a@b.example> SIZE=10");
  EXPECT_EQ(c.verb, "MAIL");
  EXPECT_EQ(c.args, "FROM:<a@b.example> SIZE=10");
  EXPECT_EQ(split_command("QUIT").args, "");
}

TEST(MailFrom, AcceptsAddressesAndParameters) {
  auto r = parse_mail_from("FROM:<alice@example.org> SIZE=1000 BODY=8BITMIME RET=HDRS ENVID=abc+2Bdef");
  ASSERT_TRUE(r.value) << r.error.text;
  EXPECT_EQ(r.value->sender, "alice@example.org");
  EXPECT_EQ(*r.value->params.size, 1000u);
  EXPECT_EQ(r.value->params.body, "8BITMIME");
  EXPECT_EQ(r.value->params.ret, "HDRS");
  EXPECT_EQ(r.value->params.envid, "abc+2Bdef");
}

TEST(MailFrom, NullSenderAndSpaceAfterColon) {
  auto r = parse_mail_from("FROM:<>");
  ASSERT_TRUE(r.value);
  EXPECT_EQ(r.value->sender, "");
  auto r2 = parse_mail_from("FROM: <a@b.example>");
  ASSERT_TRUE(r2.value);
  EXPECT_EQ(r2.value->sender, "a@b.example");
}

TEST(MailFrom, Refusals) {
  struct row {
    const char* args;
    int code;
    const char* status;
  };
  const row rows[] = {
      {"TO:<a@b.example>", 501, "5.5.4"},
      {"FROM:a@b.example", 501, "5.5.4"},
      {"FROM:<a@b.example", 501, "5.5.4"},
      {"FROM:<a@b.example> SIZE=abc", 501, "5.5.4"},
      {"FROM:<a@b.example> BODY=BINARYMIME", 555, "5.5.4"},
      {"FROM:<a@b.example> FOO=1", 555, "5.5.4"},
      {"FROM:<a@b.example> SIZE=1 SIZE=2", 555, "5.5.4"},
      {"FROM:<a@b.example> RET=ALL", 501, "5.5.4"},
      {"FROM:<a@b.example> ENVID=a=b", 501, "5.5.4"},
      {"FROM:<a@-bad.example>", 501, "5.1.7"},
      {"FROM:<j\xC3\xB6rg@b.example>", 553, "5.6.7"},
      {"FROM:<@relay.example:a@b.example>", 501, "5.1.7"},
  };
  for (const auto& r : rows) {
    auto p = parse_mail_from(r.args);
    ASSERT_FALSE(p.value) << r.args;
    EXPECT_EQ(p.error.code, r.code) << r.args;
    EXPECT_EQ(p.error.status, r.status) << r.args;
  }
}

// Found by fuzz_smtp_reply: inet_pton stopped at the NUL and the literal,
// NULs and all, became the sender.
TEST(MailFrom, AddressLiteralWithEmbeddedNulIsRefused) {
  using namespace std::string_literals;
  auto p = parse_mail_from("FROM:<a@[192.0.2.1\0\0junk]>"s);
  ASSERT_FALSE(p.value);
  EXPECT_EQ(p.error.code, 501);
  EXPECT_FALSE(dns::is_address_literal("[192.0.2.1\0]"s));
  EXPECT_TRUE(dns::is_address_literal("[192.0.2.1]"));
  EXPECT_TRUE(parse_mail_from("FROM:<a@[192.0.2.1]>").value);
}

TEST(MailFrom, Utf8AllowedWithSmtputf8) {
  auto p = parse_mail_from("FROM:<j\xC3\xB6rg@b\xC3\xBC.example> SMTPUTF8");
  ASSERT_TRUE(p.value) << p.error.text;
  EXPECT_TRUE(p.value->params.smtputf8);
}

TEST(RcptTo, RelayTricksAreRefusedWithReasons) {
  struct row {
    const char* args;
    const char* reason;
  };
  const row rows[] = {
      {"TO:<user%other.example@example.com>", "Percent-hack"},
      {"TO:<host!user@example.com>", "Bang-path"},
      {"TO:<@relay.example:user@example.com>", "Source routes"},
      {"TO:<@a.example,@b.example:user@example.com>", "Source routes"},
      {"TO:<\"user@other.example\"@example.com>", "Quoted local parts holding @"},
      {"TO:<user@[192.0.2.1]>", "Address literals"},
  };
  for (const auto& r : rows) {
    auto p = parse_rcpt_to(r.args, false);
    ASSERT_FALSE(p.value) << r.args;
    EXPECT_EQ(p.error.code, 554) << r.args;
    EXPECT_EQ(p.error.status, "5.7.1") << r.args;
    EXPECT_NE(p.error.text.find(r.reason), std::string::npos) << r.args << ": " << p.error.text;
  }
}

TEST(RcptTo, DsnParameters) {
  auto p = parse_rcpt_to("TO:<bob@example.com> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob+40example.com", false);
  ASSERT_TRUE(p.value) << p.error.text;
  EXPECT_EQ(p.value->recipient, "bob@example.com");
  EXPECT_EQ(p.value->params.notify, "SUCCESS,FAILURE");
  EXPECT_EQ(p.value->params.orcpt, "rfc822;bob+40example.com");
  EXPECT_FALSE(parse_rcpt_to("TO:<bob@example.com> NOTIFY=NEVER,SUCCESS", false).value);
  EXPECT_FALSE(parse_rcpt_to("TO:<bob@example.com> NOTIFY=SUCCESS,", false).value);
  EXPECT_FALSE(parse_rcpt_to("TO:<bob@example.com> ORCPT=bob", false).value);
  EXPECT_TRUE(parse_rcpt_to("TO:<bob@example.com> NOTIFY=NEVER", false).value);
}

TEST(RcptTo, QuotedLocalPartWithoutAtIsFine) {
  auto p = parse_rcpt_to("TO:<\"john doe\"@example.com>", false);
  ASSERT_TRUE(p.value) << p.error.text;
  EXPECT_EQ(p.value->recipient, "\"john doe\"@example.com");
}

TEST(RcptTo, SyntaxErrors) {
  EXPECT_EQ(parse_rcpt_to("TO:<>", false).error.code, 501);
  EXPECT_EQ(parse_rcpt_to("TO:<postmaster>", false).error.status, "5.1.3");
  EXPECT_EQ(parse_rcpt_to("TO:<a..b@example.com>", false).error.status, "5.1.3");
  EXPECT_EQ(parse_rcpt_to("TO:<a@exa_mple.com>", false).error.status, "5.1.2");
  EXPECT_EQ(parse_rcpt_to("TO:<\xC3\xA9@example.com>", false).error.code, 553);
  EXPECT_TRUE(parse_rcpt_to("TO:<\xC3\xA9@example.com>", true).value);
}

TEST(Xtext, EncodeAndValidate) {
  EXPECT_EQ(xtext_encode("a+b=c d"), "a+2Bb+3Dc+20d");
  EXPECT_TRUE(is_xtext("a+2Bb"));
  EXPECT_FALSE(is_xtext("a+2"));
  EXPECT_FALSE(is_xtext("a+zz"));
  EXPECT_FALSE(is_xtext("a=b"));
  EXPECT_FALSE(is_xtext("a b"));
}

TEST(RcptTo, InvalidUtf8AndInvalidIdnaAreRefused) {
  // RCPT TO:<\xff\xfe@remote.test> used to get 250 under SMTPUTF8.
  auto bad = parse_rcpt_to("TO:<\xff\xfe@remote.test>", true);
  ASSERT_FALSE(bad.value);
  EXPECT_EQ(bad.error.code, 553);
  EXPECT_EQ(bad.error.text, "Address is not valid UTF-8");
  EXPECT_FALSE(parse_rcpt_to("TO:<a@b\xC3\x28.example>", true).value);    // a broken two-byte sequence
  EXPECT_FALSE(parse_rcpt_to("TO:<a@\xC0\xAF.example>", true).value);     // an overlong "/"
  EXPECT_FALSE(parse_rcpt_to("TO:<a@\xED\xA0\x80.example>", true).value);  // a UTF-16 surrogate
  // U+2603 SNOWMAN is DISALLOWED in IDNA 2008.
  auto snowman = parse_rcpt_to("TO:<a@\xE2\x98\x83.example>", true);
  ASSERT_FALSE(snowman.value);
  EXPECT_EQ(snowman.error.status, "5.1.2");
  EXPECT_TRUE(parse_rcpt_to("TO:<j\xC3\xB6rg@b\xC3\xBC" "cher.example>", true).value);
}

TEST(DomainName, ToAsciiDomainGivesALabels) {
  using sealgate::dns::to_ascii_domain;
  EXPECT_EQ(to_ascii_domain("b\xC3\xBC" "cher.example"), "xn--bcher-kva.example");
  EXPECT_EQ(to_ascii_domain("B\xC3\x9C" "CHER.Example"), "xn--bcher-kva.example");  // case folded
  EXPECT_EQ(to_ascii_domain("Mail.Example.ORG"), "mail.example.org");
  EXPECT_EQ(to_ascii_domain("\xE2\x98\x83.example"), std::nullopt);
  EXPECT_EQ(to_ascii_domain("\xff.example"), std::nullopt);
  EXPECT_TRUE(sealgate::dns::is_valid_utf8("plain ascii"));
  EXPECT_TRUE(sealgate::dns::is_valid_utf8("\xF0\x9F\x93\xA7"));   // U+1F4E7
  EXPECT_FALSE(sealgate::dns::is_valid_utf8("\xF4\x90\x80\x80"));  // past U+10FFFF
  EXPECT_FALSE(sealgate::dns::is_valid_utf8("\xE2\x98"));            // cut short
}
