// Replays each fuzz target's seed corpus (tests/fuzz/corpus/<target>/, written
// by tests/fuzz/make_corpus.py) through that target's feed, so that the
// ordinary gcc build (and its ASan/UBSan pass) exercises what the clang
// libFuzzer targets start from, with their invariant checks; checks each
// corpus reaches both the accepting and the refusing paths of its area, and
// that the hostile DNS seeds are refused.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "dns/lookup.hpp"
#include "dns/message.hpp"
#include "tests/fuzz/fuzz_parsers.hpp"

namespace fs = std::filesystem;
using sealgate::fuzz::parse_counts;

namespace {
const fs::path corpus = fs::path(SEALGATE_SOURCE_DIR) / "tests/fuzz/corpus";

std::vector<uint8_t> read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

using feed_fn = void (*)(const uint8_t*, size_t, parse_counts&);

// Every file of corpus/<target> through feed; returns how many there were.
size_t replay(const char* target, feed_fn feed, parse_counts& counts) {
  size_t files = 0;
  for (const auto& e : fs::directory_iterator(corpus / target)) {
    auto data = read(e.path());
    SCOPED_TRACE(e.path().string());
    feed(data.data(), data.size(), counts);
    ++files;
  }
  return files;
}
}  // namespace

TEST(FuzzCorpus, Dns) {
  parse_counts c;
  EXPECT_GE(replay("fuzz_dns", sealgate::fuzz::feed_dns, c), 30u);
  EXPECT_GE(c.dns_ok, 10u);
  EXPECT_GE(c.dns_refused, 10u);
}

TEST(FuzzCorpus, MtaSts) {
  parse_counts c;
  EXPECT_GE(replay("fuzz_mta_sts", sealgate::fuzz::feed_mta_sts, c), 6u);
  EXPECT_GE(c.sts_policy_ok, 2u);
  EXPECT_GE(c.sts_txt_ok, 1u);
}

TEST(FuzzCorpus, SmtpReplyAndDsn) {
  parse_counts c;
  EXPECT_GE(replay("fuzz_smtp_reply", sealgate::fuzz::feed_smtp_reply, c), 7u);
  EXPECT_GE(c.smtp_replies, 3u);
  EXPECT_GE(c.smtp_errors, 2u);
  EXPECT_GE(c.dsn_params_ok, 4u);
  EXPECT_GE(c.dsn_params_refused, 5u);
  EXPECT_GE(c.dsn_built, 2u);
}

TEST(FuzzCorpus, SmtpInbound) {
  parse_counts c;
  EXPECT_GE(replay("fuzz_smtp_inbound", sealgate::fuzz::feed_smtp_inbound, c), 10u);
  EXPECT_GE(c.inbound_accepted, 3u);
  EXPECT_GE(c.inbound_auth, 3u);
  EXPECT_GE(c.inbound_refused, 10u);
}

TEST(FuzzCorpus, DataReader) {
  parse_counts c;
  EXPECT_GE(replay("fuzz_data_reader", sealgate::fuzz::feed_data_reader, c), 10u);
  EXPECT_GE(c.data_complete, 3u);
  EXPECT_GE(c.data_bare_newline, 3u);
  EXPECT_GE(c.data_too_big, 1u);
  EXPECT_GE(c.data_line_too_long, 1u);
}

TEST(FuzzCorpus, MimeClassify) {
  parse_counts c;
  EXPECT_GE(replay("fuzz_mime_classify", sealgate::fuzz::feed_mime_classify, c), 5u);
  EXPECT_GE(c.mime_parts_named, 2u);  // scan.dcm, and scan1.pdf inside a message/rfc822
  EXPECT_GE(c.mime_classes, 3u);
}

TEST(FuzzCorpus, Config) {
  parse_counts c;
  EXPECT_GE(replay("fuzz_config", sealgate::fuzz::feed_config, c), 8u);
  EXPECT_GE(c.config_ok, 3u);
  EXPECT_GE(c.config_refused, 3u);
}

TEST(FuzzCorpus, Policy) {
  parse_counts c;
  EXPECT_GE(replay("fuzz_policy", sealgate::fuzz::feed_policy, c), 8u);
  EXPECT_GE(c.policy_ok, 3u);
  EXPECT_GE(c.policy_refused, 3u);
}

TEST(FuzzCorpus, PortalWeb) {
  parse_counts c;
  EXPECT_GE(replay("fuzz_portal_web", sealgate::fuzz::feed_portal_web, c), 30u);
  EXPECT_GE(c.portal_forms_ok, 4u);       // form-good, form-utf8, multipart-upload, multipart-hostile-names
  EXPECT_GE(c.portal_forms_refused, 8u);  // the bad forms and multiparts, the limits passed
  EXPECT_GE(c.portal_cookies, 1u);        // cookie-header (cookie-tossed and cookie-absent give none)
  EXPECT_GE(c.portal_views, 5u);
  EXPECT_GE(c.portal_views_refused, 1u);  // message-header-block-too-long
  EXPECT_GE(c.portal_attachments, 10u);   // message-attachments' five, fewer with small limits, the replies'
  EXPECT_GE(c.portal_html, 3u);
  EXPECT_GE(c.portal_replies, 5u);        // reply-long-address among them: once lines over 998 octets
}

TEST(FuzzCorpus, Intake) {
  parse_counts c;
  EXPECT_GE(replay("fuzz_intake", sealgate::fuzz::feed_intake, c), 10u);
  EXPECT_GE(c.intake_accepted, 3u);
  EXPECT_GE(c.intake_refused, 3u);  // the other tenant, two tenants, 51 Received
  EXPECT_GE(c.intake_signed, 2u);   // signed-by-us, no-body (From in example.org)
}

TEST(FuzzCorpus, ProxyProtocol) {
  parse_counts c;
  EXPECT_GE(replay("fuzz_proxy_protocol", sealgate::fuzz::feed_proxy_protocol, c), 10u);
  EXPECT_GE(c.proxy_proxied, 4u);  // tcp4, tcp6, with TLVs, with a good CRC32C, header then client bytes
  EXPECT_GE(c.proxy_local, 2u);    // LOCAL, UNSPEC
  EXPECT_GE(c.proxy_refused, 6u);  // v1, bad CRC32C, UNIX, UDP, length past the cap, truncated
}

TEST(FuzzCorpus, HostileDnsSeedsAreRefused) {
  // Each must end as a refusal (parse error or temporary failure), never as records.
  for (const char* name : {"dns-pointer-to-itself", "dns-forward-pointer", "dns-pointer-loop",
                           "dns-question-points-into-header", "dns-rdlength-past-end", "dns-rdlength-short-a",
                           "dns-rdlength-long-a", "dns-label-past-end", "dns-answer-count-too-high",
                           "dns-name-over-255-via-pointers", "dns-label-type-01", "dns-label-type-10",
                           "dns-cname-loop", "dns-mx-truncated-20", "dns-tlsa-rdlength-2"}) {
    auto data = read(corpus / "fuzz_dns" / name);
    ASSERT_FALSE(data.empty()) << name;
    auto r = sealgate::dns::parse_response(data);
    if (!r.ok) {
      EXPECT_FALSE(r.error.empty()) << name;
      continue;
    }
    std::string q = r.question_name;
    auto a = sealgate::dns::decode_a(data, q, false);
    auto tlsa = sealgate::dns::decode_tlsa(data, q, false);
    EXPECT_TRUE(a.status == sealgate::dns::outcome::temporary_failure ||
                tlsa.status == sealgate::dns::outcome::temporary_failure)
        << name << ": " << a.error << " / " << tlsa.error;
    EXPECT_TRUE(a.records.empty() && tlsa.records.empty()) << name;
  }
}
