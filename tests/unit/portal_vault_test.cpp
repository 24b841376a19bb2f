// The portal's cryptography (portal/store/vault.hpp): a deposit opens with
// its link's token and nothing else (not the lookup key the store keeps, not
// another entry's), codes are uniform and bound to the session that asked,
// and the sealed box opens only with the gateway's key and refuses keys that
// would make its shared secret predictable.
#include "portal/store/vault.hpp"

#include <gtest/gtest.h>

#include <array>
#include <set>
#include <stdexcept>
#include <string>

namespace sealgate::portal {
namespace {

std::string with_byte_flipped(std::string s, size_t at) {
  s.at(at) = static_cast<char>(s.at(at) ^ 0x01);
  return s;
}

std::string from_hex(std::string_view text) {
  std::string out;
  for (size_t i = 0; i + 1 < text.size(); i += 2) out += static_cast<char>(std::stoi(std::string(text.substr(i, 2)), nullptr, 16));
  return out;
}

// nonce (12) and tag (16) around the ciphertext of AES-256-GCM.
constexpr size_t aead_overhead = 28;

TEST(PortalVault, ASealedMessageOpensWithItsTokenAndNoOther) {
  for (size_t size : {size_t{4096}, size_t{3} << 20}) {
    SCOPED_TRACE(size);
    std::string message = random_bytes(size);
    std::string token = new_token();
    std::string aad = lookup_key(token);
    sealed_message m = seal_message(message, token, aad);
    EXPECT_EQ(m.body.size(), size + aead_overhead);
    EXPECT_EQ(m.link_wrap.size(), 32 + aead_overhead) << "a wrapped 256-bit content key";
    EXPECT_TRUE(m.master_wrap.empty()) << "no master key, no master wrap";
    EXPECT_EQ(m.body.find(message.substr(size / 2, 32)), std::string::npos) << "the body is ciphertext";

    auto opened = open_message(m, token, aad);
    ASSERT_TRUE(opened);
    EXPECT_TRUE(*opened == message) << "the round trip changed the message";
    EXPECT_FALSE(open_message(m, new_token(), aad)) << "another token";
    // A token one character off.
    std::string near = token;
    near[10] = near[10] == 'A' ? 'B' : 'A';
    EXPECT_FALSE(open_message(m, near, aad));
    EXPECT_FALSE(open_message(m, "", aad));
  }
}

TEST(PortalVault, AnAlteredByteInTheBodyOrAWrapOpensNothing) {
  std::string token = new_token(), aad = lookup_key(token);
  std::string master = random_bytes(32);
  sealed_message m = seal_message(std::string(5000, 'x'), token, aad, master);
  ASSERT_TRUE(open_message(m, token, aad));
  for (size_t at : {size_t{0}, size_t{11}, size_t{12}, m.body.size() / 2, m.body.size() - 17, m.body.size() - 1}) {
    sealed_message altered = m;
    altered.body = with_byte_flipped(m.body, at);
    EXPECT_FALSE(open_message(altered, token, aad)) << "body byte " << at << " (nonce, ciphertext or tag)";
  }
  for (size_t at : {size_t{0}, size_t{20}, m.link_wrap.size() - 1}) {
    sealed_message altered = m;
    altered.link_wrap = with_byte_flipped(m.link_wrap, at);
    EXPECT_FALSE(open_message(altered, token, aad)) << "link wrap byte " << at;
  }
  sealed_message truncated = m;
  truncated.body.resize(m.body.size() - 1);
  EXPECT_FALSE(open_message(truncated, token, aad));
  truncated.body.clear();
  EXPECT_FALSE(open_message(truncated, token, aad));
  sealed_message master_altered = m;
  master_altered.master_wrap = with_byte_flipped(m.master_wrap, 30);
  EXPECT_FALSE(reissue(master_altered, master, aad, new_token(), aad));
}

TEST(PortalVault, ASealingMovedToAnotherEntryDoesNotOpen) {
  std::string token = new_token();
  std::string aad = lookup_key(token);
  sealed_message m = seal_message("moved", token, aad);
  EXPECT_FALSE(open_message(m, token, lookup_key(new_token()))) << "the body is bound to its entry's lookup key";
  EXPECT_FALSE(open_message(m, token, ""));

  // Two deposits under one token (two entries): bodies and wraps do not mix.
  std::string other_aad = lookup_key(new_token());
  sealed_message other = seal_message("other", token, other_aad);
  sealed_message mixed = m;
  mixed.body = other.body;
  EXPECT_FALSE(open_message(mixed, token, aad));
  EXPECT_FALSE(open_message(mixed, token, other_aad));
}

TEST(PortalVault, AMasterKeyReissuesALinkAndTheOldTokenOpensOnlyTheOldSealing) {
  std::string master = random_bytes(32);
  std::string old_token = new_token(), old_aad = lookup_key(old_token);
  sealed_message old_sealing = seal_message("the lost link's message", old_token, old_aad, master);
  ASSERT_FALSE(old_sealing.master_wrap.empty());

  std::string new_token_ = new_token(), new_aad = lookup_key(new_token_);
  auto reissued = reissue(old_sealing, master, old_aad, new_token_, new_aad);
  ASSERT_TRUE(reissued);
  EXPECT_EQ(open_message(*reissued, new_token_, new_aad), "the lost link's message");
  EXPECT_FALSE(reissued->master_wrap.empty()) << "a reissued link can be reissued again";
  EXPECT_NE(reissued->body, old_sealing.body) << "a fresh content key and nonce";

  EXPECT_EQ(open_message(old_sealing, old_token, old_aad), "the lost link's message");
  EXPECT_FALSE(open_message(*reissued, old_token, new_aad)) << "the old token must not open the new sealing";
  EXPECT_FALSE(open_message(*reissued, old_token, old_aad));

  EXPECT_FALSE(reissue(old_sealing, random_bytes(32), old_aad, new_token_, new_aad)) << "another master key";
  EXPECT_FALSE(reissue(old_sealing, master, new_aad, new_token_, new_aad)) << "the wrong entry";
  EXPECT_FALSE(reissue(old_sealing, master.substr(1), old_aad, new_token_, new_aad)) << "a short master key";
  sealed_message without_master = seal_message("no master", old_token, old_aad);
  EXPECT_FALSE(reissue(without_master, master, old_aad, new_token_, new_aad));
  EXPECT_THROW(seal_message("x", old_token, old_aad, "not 32 bytes"), std::invalid_argument);
}

TEST(PortalVault, TheLookupKeyIsDeterministicAndDoesNotUnwrapTheContentKey) {
  std::string token = new_token();
  std::string lookup = lookup_key(token);
  EXPECT_EQ(lookup, lookup_key(token));
  EXPECT_EQ(lookup.size(), 64u);
  EXPECT_EQ(lookup.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_NE(lookup, lookup_key(new_token()));
  // RFC 5869's HKDF of this token, computed apart (Python's hmac module): the
  // derivation is pinned, so a change to its label cannot orphan every link.
  EXPECT_EQ(lookup_key("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
            "0f823dfec03fb9c0af0badf12a7733df3150fbd9885201295402655838afa83d");

  // The store keeps the lookup key: used as the link key (its raw bytes, or
  // as a token) it must open nothing.
  sealed_message m = seal_message("secret", token, lookup);
  EXPECT_FALSE(aead_open(from_hex(lookup), m.link_wrap, lookup));
  EXPECT_FALSE(open_message(m, lookup, lookup));
}

TEST(PortalVault, TokenShapeIsFortyThreeBase64urlCharacters) {
  std::string token = new_token();
  EXPECT_EQ(token.size(), 43u);
  EXPECT_TRUE(token_shape_ok(token));
  EXPECT_EQ(base64url_decode(token)->size(), 32u);
  EXPECT_NE(token, new_token());
  std::string good(43, 'a');
  EXPECT_TRUE(token_shape_ok(good));
  EXPECT_TRUE(token_shape_ok(std::string(42, '-') + "_"));
  EXPECT_FALSE(token_shape_ok(good.substr(1)));
  EXPECT_FALSE(token_shape_ok(good + "a"));
  EXPECT_FALSE(token_shape_ok(""));
  for (char bad : {'+', '/', '=', '.', ' ', '%', '\0', '\xc3'}) {
    std::string t = good;
    t[20] = bad;
    EXPECT_FALSE(token_shape_ok(t)) << int(bad);
  }
}

TEST(PortalVault, Base64urlRoundTripsAndRefusesNonCanonicalText) {
  // RFC 4648 10, without padding, and the two characters base64url changes.
  const std::pair<std::string, std::string> vectors[] = {
      {"", ""}, {"f", "Zg"}, {"fo", "Zm8"}, {"foo", "Zm9v"}, {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"},
      {"foobar", "Zm9vYmFy"}, {"\xfb\xff", "-_8"}};
  for (const auto& [bytes, text] : vectors) {
    EXPECT_EQ(base64url_encode(bytes), text);
    EXPECT_EQ(base64url_decode(text), bytes) << text;
  }
  for (size_t n = 0; n < 70; ++n) {
    std::string bytes = random_bytes(n);
    std::string text = base64url_encode(bytes);
    EXPECT_EQ(text.find_first_of("+/="), std::string::npos);
    EXPECT_EQ(base64url_decode(text), bytes) << n;
  }
  // One value, one spelling: leftover bits must be zero ("Zh" would also be "f").
  for (std::string bad : {"Zh", "Zm9", "Zm9vYh", "Z", "Zg==", "Zm9v+", "Zm9v/", "Zm 9v", "Zm9v\n"})
    EXPECT_FALSE(base64url_decode(bad)) << bad;
  EXPECT_TRUE(base64url_decode("Zm8"));
}

TEST(PortalVault, CodesAreSixDigitsAndUniform) {
  constexpr int samples = 100000;
  std::array<int, 10> first{}, last{};
  std::set<std::string> distinct;
  for (int i = 0; i < samples; ++i) {
    std::string code = new_code();
    ASSERT_EQ(code.size(), 6u) << code;
    ASSERT_EQ(code.find_first_not_of("0123456789"), std::string::npos) << code;
    ++first[static_cast<size_t>(code[0] - '0')];
    ++last[static_cast<size_t>(code[5] - '0')];
    distinct.insert(code);
  }
  // Chi-square with 9 degrees of freedom: a uniform source exceeds 50 with
  // probability 1e-7, so this does not flake; a generator that favours a
  // digit by a few percent (or drops leading zeros) lands far above it.
  auto chi_square = [&](const std::array<int, 10>& counts) {
    double expected = samples / 10.0, sum = 0;
    for (int c : counts) sum += (c - expected) * (c - expected) / expected;
    return sum;
  };
  EXPECT_LT(chi_square(first), 50.0);
  EXPECT_LT(chi_square(last), 50.0);
  // 100 000 draws from a million: about 95 163 distinct values expected (sd ~ 70).
  EXPECT_GT(distinct.size(), 94000u) << "too many repeats for a million-value space";
}

TEST(PortalVault, ACodeHashDependsOnTheSessionThatAskedAndTheCode) {
  std::string session = new_token(), other_session = new_token();
  std::string hash = code_hash(session, "123456");
  EXPECT_EQ(hash, code_hash(session, "123456"));
  EXPECT_EQ(hash.size(), 64u);
  EXPECT_NE(hash, code_hash(other_session, "123456")) << "a hash is useless to another browser";
  EXPECT_NE(hash, code_hash(session, "123457"));
  EXPECT_NE(hash, hex(sha256("123456"))) << "keyed: a copy of the store cannot test the million codes";
}

TEST(PortalVault, TheBoxOpensWithTheGatewaysKeyOnly) {
  box_keys gateway = new_box_keys();
  ASSERT_EQ(gateway.public_key.size(), 32u);
  ASSERT_EQ(gateway.private_key.size(), 32u);
  EXPECT_EQ(box_public_key(gateway.private_key), gateway.public_key);
  EXPECT_FALSE(box_public_key("short"));

  std::string reply = "From: patient\r\n\r\n" + random_bytes(1 << 20);
  for (const std::string& plaintext : {std::string("123456"), reply, std::string()}) {
    std::string box = box_seal(gateway.public_key, plaintext);
    EXPECT_EQ(box_open(gateway.private_key, box), plaintext);
    EXPECT_NE(box, box_seal(gateway.public_key, plaintext)) << "a fresh ephemeral key each time";
  }

  std::string box = box_seal(gateway.public_key, "123456");
  EXPECT_FALSE(box_open(new_box_keys().private_key, box)) << "another key";
  for (size_t at : {size_t{0}, size_t{31}, size_t{32}, size_t{40}, box.size() - 1})
    EXPECT_FALSE(box_open(gateway.private_key, with_byte_flipped(box, at))) << "byte " << at;
  EXPECT_FALSE(box_open(gateway.private_key, box.substr(0, box.size() - 1)));
  EXPECT_FALSE(box_open(gateway.private_key, box.substr(0, 31)));
  EXPECT_FALSE(box_open(gateway.private_key, ""));
  EXPECT_FALSE(box_open(gateway.private_key.substr(1), box)) << "a malformed private key";
}

TEST(PortalVault, ABoxToALowOrderOrMalformedKeyIsRefused) {
  // The points of small order on Curve25519 and their non-canonical
  // spellings (the list libsodium refuses): with any of them as the peer the
  // shared secret is all zeros, known to everyone.
  const char* low_order[] = {
      "0000000000000000000000000000000000000000000000000000000000000000",
      "0100000000000000000000000000000000000000000000000000000000000000",
      "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
      "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
      "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
      "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
      "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  };
  for (const char* point : low_order) {
    EXPECT_THROW(box_seal(from_hex(point), "123456"), std::invalid_argument) << point;
    // A box whose ephemeral key is such a point: refused, not opened under a zero secret.
    std::string forged = from_hex(point) + random_bytes(6 + aead_overhead);
    EXPECT_FALSE(box_open(new_box_keys().private_key, forged)) << point;
  }
  EXPECT_THROW(box_seal(random_bytes(31), "x"), std::invalid_argument);
  EXPECT_THROW(box_seal(random_bytes(33), "x"), std::invalid_argument);
  EXPECT_THROW(box_seal("", "x"), std::invalid_argument);
}

TEST(PortalVault, EqualConstantTimeComparesLengthAndBytes) {
  EXPECT_TRUE(equal_constant_time("abc", "abc"));
  EXPECT_TRUE(equal_constant_time("", ""));
  EXPECT_FALSE(equal_constant_time("abc", "abd"));
  EXPECT_FALSE(equal_constant_time("abc", "ab"));
  EXPECT_FALSE(equal_constant_time("", "a"));
}

}  // namespace
}  // namespace sealgate::portal
