// The outcome value: a reply's class decides its kind, and its enhanced
// status comes from the reply or the class default (Postfix's smtp_trouble.c
// and maddy's exterrors read a reply the same way).
#include <gtest/gtest.h>

#include "gateway/mail/outcome.hpp"

using namespace sealgate::gateway;

TEST(Outcome, AReplyClassDecidesTheKind) {
  auto ok = reply_outcome(250, "", "250 Ok");
  EXPECT_TRUE(ok.delivered());
  EXPECT_EQ(ok.enhanced, "2.0.0");
  auto soft = reply_outcome(451, "4.7.1", "451 4.7.1 greylisted");
  EXPECT_TRUE(soft.temporary());
  EXPECT_EQ(soft.code, 451);
  EXPECT_EQ(soft.enhanced, "4.7.1");
  auto hard = reply_outcome(550, "", "550 no such user");
  EXPECT_TRUE(hard.permanent());
  EXPECT_EQ(hard.enhanced, "5.0.0");
  // A 354 where a completion was due is no success: deferred, never delivered.
  auto odd = reply_outcome(354, "", "354 again");
  EXPECT_TRUE(odd.temporary());
  EXPECT_EQ(odd.enhanced, "4.0.0");
}

TEST(Outcome, TheGatewaysOwnVerdictsCarryBothTexts) {
  auto o = temporary_outcome("4.4.3", "MX lookup for x.example failed: SERVFAIL");
  EXPECT_TRUE(o.temporary());
  EXPECT_EQ(o.code, 451);
  EXPECT_EQ(o.public_text, o.reason);
  auto p = permanent_outcome("5.1.10", "x.example accepts no mail (null MX, RFC 7505)");
  EXPECT_TRUE(p.permanent());
  EXPECT_EQ(p.code, 554);
  auto expired = reworded(o, "4.4.7", "delivery time expired; last problem: " + o.reason);
  EXPECT_TRUE(expired.temporary());
  EXPECT_EQ(expired.enhanced, "4.4.7");
  EXPECT_EQ(expired.public_text, expired.reason);
}
