// MX rules: preference order, random among equals (RFC 5321 5.1), null MX
// (RFC 7505) and the implicit MX when there are no MX records.
#include <gtest/gtest.h>

#include <set>

#include "dns/lookup.hpp"

using namespace sealgate::dns;

namespace {
mx_result found(std::vector<mx_record> records) {
  mx_result r;
  r.status = outcome::found;
  r.records = std::move(records);
  r.ttl = 300;
  return r;
}
std::vector<std::string> names(const mx_set& s) {
  std::vector<std::string> out;
  for (auto& h : s.hosts) out.push_back(h.name);
  return out;
}
template <typename R>
R with(outcome o, absence a = absence::none) {
  R r;
  r.status = o;
  r.why_absent = a;
  r.ttl = 60;
  return r;
}
}  // namespace

TEST(DnsMx, PreferenceOrder) {
  std::mt19937 rng(1);
  auto s = order_mx(found({{30, "c.test"}, {10, "a.test"}, {20, "b.test"}}), "d.test", rng);
  EXPECT_EQ(s.status, mx_outcome::hosts);
  EXPECT_EQ(names(s), (std::vector<std::string>{"a.test", "b.test", "c.test"}));
  EXPECT_FALSE(s.implicit);
  EXPECT_EQ(s.ttl, 300u);
}

TEST(DnsMx, RandomAmongEqualPreferences) {
  std::set<std::vector<std::string>> seen;
  for (unsigned seed = 0; seed < 64; ++seed) {
    std::mt19937 rng(seed);
    auto s = order_mx(found({{10, "a.test"}, {10, "b.test"}, {5, "first.test"}, {20, "last.test"}}), "d.test", rng);
    auto n = names(s);
    ASSERT_EQ(n.size(), 4u);
    EXPECT_EQ(n.front(), "first.test");
    EXPECT_EQ(n.back(), "last.test");
    seen.insert(n);
  }
  EXPECT_EQ(seen.size(), 2u);  // both orders of a and b occur
}

TEST(DnsMx, DuplicateHostKeepsItsBestPreference) {
  std::mt19937 rng(1);
  auto s = order_mx(found({{20, "a.test"}, {10, "b.test"}, {5, "a.test"}}), "d.test", rng);
  EXPECT_EQ(names(s), (std::vector<std::string>{"a.test", "b.test"}));
}

TEST(DnsMx, NullMxTakesNoMail) {
  std::mt19937 rng(1);
  auto s = order_mx(found({{0, ""}}), "d.test", rng);
  EXPECT_EQ(s.status, mx_outcome::null_mx);
  EXPECT_TRUE(s.hosts.empty());
  EXPECT_EQ(s.error, "null MX (RFC 7505): the domain accepts no mail");
}

TEST(DnsMx, RootMixedWithRealHostsIsSkipped) {
  std::mt19937 rng(1);
  auto s = order_mx(found({{0, ""}, {10, "mx.test"}}), "d.test", rng);
  EXPECT_EQ(s.status, mx_outcome::hosts);
  EXPECT_EQ(names(s), std::vector<std::string>{"mx.test"});
}

TEST(DnsMx, NxdomainIsNoSuchDomain) {
  std::mt19937 rng(1);
  auto s = order_mx(with<mx_result>(outcome::absent, absence::nxdomain), "gone.test", rng);
  EXPECT_EQ(s.status, mx_outcome::no_such_domain);
}

TEST(DnsMx, TemporaryFailureStaysTemporary) {
  std::mt19937 rng(1);
  auto mx = with<mx_result>(outcome::temporary_failure);
  mx.error = "timeout";
  auto s = order_mx(mx, "d.test", rng);
  EXPECT_EQ(s.status, mx_outcome::temporary_failure);
  EXPECT_EQ(s.error, "timeout");
}

TEST(DnsMx, NoMxMeansTheDomainItself) {
  std::mt19937 rng(1);
  auto s = order_mx(with<mx_result>(outcome::absent, absence::nodata), "Plain.Test.", rng);
  EXPECT_EQ(s.status, mx_outcome::hosts);
  EXPECT_TRUE(s.implicit);
  EXPECT_EQ(names(s), std::vector<std::string>{"plain.test"});

  auto a = with<a_result>(outcome::found);
  auto no_a = with<a_result>(outcome::absent, absence::nodata);
  auto no_aaaa = with<aaaa_result>(outcome::absent, absence::nodata);
  auto aaaa_fail = with<aaaa_result>(outcome::temporary_failure);
  aaaa_fail.error = "SERVFAIL";

  EXPECT_EQ(finish_implicit_mx(s, a, no_aaaa).status, mx_outcome::hosts);
  EXPECT_EQ(finish_implicit_mx(s, a, aaaa_fail).status, mx_outcome::hosts);  // one family is enough
  auto none = finish_implicit_mx(s, no_a, no_aaaa);
  EXPECT_EQ(none.status, mx_outcome::no_such_domain);
  EXPECT_EQ(none.error, "no MX and no address records");
  auto unknown = finish_implicit_mx(s, no_a, aaaa_fail);
  EXPECT_EQ(unknown.status, mx_outcome::temporary_failure);
  EXPECT_EQ(unknown.error, "no MX; address lookup failed: SERVFAIL");
}

TEST(DnsMx, SecureOnlyWhenEveryAnswerIs) {
  std::mt19937 rng(1);
  auto mx = with<mx_result>(outcome::absent, absence::nodata);
  mx.secure = true;
  auto s = order_mx(mx, "d.test", rng);
  EXPECT_TRUE(s.secure);
  auto a = with<a_result>(outcome::found);
  a.secure = true;
  auto aaaa = with<aaaa_result>(outcome::absent, absence::nodata);
  EXPECT_FALSE(finish_implicit_mx(s, a, aaaa).secure);
  aaaa.secure = true;
  EXPECT_TRUE(finish_implicit_mx(s, a, aaaa).secure);
}

TEST(DnsOptions, ServerAddresses) {
  std::string why;
  auto v4 = parse_server_address("127.0.0.53");
  ASSERT_TRUE(v4);
  EXPECT_EQ(v4->to_string(), "127.0.0.53:53");
  EXPECT_TRUE(v4->loopback);
  auto v6 = parse_server_address("[::1]:5353");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->to_string(), "[::1]:5353");
  EXPECT_TRUE(v6->loopback);
  auto bare6 = parse_server_address("2001:db8::53");
  ASSERT_TRUE(bare6);
  EXPECT_FALSE(bare6->loopback);
  EXPECT_EQ(bare6->to_string(), "[2001:db8::53]:53");
  EXPECT_FALSE(parse_server_address("::ffff:127.0.0.1")->loopback);  // only ::1 counts, as Postfix
  EXPECT_FALSE(parse_server_address("10.0.0.1")->loopback);
  EXPECT_FALSE(parse_server_address("localhost", &why));
  EXPECT_EQ(why, "not an IP address");
  EXPECT_FALSE(parse_server_address("127.0.0.1:99999", &why));
  EXPECT_EQ(why, "bad port");
  EXPECT_FALSE(parse_server_address("[::1", &why));
  EXPECT_EQ(why, "missing ']'");
}

TEST(Addresses, MergedAFoundTempfailOnlyWhenNothingFoundAbsentOnlyWhenBothProveIt) {
  auto a = with<a_result>(outcome::found);
  a.records.push_back(boost::asio::ip::make_address_v4("127.0.0.9"));
  a.secure = true;
  auto no_a = with<a_result>(outcome::absent, absence::nxdomain);
  auto no_aaaa = with<aaaa_result>(outcome::absent, absence::nxdomain);
  no_aaaa.secure = true;
  auto aaaa_fail = with<aaaa_result>(outcome::temporary_failure);
  aaaa_fail.error = "SERVFAIL";

  auto found = merge_addresses(a, aaaa_fail);  // one family is enough
  EXPECT_EQ(found.status, outcome::found);
  ASSERT_EQ(found.list.size(), 1u);
  EXPECT_EQ(found.list[0].to_string(), "127.0.0.9");
  EXPECT_FALSE(found.secure) << "a failed lookup is never secure";
  EXPECT_TRUE(merge_addresses(a, no_aaaa).secure);

  auto unknown = merge_addresses(no_a, aaaa_fail);
  EXPECT_EQ(unknown.status, outcome::temporary_failure);
  EXPECT_EQ(unknown.error, "SERVFAIL");

  auto none = merge_addresses(no_a, no_aaaa);
  EXPECT_EQ(none.status, outcome::absent);
  EXPECT_EQ(none.why_absent, absence::nxdomain);
  EXPECT_TRUE(none.list.empty());
}
