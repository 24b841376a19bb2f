// Replays the fuzz target's seed corpus (tests/fuzz/corpus, written by
// tests/fuzz/make_corpus.py) through every parser of remote input, so that
// the ordinary gcc build (and its ASan/UBSan pass) exercises what the clang
// libFuzzer target starts from; and checks the hostile seeds are refused.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "dns/lookup.hpp"
#include "dns/message.hpp"
#include "tests/fuzz/fuzz_parsers.hpp"

namespace fs = std::filesystem;

namespace {
const fs::path corpus = fs::path(SEALGATE_SOURCE_DIR) / "tests/fuzz/corpus";

std::vector<uint8_t> read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
}  // namespace

TEST(FuzzCorpus, EverySeedThroughEveryParser) {
  sealgate::fuzz::parse_counts counts;
  size_t files = 0;
  for (const auto& e : fs::directory_iterator(corpus)) {
    auto data = read(e.path());
    sealgate::fuzz::parse_everything(data.data(), data.size(), counts);
    ++files;
  }
  EXPECT_GE(files, 40u);
  // The corpus must reach both the accepting and the refusing paths.
  EXPECT_GE(counts.dns_ok, 10u);
  EXPECT_GE(counts.dns_refused, 10u);
  EXPECT_GE(counts.sts_policy_ok, 2u);
  EXPECT_GE(counts.sts_txt_ok, 1u);
  EXPECT_GE(counts.smtp_replies, 3u);
  EXPECT_GE(counts.smtp_errors, 2u);
}

TEST(FuzzCorpus, HostileDnsSeedsAreRefused) {
  // Each must end as a refusal (parse error or temporary failure), never as records.
  for (const char* name : {"dns-pointer-to-itself", "dns-forward-pointer", "dns-pointer-loop",
                           "dns-question-points-into-header", "dns-rdlength-past-end", "dns-rdlength-short-a",
                           "dns-rdlength-long-a", "dns-label-past-end", "dns-answer-count-too-high",
                           "dns-name-over-255-via-pointers", "dns-label-type-01", "dns-label-type-10",
                           "dns-cname-loop", "dns-mx-truncated-20", "dns-tlsa-rdlength-2"}) {
    auto data = read(corpus / name);
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
