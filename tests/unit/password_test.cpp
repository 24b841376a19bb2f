// scrypt hashes: round trip, refusal of wrong and malformed input.
#include <gtest/gtest.h>

#include "common/text.hpp"
#include "crypto/password.hpp"

using namespace sealgate::crypto;
using sealgate::base64_decode;
using sealgate::base64_encode;

TEST(Password, HashVerifies) {
  auto h = hash_password("correct horse");
  EXPECT_TRUE(h.starts_with("$scrypt$ln=15,r=8,p=1$"));
  EXPECT_TRUE(verify_password("correct horse", h));
  EXPECT_FALSE(verify_password("correct horsf", h));
  EXPECT_FALSE(verify_password("", h));
  EXPECT_NE(hash_password("correct horse"), h);  // salted
}

TEST(Password, MalformedHashesNeverMatch) {
  for (const char* bad : {"", "plain", "$scrypt$ln=15,r=8$AAAA$AAAA", "$scrypt$ln=40,r=8,p=1$AAAA$AAAA",
                          "$pbkdf2$ln=15,r=8,p=1$AAAA$AAAA"})
    EXPECT_FALSE(verify_password("x", bad)) << bad;
}

TEST(Base64, StrictDecoding) {
  bool ok = false;
  EXPECT_EQ(base64_decode("AGFsaWNlAHNlY3JldA==", ok), std::string("\0alice\0secret", 13));
  EXPECT_TRUE(ok);
  base64_decode("AGFsa=WNl", ok);
  EXPECT_FALSE(ok);
  base64_decode("abc", ok);
  EXPECT_FALSE(ok);
  base64_decode("ab!c", ok);
  EXPECT_FALSE(ok);
  EXPECT_EQ(base64_encode("alice"), "YWxpY2U=");
}
