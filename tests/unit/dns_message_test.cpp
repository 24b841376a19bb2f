// The DNS parser over hand-built messages, including truncated and hostile
// ones: every malformed input must end as a temporary failure, never a crash
// or a read past the buffer (run with -DSEALGATE_SANITIZE=ON to prove the latter).
#include <gtest/gtest.h>

#include <random>

#include "dns/lookup.hpp"
#include "dns/message.hpp"
#include "dns_test_util.hpp"

using namespace sealgate::dns;
using sealgate::dns::testing::wire;
namespace t = sealgate::dns::testing;

TEST(DnsQuery, HeaderQuestionAndEdnsWithDo) {
  auto q = build_query("Example.Test.", rr_type::tlsa, 0xBEEF);
  wire expect;
  expect.u16(0xBEEF).u16(0x0120).u16(1).u16(0).u16(0).u16(1).name("Example.Test").u16(52).u16(1);
  expect.u8(0).u16(41).u16(1232).u16(0).u16(0x8000).u16(0);
  EXPECT_EQ(q, expect.b);
}

TEST(DnsQuery, InvalidNamesGiveNoQuery) {
  EXPECT_TRUE(build_query("a..b", rr_type::a, 1).empty());
  EXPECT_TRUE(build_query(".", rr_type::a, 1).size() > 0);  // the root itself is a name
  EXPECT_TRUE(build_query(std::string(64, 'a') + ".test", rr_type::a, 1).empty());
  EXPECT_FALSE(build_query(std::string(63, 'a') + ".test", rr_type::a, 1).empty());
  std::string long_name;
  for (int i = 0; i < 50; ++i) long_name += "abcd.";
  long_name += "test";  // 50*5 + 5 + 1 = 256 octets on the wire
  EXPECT_TRUE(build_query(long_name, rr_type::a, 1).empty());
  EXPECT_TRUE(build_query("a\\.b", rr_type::a, 1).empty());
}

TEST(DnsParse, MxWithCompression) {
  auto m = t::mx_answer();
  auto r = decode_mx(m, "EXAMPLE.test.", false);
  ASSERT_EQ(r.status, outcome::found) << r.error;
  ASSERT_EQ(r.records.size(), 2u);
  EXPECT_EQ(r.records[0], (mx_record{10, "mx1.example.test"}));
  EXPECT_EQ(r.records[1], (mx_record{20, "mx2.example.test"}));
  EXPECT_EQ(r.ttl, 200u);  // the smallest TTL
  EXPECT_FALSE(r.secure);
}

TEST(DnsParse, AdBitCountsOnlyWhenTrusted) {
  auto m = t::mx_answer(t::ad_flag);
  EXPECT_TRUE(parse_response(m).authentic_data);
  EXPECT_TRUE(decode_mx(m, "example.test", true).secure);
  EXPECT_FALSE(decode_mx(m, "example.test", false).secure);
  EXPECT_FALSE(decode_mx(t::mx_answer(), "example.test", true).secure);
}

TEST(DnsParse, NxdomainAndNodataAreProvenAbsence) {
  auto nx = decode_a(t::negative_answer("gone.test", 1, 3, 900, 60), "gone.test", false);
  EXPECT_EQ(nx.status, outcome::absent);
  EXPECT_EQ(nx.why_absent, absence::nxdomain);
  EXPECT_EQ(parse_response(t::negative_answer("gone.test", 1, 3, 900, 60)).soa_negative_ttl, 60u);
  EXPECT_EQ(parse_response(t::negative_answer("gone.test", 1, 3, 30, 600)).soa_negative_ttl, 30u);
  auto nodata = decode_tlsa(t::negative_answer("_25._tcp.mx.test", 52, 0, 900, 60), "_25._tcp.mx.test", false);
  EXPECT_EQ(nodata.status, outcome::absent);
  EXPECT_EQ(nodata.why_absent, absence::nodata);
  EXPECT_TRUE(nodata.records.empty());
}

TEST(DnsParse, ServerFailuresAreTemporary) {
  for (uint8_t rcode : {1, 2, 4, 5, 9}) {
    auto r = decode_mx(t::negative_answer("example.test", 15, rcode, 1, 1, false), "example.test", false);
    EXPECT_EQ(r.status, outcome::temporary_failure) << int(rcode);
  }
  EXPECT_EQ(decode_mx(t::negative_answer("example.test", 15, 2, 1, 1, false), "example.test", false).error, "SERVFAIL");
  EXPECT_EQ(decode_mx(t::negative_answer("example.test", 15, 5, 1, 1, false), "example.test", false).error, "REFUSED");
}

TEST(DnsParse, ExtendedRcodeFromOpt) {
  wire w;
  w.header(0, 0, 0, 0, 1).question("example.test", 15);
  w.u8(0).u16(41).u16(1232).u32(0x01000000).u16(0);  // extended RCODE 1 << 4 = BADVERS
  auto r = decode_mx(w.b, "example.test", false);
  EXPECT_EQ(r.status, outcome::temporary_failure);
  EXPECT_EQ(r.error, "RCODE 16");
}

TEST(DnsParse, TruncatedOrWrongQuestionIsTemporary) {
  EXPECT_EQ(decode_mx(t::mx_answer(t::tc_flag), "example.test", false).error, "truncated answer");
  EXPECT_EQ(decode_mx(t::mx_answer(), "other.test", false).error, "answer is for another question");
  EXPECT_EQ(decode_a(t::mx_answer(), "example.test", false).error, "answer is for another question");
}

TEST(DnsParse, CnameChainIsFollowed) {
  wire w;
  w.header(0, 0, 2).question("alias.test", 1);
  size_t target_at = w.size() + 12;  // owner pointer(2) type class ttl rdlen = 12 octets
  w.rr_at_question(5, 100, 8).name("t.test");
  w.pointer(static_cast<uint16_t>(target_at)).u16(1).u16(1).u32(500).u16(4).u8(192).u8(0).u8(2).u8(1);
  auto r = decode_a(w.b, "alias.test", false);
  ASSERT_EQ(r.status, outcome::found) << r.error;
  ASSERT_EQ(r.records.size(), 1u);
  EXPECT_EQ(r.records[0].to_string(), "192.0.2.1");
  EXPECT_EQ(r.ttl, 100u);  // the CNAME's TTL bounds the answer
}

TEST(DnsParse, RecordsNotOnTheChainAreIgnored) {
  // An A record for another owner in the answer section: a poisoning attempt, not an answer.
  wire w;
  w.header(0, 0, 1).question("victim.test", 1);
  w.name("other.test").u16(1).u16(1).u32(100).u16(4).u32(0x7f000001);
  auto r = decode_a(w.b, "victim.test", false);
  EXPECT_EQ(r.status, outcome::absent);
  EXPECT_EQ(r.why_absent, absence::nodata);
}

TEST(DnsParse, CnameLoopIsTemporary) {
  wire w;
  w.header(0, 0, 2).question("a.test", 1);
  size_t b_at = w.size() + 12;
  w.rr_at_question(5, 100, 8).name("b.test");
  w.pointer(static_cast<uint16_t>(b_at)).u16(5).u16(1).u32(100).u16(2).pointer(12);
  auto r = decode_a(w.b, "a.test", false);
  EXPECT_EQ(r.status, outcome::temporary_failure);
  EXPECT_EQ(r.error, "CNAME chain longer than 8");
}

TEST(DnsParse, TxtTlsaSmimeaOpenpgpkey) {
  wire txt;
  txt.header(0, 0, 1).question("t.test", 16).rr_at_question(16, 60, 12).u8(7).bytes("v=spf1 ").u8(3).bytes("-al");
  auto tr = decode_txt(txt.b, "t.test", false);
  ASSERT_EQ(tr.status, outcome::found) << tr.error;
  EXPECT_EQ(tr.records, std::vector<std::string>{"v=spf1 -al"});

  for (uint16_t type : {52, 53}) {
    wire tl;
    tl.header(0, 0, 1).question("_25._tcp.mx.test", type).rr_at_question(type, 60, 7).u8(3).u8(1).u8(1).u32(0xdeadbeef);
    auto r = type == 52 ? decode_tlsa(tl.b, "_25._tcp.mx.test", false) : decode_smimea(tl.b, "_25._tcp.mx.test", false);
    ASSERT_EQ(r.status, outcome::found) << r.error;
    EXPECT_EQ(r.records[0], (tlsa_record{3, 1, 1, {0xde, 0xad, 0xbe, 0xef}}));
  }

  wire pgp;
  pgp.header(0, 0, 1).question("hash._openpgpkey.test", 61).rr_at_question(61, 60, 3).u8(1).u8(2).u8(3);
  auto pr = decode_openpgpkey(pgp.b, "hash._openpgpkey.test", false);
  ASSERT_EQ(pr.status, outcome::found) << pr.error;
  EXPECT_EQ(pr.records[0], (std::vector<uint8_t>{1, 2, 3}));
}

TEST(DnsParse, TtlWithTopBitIsZero) {
  wire w;
  w.header(0, 0, 1).question("a.test", 1).rr_at_question(1, 0x80000001u, 4).u32(0x7f000001);
  EXPECT_EQ(decode_a(w.b, "a.test", false).ttl, 0u);
}

TEST(DnsParse, LabelWithDotIsNotTwoLabels) {
  wire w;
  w.header(0, 0, 1).question("a.test", 1);
  w.u8(6).bytes("a.test").u8(0).u16(1).u16(1).u32(60).u16(4).u32(0x7f000001);  // one label "a.test"
  auto r = decode_a(w.b, "a.test", false);
  EXPECT_EQ(r.status, outcome::absent);
  EXPECT_EQ(parse_response(w.b).answers.at(0).owner, "a\\046test");
}

// Hostile and broken messages: each must be refused cleanly.
TEST(DnsMalformed, EveryTruncationIsTemporary) {
  auto m = t::mx_answer();
  for (size_t n = 0; n < m.size(); ++n) {
    std::vector<uint8_t> cut(m.begin(), m.begin() + static_cast<ptrdiff_t>(n));
    auto r = decode_mx(cut, "example.test", false);
    EXPECT_EQ(r.status, outcome::temporary_failure) << "length " << n;
    EXPECT_TRUE(r.records.empty());
  }
}

TEST(DnsMalformed, CompressionLoops) {
  // Owner name pointing at itself.
  wire self;
  self.header(0, 0, 1).question("a.test", 1);
  self.pointer(static_cast<uint16_t>(self.size())).u16(1).u16(1).u32(1).u16(4).u32(0);
  EXPECT_EQ(decode_a(self.b, "a.test", false).error, "malformed answer: bad owner name");
  // Forward pointer.
  wire fwd;
  fwd.header(0, 0, 1).question("a.test", 1);
  fwd.pointer(static_cast<uint16_t>(fwd.size() + 2)).u8(0).u16(1).u16(1).u32(1).u16(4).u32(0);
  EXPECT_EQ(decode_a(fwd.b, "a.test", false).status, outcome::temporary_failure);
  // Two labels that point at each other, reached through a label first.
  wire two;
  two.header(0, 0, 1).question("a.test", 1);
  size_t p = two.size();
  two.u8(1).bytes("x").pointer(static_cast<uint16_t>(p + 4)).pointer(static_cast<uint16_t>(p));
  two.u16(1).u16(1).u32(1).u16(4).u32(0);
  EXPECT_EQ(decode_a(two.b, "a.test", false).status, outcome::temporary_failure);
  // A question name that is a pointer into the header.
  wire q;
  q.header(0, 0, 0).pointer(2).u16(1).u16(1);
  EXPECT_EQ(decode_a(q.b, "a.test", false).status, outcome::temporary_failure);
}

TEST(DnsMalformed, LengthsPastTheEnd) {
  wire rd;
  rd.header(0, 0, 1).question("a.test", 1).rr_at_question(1, 60, 400).u32(0x7f000001);
  EXPECT_EQ(decode_a(rd.b, "a.test", false).error, "malformed answer: rdata past the end");
  wire label;
  label.header(0, 0, 0).u8(60).bytes("short");
  EXPECT_EQ(decode_a(label.b, "a.test", false).status, outcome::temporary_failure);
  wire count;  // claims 5 answers, has 1
  count.header(0, 0, 5).question("a.test", 1).rr_at_question(1, 60, 4).u32(0x7f000001);
  EXPECT_EQ(decode_a(count.b, "a.test", false).status, outcome::temporary_failure);
  wire txt;  // character-string longer than the rdata
  txt.header(0, 0, 1).question("t.test", 16).rr_at_question(16, 60, 3).u8(9).bytes("ab");
  EXPECT_EQ(decode_txt(txt.b, "t.test", false).error, "malformed answer: bad TXT record");
  wire mx;  // MX name running past its rdata into the next bytes
  mx.header(0, 0, 1).question("m.test", 15).rr_at_question(15, 60, 4).u16(10).u8(3).bytes("mx").bytes("x").u8(0);
  EXPECT_EQ(decode_mx(mx.b, "m.test", false).status, outcome::temporary_failure);
  wire shorta;
  shorta.header(0, 0, 1).question("a.test", 1).rr_at_question(1, 60, 3).u8(1).u8(2).u8(3);
  EXPECT_EQ(decode_a(shorta.b, "a.test", false).error, "malformed answer: bad A record");
}

TEST(DnsMalformed, NameLongerThan255ThroughPointers) {
  wire w;
  w.header(0, 0, 1).question("a.test", 1);
  // 5 chunks of 60-octet labels chained by pointers: > 255 octets in all.
  std::vector<size_t> starts;
  for (int i = 0; i < 5; ++i) {
    starts.push_back(w.size());
    w.u8(60).bytes(std::string(60, 'a'));
    if (i == 0) w.u8(0);
    else w.pointer(static_cast<uint16_t>(starts[static_cast<size_t>(i) - 1]));
  }
  w.pointer(static_cast<uint16_t>(starts.back())).u16(1).u16(1).u32(1).u16(4).u32(0);
  w.b[7] = 1;  // one answer
  EXPECT_EQ(parse_response(w.b).ok, false);
}

TEST(DnsMalformed, NotAResponse) {
  auto q = build_query("a.test", rr_type::a, 1);
  EXPECT_EQ(decode_a(q, "a.test", false).error, "malformed answer: not a response");
}

TEST(DnsMalformed, RandomMutationsNeverCrash) {
  // A small in-process fuzzer: flip, insert and cut octets of valid messages.
  std::mt19937 rng(20261124);
  std::vector<std::vector<uint8_t>> seeds = {t::mx_answer(t::ad_flag), t::negative_answer("gone.test", 1, 3, 900, 60)};
  size_t decoded = 0;
  for (int i = 0; i < 20000; ++i) {
    auto m = seeds[static_cast<size_t>(i) % seeds.size()];
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits && !m.empty(); ++e) {
      size_t at = rng() % m.size();
      switch (rng() % 3) {
        case 0: m[at] = static_cast<uint8_t>(rng()); break;
        case 1: m.insert(m.begin() + static_cast<ptrdiff_t>(at), static_cast<uint8_t>(rng())); break;
        case 2: m.resize(at); break;
      }
    }
    auto r = decode_mx(m, "example.test", true);
    if (r.status == outcome::temporary_failure) EXPECT_TRUE(r.records.empty());
    else ++decoded;
    (void)decode_a(m, "gone.test", true);
    (void)decode_txt(m, "example.test", true);
  }
  EXPECT_GT(decoded, 0u);  // the mutations did not only produce garbage
}

TEST(DnsMalformed, WrongRdlengthEitherWay) {
  // An A record whose rdlength claims 6 octets: longer than an address, refused rather than cut.
  wire longa;
  longa.header(0, 0, 1).question("a.test", 1).rr_at_question(1, 60, 6).u32(0x7f000001).u16(0);
  EXPECT_EQ(decode_a(longa.b, "a.test", false).error, "malformed answer: bad A record");
  // TLSA needs usage, selector and matching type: rdlength 2 is too short.
  wire tlsa;
  tlsa.header(0, 0, 1).question("_25._tcp.mx.test", 52).rr_at_question(52, 60, 2).u8(3).u8(1);
  EXPECT_EQ(decode_tlsa(tlsa.b, "_25._tcp.mx.test", false).error, "malformed answer: bad TLSA record");
}

TEST(DnsMalformed, ReservedLabelTypesAndOversizedLabels) {
  // 0x40 and 0x80 label types (RFC 6891 5 / obsolete) are neither labels nor pointers.
  wire t01;
  t01.header(0, 0, 1).question("a.test", 1).u8(0x41).bytes(std::string(65, 'x')).u8(0);
  EXPECT_EQ(decode_a(t01.b, "a.test", false).error, "malformed answer: bad owner name");
  wire t10;
  t10.header(0, 0, 1).question("a.test", 1).u8(0x80).u8(0);
  EXPECT_EQ(decode_a(t10.b, "a.test", false).error, "malformed answer: bad owner name");
}
