// The compliance report (issue 17): its numbers, summed from a record
// written through `database` with rows whose answers are known, and its two
// spellings: the JSON member and the HTML page, which must escape what came
// from mail, load nothing from anywhere, and say so when a period is empty.
#include <gtest/gtest.h>

#include <filesystem>
#include <regex>
#include <string>
#include <vector>

#include "gateway/cli/compliance_report.hpp"
#include "gateway/record/compliance.hpp"
#include "gateway/record/database.hpp"

using namespace sealgate::gateway;
namespace fs = std::filesystem;

namespace {

constexpr int64_t day1 = 1796515200;  // 2026-12-06T00:00:00Z
constexpr int64_t hour = 3600, day = 24 * hour;
const std::string hostile = "<script>alert(1)</script>";

class ComplianceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sealgate-compliance-XXXXXX";
    dir_ = mkdtemp(tmpl);
    file_ = dir_ / "record.sqlite";
    write_record();
  }
  void TearDown() override { fs::remove_all(dir_); }

  static spooled_envelope accepted(const std::string& id, int64_t at, std::vector<std::string> rcpts) {
    spooled_envelope m;
    m.queue_id = id;
    m.received = at;
    m.listener = "smarthost";
    m.client_address = "127.0.0.1";
    m.helo = "app.ours.test";
    m.sender = "app@ours.test";
    for (auto& r : rcpts) m.recipients.push_back({r, {}});
    return m;
  }

  static attempt_row attempt(const std::string& id, size_t index, const std::string& address, int64_t at,
                             const std::string& outcome, const std::string& method, const std::string& tls,
                             const std::string& certificate) {
    attempt_row r;
    r.queue_id = id;
    r.index = index;
    r.address = address;
    r.at = at;
    r.outcome = outcome;
    r.method = method;
    r.tls_protocol = tls;
    r.certificate = certificate;
    r.reply = outcome == "delivered" ? "250 2.0.0 Ok" : "451 4.3.0 later";
    return r;
  }

  // Day 1: five recipients, day 2 none, day 3 four; one message before the
  // period and one after it.
  void write_record() {
    database db(file_);
    db.record_accepted({accepted("000000000000000A", day1 - hour, {"old@tls.example"}),
                        accepted("0000000000000001", day1 + 10 * hour,
                                 {"a@tls.example", "b@tls.example", "c@clear.example"}),
                        accepted("0000000000000002", day1 + 12 * hour, {"d@pgp.example", "e@portal.example"}),
                        accepted("0000000000000003", day1 + 2 * day + 9 * hour,
                                 {"f@flaky.example", "g@bounce.example", "h@" + hostile, "i@expired.example"}),
                        accepted("000000000000000B", day1 + 3 * day, {"new@tls.example"})});
    auto t = day1 + 2 * day + 10 * hour;
    auto expired = attempt("0000000000000003", 3, "i@expired.example", t, "expired", "", "", "");
    expired.attempted = false;
    db.record_attempts({
        attempt("000000000000000A", 0, "old@tls.example", day1 - hour, "delivered", "plain", "", "none"),
        attempt("0000000000000001", 0, "a@tls.example", day1 + 10 * hour, "delivered", "tls", "TLSv1.3", "verified"),
        attempt("0000000000000001", 1, "b@tls.example", day1 + 10 * hour, "delivered", "tls", "TLSv1.2", "dane"),
        attempt("0000000000000001", 2, "c@clear.example", day1 + 10 * hour, "delivered", "plain", "", "none"),
        attempt("0000000000000002", 0, "d@pgp.example", day1 + 12 * hour, "delivered", "pgp", "", "none"),
        attempt("0000000000000002", 1, "e@portal.example", day1 + 12 * hour, "method-failed", "portal", "", ""),
        attempt("0000000000000002", 1, "e@portal.example", day1 + 13 * hour, "delivered", "portal", "TLSv1.3",
                "unverified"),
        attempt("0000000000000003", 0, "f@flaky.example", t, "deferred", "tls", "", ""),
        attempt("0000000000000003", 0, "f@flaky.example", t + 60, "deferred", "tls", "", ""),
        attempt("0000000000000003", 0, "f@flaky.example", t + 120, "delivered", "tls", "TLSv1.3", "mta-sts"),
        attempt("0000000000000003", 1, "g@bounce.example", t, "bounced", "tls", "TLSv1.3", "verified"),
        attempt("0000000000000003", 2, "h@" + hostile, t, "deferred", "tls", "", ""),
        expired,
        attempt("000000000000000B", 0, "new@tls.example", day1 + 3 * day, "delivered", "tls", "TLSv1.3", "dane"),
    });
  }

  compliance_summary period() { return summarize_compliance(file_, day1, day1 + 3 * day); }

  fs::path dir_, file_;
};

std::vector<std::pair<std::string, int64_t>> pairs(const std::vector<keyed_count>& counts) {
  std::vector<std::pair<std::string, int64_t>> out;
  for (const auto& c : counts) out.emplace_back(c.key, c.count);
  return out;
}

using counts = std::vector<std::pair<std::string, int64_t>>;

size_t occurrences(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

TEST_F(ComplianceTest, TotalsCountTheRecipientsOfTheMessagesReceivedInThePeriod) {
  auto s = period();
  EXPECT_EQ(s.messages, 3) << "not the one before the period, nor the one at its end";
  EXPECT_EQ(s.recipients, 9);
  EXPECT_EQ(s.delivered, 6);
  EXPECT_EQ(s.secured, 5) << "TLS, pgp without TLS, and the portal";
  EXPECT_EQ(s.in_clear, 1);
  EXPECT_EQ(s.portal, 1);
  EXPECT_EQ(s.waiting, 1);
  EXPECT_EQ(s.deferrals, 4) << "three deferred attempts and one whose method failed";
  EXPECT_EQ(s.bounced, 2) << "bounced and expired";
  EXPECT_EQ(s.expired, 1);
  EXPECT_EQ(s.deleted, 0);
  EXPECT_FALSE(s.portal_deposits) << "the caller fills them from the portal's store";
}

TEST_F(ComplianceTest, BreakdownsInTheOrderTheReportShowsThem) {
  auto s = period();
  EXPECT_EQ(pairs(s.methods), (counts{{"pgp", 1}, {"portal", 1}, {"tls", 5}, {"plain", 1}, {"-", 1}}));
  EXPECT_EQ(pairs(s.tls_versions), (counts{{"TLSv1.3", 3}, {"TLSv1.2", 1}, {"none", 2}}));
  EXPECT_EQ(pairs(s.certificates),
            (counts{{"dane", 1}, {"mta-sts", 1}, {"verified", 1}, {"unverified", 1}, {"none", 2}}))
      << "of delivered recipients only: the bounced one's verified certificate is not counted";
  EXPECT_EQ(pairs(s.portal_domains), (counts{{"portal.example", 1}}));
  EXPECT_EQ(pairs(s.clear_domains), (counts{{"clear.example", 1}})) << "pgp.example went without TLS, encrypted";
  std::vector<std::tuple<std::string, int64_t, int64_t>> trouble;
  for (const auto& t : s.trouble_domains) trouble.emplace_back(t.domain, t.deferrals, t.bounced);
  EXPECT_EQ(trouble, (std::vector<std::tuple<std::string, int64_t, int64_t>>{{"bounce.example", 0, 1},
                                                                               {"expired.example", 0, 1},
                                                                               {"flaky.example", 2, 0},
                                                                               {hostile, 1, 0},
                                                                               {"portal.example", 1, 0}}));
}

TEST_F(ComplianceTest, EveryDayOfThePeriodIsThereAndTheDaysAddUpToTheTotals) {
  auto s = period();
  ASSERT_EQ(s.days.size(), 3u);
  EXPECT_EQ(s.days[0].day, "2026-12-06");
  EXPECT_EQ(s.days[1].day, "2026-12-07");
  EXPECT_EQ(s.days[2].day, "2026-12-08");
  EXPECT_EQ(s.days[0].recipients, 5);
  EXPECT_EQ(s.days[0].delivered, 5);
  EXPECT_EQ(s.days[0].methods, (std::vector<int64_t>{1, 1, 2, 1, 0}));
  EXPECT_EQ(s.days[0].tls_versions, (std::vector<int64_t>{2, 1, 2}));
  EXPECT_EQ(s.days[0].deferrals, 1);
  EXPECT_EQ(s.days[0].bounced, 0);
  EXPECT_EQ(s.days[1].recipients, 0);
  EXPECT_EQ(s.days[1].methods, (std::vector<int64_t>(5, 0)));
  EXPECT_EQ(s.days[2].recipients, 4);
  EXPECT_EQ(s.days[2].delivered, 1);
  EXPECT_EQ(s.days[2].methods, (std::vector<int64_t>{0, 0, 3, 0, 1}));
  EXPECT_EQ(s.days[2].tls_versions, (std::vector<int64_t>{1, 0, 0}));
  EXPECT_EQ(s.days[2].deferrals, 3);
  EXPECT_EQ(s.days[2].bounced, 2);
}

TEST_F(ComplianceTest, WithoutAStartThePeriodBeginsWithTheFirstMessage) {
  auto s = summarize_compliance(file_, 0, day1 + 4 * day);
  EXPECT_EQ(s.messages, 5);
  ASSERT_EQ(s.days.size(), 5u);
  EXPECT_EQ(s.days.front().day, "2026-12-05");
  EXPECT_EQ(s.days.back().day, "2026-12-09");
}

TEST_F(ComplianceTest, TheJsonHoldsEveryNumber) {
  auto s = period();
  s.portal_deposits = sealgate::portal::deposit_counts{8, 6, 3, 1};
  auto json = compliance_json(s, {"Example Health", "1.2.3", day1 + 3 * day});
  EXPECT_NE(json.find("\"organisation\": \"Example Health\", \"version\": \"1.2.3\", \"generated_at\": "
                      "\"2026-12-09T00:00:00Z\", \"since\": \"2026-12-06T00:00:00Z\", \"until\": "
                      "\"2026-12-09T00:00:00Z\""),
            std::string::npos)
      << json;
  EXPECT_NE(json.find("\"totals\": {\"messages\": 3, \"recipients\": 9, \"delivered\": 6, \"secured\": 5, "
                      "\"in_clear\": 1, \"portal\": 1, \"waiting\": 1, \"deferrals\": 4, \"bounced\": 2, "
                      "\"expired\": 1, \"deleted\": 0, \"secured_percent\": 83.3}"),
            std::string::npos)
      << json;
  EXPECT_NE(json.find("\"methods\": {\"pgp\": 1, \"portal\": 1, \"tls\": 5, \"plain\": 1, \"-\": 1}"),
            std::string::npos);
  EXPECT_NE(json.find("{\"day\": \"2026-12-07\", \"recipients\": 0, \"delivered\": 0, \"methods\": {\"pgp\": 0, "
                      "\"portal\": 0, \"tls\": 0, \"plain\": 0, \"-\": 0}, \"tls_versions\": {\"TLSv1.3\": 0, "
                      "\"TLSv1.2\": 0, \"none\": 0}, \"deferrals\": 0, \"bounced\": 0}"),
            std::string::npos)
      << json;
  EXPECT_NE(json.find("{\"domain\": \"<script>alert(1)</script>\", \"deferrals\": 1, \"bounced\": 0}"),
            std::string::npos);
  EXPECT_NE(json.find("\"portal\": {\"deposits\": 8, \"opened\": 6, \"downloads\": 3, \"replies\": 1, "
                      "\"opened_percent\": 75.0}"),
            std::string::npos);
  s.portal_deposits.reset();
  EXPECT_NE(compliance_json(s, {}).find("\"portal\": null}"), std::string::npos);
}

TEST_F(ComplianceTest, ThePageEscapesWhatCameFromMailAndLoadsNothing) {
  auto s = period();
  s.portal_deposits = sealgate::portal::deposit_counts{8, 6, 3, 1};
  auto html = compliance_html(s, {"Ops & <Co>", "1.2.3", day1 + 3 * day});
  EXPECT_EQ(html.find(hostile), std::string::npos);
  EXPECT_NE(html.find("&lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos);
  EXPECT_NE(html.find("Ops &amp; &lt;Co&gt;"), std::string::npos);
  EXPECT_EQ(html.find("<Co>"), std::string::npos);
  // Nothing from anywhere: no URL, no script, no external resource of any kind.
  for (const char* banned : {"http:", "https:", "//", "src=", "href=", "url(", "@import", "<script", "<link",
                             "<img", "<iframe", "<object", "<embed", "xlink"})
    EXPECT_EQ(html.find(banned), std::string::npos) << banned;
  // Well-formed enough: one document, and every element that holds others closed.
  EXPECT_EQ(html.rfind("<!DOCTYPE html>\n<html lang=\"en\">", 0), 0u);
  EXPECT_TRUE(html.ends_with("</html>\n"));
  for (const char* element : {"section", "table", "thead", "tbody", "tfoot", "tr", "td", "th", "svg", "title",
                              "ul", "li", "dl", "dt", "dd", "p", "span", "div", "h1", "h2", "caption", "text"})
    EXPECT_EQ(occurrences(html, "<" + std::string(element) + ">") + occurrences(html, "<" + std::string(element) + " "),
              occurrences(html, "</" + std::string(element) + ">"))
        << element;
  EXPECT_NE(html.find("@media print"), std::string::npos);
  // The numbers carry where the JSON holds them.
  EXPECT_NE(html.find("<span class=\"value\" data-json=\"/compliance/totals/recipients\">9</span>"), std::string::npos);
  EXPECT_NE(html.find("<td data-json=\"/compliance/days/2/methods/tls\">3</td>"), std::string::npos);
  EXPECT_NE(html.find("<td data-json=\"/compliance/certificates/none\">2</td>"), std::string::npos);
  EXPECT_NE(html.find("<td data-json=\"/compliance/tls_versions/TLSv1.3\">3</td>"), std::string::npos);
  EXPECT_NE(html.find("data-json=\"/compliance/portal/opened_percent\">75.0</span>"), std::string::npos);
  EXPECT_NE(html.find("<td data-json=\"/compliance/clear_domains/0/recipients\">1</td>"), std::string::npos);
  EXPECT_EQ(html.find("No mail in this period"), std::string::npos);
  // Every data-json names a number the JSON has (checked in full against
  // the JSON by tests/integration/compliance_report_test.py).
  std::regex pointer("data-json=\"([^\"]*)\"");
  size_t tagged = 0;
  for (std::sregex_iterator it(html.begin(), html.end(), pointer), end; it != end; ++it, ++tagged)
    EXPECT_TRUE((*it)[1].str().starts_with("/compliance/")) << (*it)[1];
  EXPECT_GT(tagged, 60u);
}

TEST_F(ComplianceTest, AnEmptyPeriodSaysSo) {
  auto s = summarize_compliance(file_, day1 + 10 * day, day1 + 40 * day);
  EXPECT_EQ(s.recipients, 0);
  EXPECT_TRUE(s.days.empty());
  EXPECT_EQ(pairs(s.certificates), (counts{{"dane", 0}, {"mta-sts", 0}, {"verified", 0}, {"unverified", 0}, {"none", 0}}));
  auto html = compliance_html(s, {"gw.test", "1.2.3", day1 + 40 * day});
  EXPECT_NE(html.find("No mail in this period."), std::string::npos);
  EXPECT_EQ(html.find("<svg class=\"chart\""), std::string::npos);
  EXPECT_NE(html.find("<span class=\"value\"><span data-json=\"/compliance/totals/secured_percent\">0.0</span>"
                      "<small>%</small></span>"),
            std::string::npos);
  EXPECT_NE(html.find("The portal is not configured"), std::string::npos);
  EXPECT_NE(compliance_json(s, {}).find("\"days\": []"), std::string::npos);
}

}  // namespace
