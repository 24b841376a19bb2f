// TLS levels: one name table, a total order, unknown names refused.
#include <gtest/gtest.h>

#include "policy/tls_level.hpp"

using namespace sealgate::policy;

TEST(TlsLevel, NamesRoundTripAndUnknownNamesAreRefused) {
  for (auto l : {tls_level::none, tls_level::opportunistic, tls_level::required, tls_level::verified})
    EXPECT_EQ(parse_tls_level(to_string(l)), l);
  EXPECT_FALSE(parse_tls_level("may"));
  EXPECT_FALSE(parse_tls_level("Verified"));
  EXPECT_FALSE(parse_tls_level(""));
}

TEST(TlsLevel, OrderAndStronger) {
  EXPECT_LT(tls_level::none, tls_level::opportunistic);
  EXPECT_LT(tls_level::opportunistic, tls_level::required);
  EXPECT_LT(tls_level::required, tls_level::verified);
  EXPECT_EQ(stronger(tls_level::required, tls_level::verified), tls_level::verified);
  EXPECT_EQ(stronger(tls_level::verified, tls_level::opportunistic), tls_level::verified);
}
