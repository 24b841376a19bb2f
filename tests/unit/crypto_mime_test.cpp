// The MIME surgery of crypto/mime.hpp and the address rules of
// crypto/address.hpp: exact octets in, exact octets out, RFC examples.
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <random>
#include <set>

#include "crypto/address.hpp"
#include "crypto/mime.hpp"

using namespace sealgate::crypto;

TEST(CryptoMime, SplitKeepsFieldsExactlyWithContinuations) {
  std::string msg = "From: a@example.org\r\nSubject: one\r\n two\r\nX-Empty:\r\n\r\nbody\r\n\r\nmore\r\n";
  auto m = split(msg);
  ASSERT_TRUE(m);
  ASSERT_EQ(m->fields.size(), 3u);
  EXPECT_EQ(m->fields[1].name, "Subject");
  EXPECT_EQ(m->fields[1].raw, "Subject: one\r\n two\r\n");
  EXPECT_EQ(m->fields[1].value(), "one two");
  EXPECT_EQ(m->fields[2].value(), "");
  EXPECT_EQ(m->body, "body\r\n\r\nmore\r\n");
}

TEST(CryptoMime, SplitRefusesWhatIsNotAHeader) {
  EXPECT_FALSE(split(" continued: first\r\n\r\nx"));
  EXPECT_FALSE(split("no colon here\r\n\r\nx"));
  EXPECT_FALSE(split("Bad Name: x\r\n\r\n"));
  auto headers_only = split("A: b\r\n");
  ASSERT_TRUE(headers_only);
  EXPECT_EQ(headers_only->body, "");
  auto no_headers = split("\r\nbody");
  ASSERT_TRUE(no_headers);
  EXPECT_TRUE(no_headers->fields.empty());
  EXPECT_EQ(no_headers->body, "body");
}

TEST(CryptoMime, ToCrlfChangesOnlyBareLf) {
  EXPECT_EQ(to_crlf("a\nb\r\nc\n\n"), "a\r\nb\r\nc\r\n\r\n");
  EXPECT_EQ(to_crlf("\n"), "\r\n");
  EXPECT_EQ(to_crlf("a\rb"), "a\rb");
}

TEST(CryptoMime, ContentTypeParameters) {
  std::string_view ct = "Multipart/Encrypted ; Protocol=\"application/pgp-encrypted\"; boundary=abc; x=\"q\\\"d\"";
  EXPECT_EQ(media_type(ct), "multipart/encrypted");
  EXPECT_EQ(parameter(ct, "protocol"), "application/pgp-encrypted");
  EXPECT_EQ(parameter(ct, "BOUNDARY"), "abc");
  EXPECT_EQ(parameter(ct, "x"), "q\"d");
  EXPECT_EQ(parameter(ct, "charset"), std::nullopt);
  EXPECT_EQ(media_type("text/plain"), "text/plain");
}

TEST(CryptoMime, AlreadyEncrypted) {
  auto is = [](const std::string& ct) {
    std::string msg = "From: a@b\r\n" + ct + "\r\n\r\nx";  // split() returns views into it
    auto m = split(msg);
    return m && already_encrypted(*m);
  };
  EXPECT_TRUE(is("Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=x"));
  EXPECT_TRUE(is("Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m"));
  EXPECT_TRUE(is("content-type: Application/PKCS7-MIME;\r\n smime-type=authEnveloped-data"));
  EXPECT_TRUE(is("Content-Type: application/x-pkcs7-mime; name=smime.p7m"));  // old clients omit smime-type
  EXPECT_FALSE(is("Content-Type: application/pkcs7-mime; smime-type=signed-data"));
  EXPECT_FALSE(is("Content-Type: multipart/signed; protocol=\"application/pgp-signature\""));
  EXPECT_FALSE(is("Content-Type: text/plain"));
  EXPECT_FALSE(is("X-Note: multipart/encrypted"));
}

const std::string sample =
    "Received: from a\r\n\tby b\r\nFrom: A <a@example.org>\r\nTo: b@example.com\r\nSubject: Secret\r\n"
    "MIME-Version: 1.0\r\nContent-Type: multipart/mixed;\r\n boundary=\"q\"\r\nContent-Transfer-Encoding: 8bit\r\n"
    "X-Mailer: m\r\n\r\n--q\r\n\r\n\xc3\xa9\r\n--q--\r\n";

TEST(CryptoMime, WrapMovesContentInsideAndHidesTheSubject) {
  auto m = split(sample);
  ASSERT_TRUE(m);
  auto w = wrap(*m, {"...", true});
  EXPECT_EQ(w.outer_headers,
            "Received: from a\r\n\tby b\r\nFrom: A <a@example.org>\r\nTo: b@example.com\r\nSubject: ...\r\nX-Mailer: m\r\n");
  EXPECT_EQ(w.inner,
            "From: A <a@example.org>\r\nTo: b@example.com\r\nSubject: Secret\r\n"
            "Content-Type: multipart/mixed;\r\n boundary=\"q\"; protected-headers=\"v1\"\r\n"
            "Content-Transfer-Encoding: 8bit\r\n\r\n--q\r\n\r\n\xc3\xa9\r\n--q--\r\n");
}

TEST(CryptoMime, WrapWithoutProtectionKeepsTheSubjectOutside) {
  auto m = split(sample);
  auto w = wrap(*m, {"...", false});
  EXPECT_NE(w.outer_headers.find("Subject: Secret\r\n"), std::string::npos);
  EXPECT_EQ(w.inner,
            "Content-Type: multipart/mixed;\r\n boundary=\"q\"\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
            "--q\r\n\r\n\xc3\xa9\r\n--q--\r\n");
}

TEST(CryptoMime, WrapMakesTheDefaultTypeExplicitToCarryTheMarker) {
  auto m = split("Subject: s\r\n\r\nhello\r\n");
  auto w = wrap(*m, {"Encrypted", true});
  EXPECT_EQ(w.outer_headers, "Subject: Encrypted\r\n");
  EXPECT_EQ(w.inner, "Subject: s\r\nContent-Type: text/plain; charset=us-ascii; protected-headers=\"v1\"\r\n\r\nhello\r\n");
}

TEST(CryptoMime, PrepareSaysWhyNot) {
  auto bad = prepare("not a header\r\n\r\nx", 1);
  ASSERT_TRUE(std::holds_alternative<encrypt_result>(bad));
  EXPECT_EQ(std::get<encrypt_result>(bad).state, encrypt_result::status::failed);
  EXPECT_NE(std::get<encrypt_result>(bad).error.find("not RFC 5322"), std::string::npos);
  auto none = prepare("A: b\r\n\r\nx", 0);
  EXPECT_EQ(std::get<encrypt_result>(none).error, "no recipients");
  std::string enc = "Content-Type: multipart/encrypted; boundary=x\r\n\r\nx";
  auto again = prepare(enc, 1);
  EXPECT_EQ(std::get<encrypt_result>(again).state, encrypt_result::status::already_encrypted);
  EXPECT_EQ(std::get<encrypt_result>(again).message, enc);
  EXPECT_TRUE(std::holds_alternative<split_message>(prepare("A: b\r\n\r\nx", 1)));
}

TEST(CryptoMime, Base64LinesAre76ColumnsAndDecodeBack) {
  std::string data;
  for (int i = 0; i < 1000; ++i) data += static_cast<char>(i * 7);
  std::string b = base64_lines(data);
  size_t pos = 0, lines = 0;
  std::string decoded;
  while (pos < b.size()) {
    size_t eol = b.find("\r\n", pos);
    ASSERT_NE(eol, std::string::npos);
    EXPECT_LE(eol - pos, 76u);
    std::string line = b.substr(pos, eol - pos);
    unsigned char out[80];
    int n = EVP_DecodeBlock(out, reinterpret_cast<const unsigned char*>(line.data()), static_cast<int>(line.size()));
    ASSERT_GT(n, 0);
    size_t pad = line.size() - line.find_last_not_of('=') - 1;
    decoded.append(reinterpret_cast<char*>(out), static_cast<size_t>(n) - pad);
    pos = eol + 2;
    ++lines;
  }
  EXPECT_EQ(lines, (1000u + 56) / 57);
  EXPECT_EQ(decoded, data);
  EXPECT_EQ(base64_lines(""), "");
}

TEST(CryptoMime, BoundariesAreFreshAndOutsideBase64) {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    auto b = make_boundary();
    EXPECT_EQ(b.rfind("=_sealgate_", 0), 0u);
    EXPECT_EQ(b.size(), 35u);
    seen.insert(b);
  }
  EXPECT_EQ(seen.size(), 100u);
}

TEST(CryptoAddress, OwnerNamesFollowTheRfcExamples) {
  // RFC 7929 3 and RFC 8162 3 both use hugh@example.com.
  EXPECT_EQ(openpgpkey_name("hugh@example.com"),
            "c93f1e400f26708f98cb19d936620da35eec8f72e57f9eec01c1afd6._openpgpkey.example.com");
  EXPECT_EQ(smimea_name("hugh@Example.COM."),
            "c93f1e400f26708f98cb19d936620da35eec8f72e57f9eec01c1afd6._smimecert.example.com");
  EXPECT_NE(openpgpkey_name("Hugh@example.com"), openpgpkey_name("hugh@example.com"));  // not lower-cased
  EXPECT_EQ(openpgpkey_name("no-at-sign"), "");
}

TEST(CryptoAddress, Matching) {
  EXPECT_TRUE(address_matches("alice@Example.ORG", "alice@example.org", false));
  EXPECT_FALSE(address_matches("Alice@example.org", "alice@example.org", false));
  EXPECT_FALSE(address_matches("alice@example.org.evil", "alice@example.org", false));
  EXPECT_FALSE(address_matches("alice@example.org", "alice+news@example.org", false));
  EXPECT_TRUE(address_matches("alice@example.org", "alice+news@example.org", true));
  EXPECT_TRUE(address_matches("alice+x@example.org", "alice+news@example.org", true));
  EXPECT_FALSE(address_matches("alicex@example.org", "alice+news@example.org", true));
  EXPECT_TRUE(address_matches("a@b@example.org", "a@b@example.org", false));  // the last @ splits
  EXPECT_FALSE(parse_address("@example.org"));
  EXPECT_FALSE(parse_address("alice@"));
  EXPECT_FALSE(parse_address("alice"));
}

// Hostile input: mutated messages never crash the reader (ASan checks the
// bounds in the sanitizer pass), and whatever splits keeps its body intact
// inside the wrapped entity.
TEST(CryptoMime, MutatedMessagesAreHandledSafely) {
  std::mt19937 random(42);
  const std::string seed_message =
      "From: a@example.org\r\nTo: b@example.com\r\nSubject: x\r\n y\r\nContent-Type: multipart/encrypted;\r\n"
      " protocol=\"application/pgp-encrypted\"; boundary=\"q\\\"\"; smime-type=\r\nX: \r\n\r\n--q\r\nbody\r\n";
  const char specials[] = {'\r', '\n', ' ', '\t', ':', ';', '=', '"', '\\', '\0', '\xff'};
  int parsed = 0;
  for (int round = 0; round < 3000; ++round) {
    std::string m = seed_message;
    int edits = 1 + static_cast<int>(random() % 8);
    for (int e = 0; e < edits && !m.empty(); ++e) {
      size_t at = random() % m.size();
      switch (random() % 3) {
        case 0: m[at] = specials[random() % sizeof specials]; break;
        case 1: m.erase(at, 1 + random() % 4); break;
        default: m.insert(at, 1, specials[random() % sizeof specials]); break;
      }
    }
    auto s = split(m);
    if (!s) continue;
    ++parsed;
    (void)already_encrypted(*s);
    for (auto& f : s->fields) {
      auto v = f.value();
      (void)media_type(v);
      (void)parameter(v, "boundary");
      (void)parameter(v, "smime-type");
    }
    auto w = wrap(*s, {"...", (round & 1) != 0});
    ASSERT_GE(w.inner.size(), s->body.size());
    EXPECT_EQ(w.inner.substr(w.inner.size() - s->body.size()), s->body);
    (void)prepare(m, 1);
  }
  EXPECT_GT(parsed, 500);  // the mutations must leave enough parsable messages to test wrap()
}
