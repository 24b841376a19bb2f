// RFC 8461 parsing and matching: the _mta-sts TXT record, the policy file,
// and the mx pattern rule, with the exact reason for every refusal.
#include <gtest/gtest.h>

#include "gateway/facts/mta_sts.hpp"

using namespace sealgate::gateway;

namespace {
std::string txt_error(std::string_view record) {
  std::string why;
  EXPECT_FALSE(parse_sts_txt_id(record, &why)) << record;
  return why;
}
std::string policy_error(std::string_view text) {
  std::string why;
  EXPECT_FALSE(parse_sts_policy(text, &why)) << text;
  return why;
}
}  // namespace

TEST(MtaStsTxt, ValidRecords) {
  EXPECT_EQ(parse_sts_txt_id("v=STSv1; id=20160831085700Z;"), "20160831085700Z");
  EXPECT_EQ(parse_sts_txt_id("v=STSv1;id=abc"), "abc");
  EXPECT_EQ(parse_sts_txt_id("v=STSv1; ext=1; id=X9 ;"), "X9");  // extension fields are ignored
  EXPECT_EQ(parse_sts_txt_id("v=STSv1; id=" + std::string(32, 'a')), std::string(32, 'a'));
}

TEST(MtaStsTxt, InvalidRecords) {
  EXPECT_EQ(txt_error("id=1; v=STSv1"), "does not begin with v=STSv1");
  EXPECT_EQ(txt_error("v=STSv2; id=1"), "does not begin with v=STSv1");
  EXPECT_EQ(txt_error("v=STSv1"), "no id field");
  EXPECT_EQ(txt_error("v=STSv1; id="), "id must be 1 to 32 letters and digits");
  EXPECT_EQ(txt_error("v=STSv1; id=" + std::string(33, 'a')), "id must be 1 to 32 letters and digits");
  EXPECT_EQ(txt_error("v=STSv1; id=a-b"), "id must be 1 to 32 letters and digits");
  EXPECT_EQ(txt_error("v=STSv1; id=1; id=2"), "id given twice");
  EXPECT_EQ(txt_error("v=STSv1; garbage"), "field without '='");
}

TEST(MtaStsTxt, ExactlyOneStsRecordAmongTheTxtRecords) {
  EXPECT_EQ(select_sts_id({"v=spf1 -all", "v=STSv1; id=1"}), "1");
  std::string why;
  EXPECT_FALSE(select_sts_id({"v=STSv1; id=1", "v=STSv1; id=2"}, &why));
  EXPECT_EQ(why, "2 STS TXT records (RFC 8461 3.1 requires exactly one)");
  EXPECT_FALSE(select_sts_id({"v=spf1 -all"}, &why));
  EXPECT_EQ(why, "no TXT record beginning with v=STSv1");
}

TEST(MtaStsPolicy, TheRfcExample) {
  auto p = parse_sts_policy("version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\n"
                            "mx: backupmx.example.com\r\nmax_age: 604800\r\n");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->mode, sts_mode::enforce);
  EXPECT_EQ(p->max_age, 604800u);
  EXPECT_EQ(p->mx, (std::vector<std::string>{"mail.example.com", "*.example.net", "backupmx.example.com"}));
}

TEST(MtaStsPolicy, LfLinesUnknownKeysModeNone) {
  auto p = parse_sts_policy("version: STSv1\nmode: none\nmax_age: 0\nfuture_key: whatever\n");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->mode, sts_mode::none);
  EXPECT_TRUE(p->mx.empty());  // mode none needs no mx
  auto t = parse_sts_policy("mode:testing\nmax_age:  31557600\nversion: STSv1\nmx: MX.Example.COM\n");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->mode, sts_mode::testing);
  EXPECT_EQ(t->mx, std::vector<std::string>{"mx.example.com"});
}

TEST(MtaStsPolicy, Refusals) {
  EXPECT_EQ(policy_error("mode: enforce\nmx: a.example\nmax_age: 1\n"), "no version");
  EXPECT_EQ(policy_error("version: STSv2\n"), "line 1: version must be STSv1");
  EXPECT_EQ(policy_error("version: STSv1\nmx: a.example\nmax_age: 1\n"), "no mode");
  EXPECT_EQ(policy_error("version: STSv1\nmode: enforce\nmx: a.example\n"), "no max_age");
  EXPECT_EQ(policy_error("version: STSv1\nmode: strict\n"), "line 2: mode must be enforce, testing or none");
  EXPECT_EQ(policy_error("version: STSv1\nmode: enforce\nmode: none\n"), "line 3: mode given twice");
  EXPECT_EQ(policy_error("version: STSv1\nmode: enforce\nmax_age: 31557601\n"), "line 3: max_age over 31557600");
  EXPECT_EQ(policy_error("version: STSv1\nmode: enforce\nmax_age: -1\n"), "line 3: max_age must be a number of seconds");
  EXPECT_EQ(policy_error("version: STSv1\nmode: enforce\nmax_age: 12345678901\n"),
            "line 3: max_age must be a number of seconds");
  EXPECT_EQ(policy_error("version: STSv1\nmode: enforce\nmax_age: 86400\n"), "no mx pattern");
  EXPECT_EQ(policy_error("version: STSv1\nmode: enforce\nmx: *.*.example\nmax_age: 1\n"), "line 3: bad mx pattern");
  EXPECT_EQ(policy_error("version: STSv1\nmode: enforce\nmx: a..example\nmax_age: 1\n"), "line 3: bad mx pattern");
  // RFC 8461 3.2: a pattern is a Domain (RFC 5321), which has no trailing dot.
  EXPECT_EQ(policy_error("version: STSv1\nmode: enforce\nmx: mx.example.\nmax_age: 1\n"), "line 3: bad mx pattern");
  EXPECT_EQ(policy_error("version: STSv1\nthis line has no colon\n"), "line 2: no ':'");
  EXPECT_EQ(policy_error(""), "no version");
}

TEST(MtaStsMx, WildcardMatchesExactlyOneLabel) {
  // RFC 8461 4.1.
  EXPECT_TRUE(sts_mx_matches("mail.example.com", "mail.example.com"));
  EXPECT_TRUE(sts_mx_matches("mail.example.com", "MAIL.example.com."));
  EXPECT_FALSE(sts_mx_matches("mail.example.com", "mail2.example.com"));
  EXPECT_TRUE(sts_mx_matches("*.example.com", "mx1.example.com"));
  EXPECT_FALSE(sts_mx_matches("*.example.com", "example.com"));
  EXPECT_FALSE(sts_mx_matches("*.example.com", "a.mx1.example.com"));
  EXPECT_FALSE(sts_mx_matches("*.example.com", ".example.com"));
  EXPECT_FALSE(sts_mx_matches("*.example.com", "mx1.example.com.evil"));
  EXPECT_FALSE(sts_mx_matches("", ""));
  sts_policy p{sts_mode::enforce, 1, {"mx.a.example", "*.b.example"}};
  EXPECT_TRUE(sts_mx_allowed(p, "x.b.example"));
  EXPECT_FALSE(sts_mx_allowed(p, "mx.c.example"));
}

TEST(MtaStsCache, PlanTable) {
  using step = sts_policy_cache::step;
  sts_policy_cache::entry e{"1", {sts_mode::enforce, 60, {"mx.example"}}, {}};
  std::optional<sts_policy_cache::entry> cached = e, none;
  // RFC 8461 5.1: same id, cached; a changed id, fetch; no usable TXT, the cached policy stays.
  EXPECT_EQ(sts_policy_cache::plan(cached, false, std::string("1")), step::use_cached);
  EXPECT_EQ(sts_policy_cache::plan(cached, false, std::string("2")), step::fetch);
  EXPECT_EQ(sts_policy_cache::plan(none, false, std::string("1")), step::fetch);
  EXPECT_EQ(sts_policy_cache::plan(cached, false, std::nullopt), step::use_cached);
  EXPECT_EQ(sts_policy_cache::plan(cached, true, std::nullopt), step::use_cached);
  EXPECT_EQ(sts_policy_cache::plan(none, false, std::nullopt), step::none);
  EXPECT_EQ(sts_policy_cache::plan(none, true, std::nullopt), step::unknown) << "a failed lookup is never 'no policy'";
}

TEST(MtaStsCache, KeptForMaxAge) {
  auto now = sts_policy_cache::clock::now();
  sts_policy_cache c([&] { return now; });
  c.put("example.com", "1", {sts_mode::enforce, 600, {"mx.example.com"}});
  c.put("zero.example", "1", {sts_mode::testing, 0, {"mx.example.com"}});
  ASSERT_TRUE(c.get("example.com"));
  EXPECT_EQ(c.get("example.com")->id, "1");
  EXPECT_FALSE(c.get("zero.example")) << "max_age 0: not cached";
  EXPECT_FALSE(c.get("other.example"));
  now += std::chrono::seconds(599);
  EXPECT_TRUE(c.get("example.com"));
  now += std::chrono::seconds(1);
  EXPECT_FALSE(c.get("example.com")) << "expired after max_age";
  c.put("example.com", "2", {sts_mode::none, 60, {}});
  EXPECT_EQ(c.get("example.com")->id, "2") << "a new id replaces the old policy";
}
