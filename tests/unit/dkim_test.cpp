// DKIM signing (crypto/dkim): the RFC 8463 Appendix A signatures reproduced
// byte for byte with the RFC's keys and tags, the canonicalisations' edge
// cases, keys and their records. dkimpy checks whole messages in
// tests/integration/intake_test.py.
#include "crypto/dkim.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/text.hpp"

using namespace sealgate::crypto;
namespace fs = std::filesystem;

namespace {

const fs::path data_dir = fs::path(SEALGATE_SOURCE_DIR) / "tests/unit/data/dkim";

std::string read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string without_wsp(std::string_view s) {
  std::string out;
  for (char c : s)
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n') out += c;
  return out;
}

std::string tag_of(std::string_view field, const std::string& name) {
  auto tags = dkim_tags(field.substr(field.find(':') + 1));
  EXPECT_TRUE(tags);
  for (const auto& [k, v] : *tags)
    if (k == name) return v;
  return {};
}

std::vector<std::string> names_of(const std::string& h) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : h + ":") {
    if (c == ':') {
      out.push_back(without_wsp(cur));
      cur.clear();
    } else {
      cur += c;
    }
  }
  return out;
}

std::string body_hash(std::string_view body, bool relaxed = true) {
  dkim_body_hash h(relaxed);
  h.update(body);
  return sealgate::base64_encode(h.finish());
}

}  // namespace

// RFC 8463 A.3: both signatures, made again from the unsigned message with the
// RFC's keys (A.1) and exactly its tags, give the RFC's b= and bh= values.
TEST(Dkim, Rfc8463VectorsReproduceByteForByte) {
  std::string message = read(data_dir / "rfc8463-signed.eml");
  size_t body_at = message.find("\r\n\r\n") + 4;
  auto fields = split_header_fields(std::string_view(message).substr(0, body_at));
  ASSERT_EQ(fields.size(), 7u);
  std::vector<header_field_view> unsigned_fields(fields.begin() + 2, fields.end());
  auto rsa = dkim_private_key::load(data_dir / "rfc8463-rsa.pem", nullptr);
  auto ed = dkim_private_key::load(data_dir / "rfc8463-ed25519.pem", nullptr);
  ASSERT_TRUE(rsa && ed);
  EXPECT_EQ(ed->algorithm(), dkim_algorithm::ed25519_sha256);
  EXPECT_EQ(ed->public_key_base64(), "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=");
  EXPECT_EQ(rsa->algorithm(), dkim_algorithm::rsa_sha256);

  for (int i = 0; i < 2; ++i) {
    std::string_view raw = fields[i].raw;
    std::string_view prefix = raw.substr(0, raw.find("b=", raw.find("bh=") + 3) + 2);
    const auto& key = tag_of(raw, "a") == "ed25519-sha256" ? *ed : *rsa;
    std::string b = dkim_signature_value(key, prefix, unsigned_fields, names_of(tag_of(raw, "h")));
    EXPECT_EQ(b, without_wsp(tag_of(raw, "b"))) << "signature " << i;
    EXPECT_EQ(body_hash(std::string_view(message).substr(body_at)), tag_of(raw, "bh"));
  }
}

TEST(Dkim, SignatureFieldIsFoldedAndSelfConsistent) {
  auto key = dkim_private_key::load(data_dir / "rfc8463-ed25519.pem", nullptr);
  ASSERT_TRUE(key);
  std::string head =
      "From: Joe SixPack <joe@football.example.com>\r\nTo: Suzie Q <suzie@shopping.example.net>\r\n"
      "Subject: Is dinner ready?\r\n\r\n";
  dkim_sign_request r{"football.example.com", "brisbane", {"from", "to", "subject", "date", "from", "subject"}, 1528637909};
  dkim_body_hash bh;
  bh.update("Hi.\r\n");
  std::string field = dkim_signature_field(*key, r, head, bh.finish());
  EXPECT_EQ(field.rfind("DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;\r\n\td=football.example.com;", 0), 0u)
      << field;
  EXPECT_EQ(field.substr(field.size() - 2), "\r\n");
  size_t start = 0;
  while (start < field.size()) {
    size_t eol = field.find("\r\n", start);
    EXPECT_LE(eol - start, 78u) << field;
    start = eol + 2;
    if (start < field.size()) {
      EXPECT_EQ(field[start], '\t');
    }
  }
  // Signing the same input gives the same value as the prefix form (the
  // field's own folding is what was hashed).
  std::string_view prefix(field);
  prefix = prefix.substr(0, prefix.find("b=", prefix.find("bh=") + 3) + 2);
  auto fields = split_header_fields(head);
  EXPECT_EQ(dkim_signature_value(*key, prefix, fields, r.names), without_wsp(tag_of(field, "b")));
  EXPECT_EQ(without_wsp(tag_of(field, "h")), "from:to:subject:date:from:subject");
}

// RFC 6376 3.4.4 and 3.4.3, and pieces split anywhere (a CRLF cut in two).
TEST(Dkim, BodyCanonicalisation) {
  auto hash_of = [](std::string_view canonical) {
    dkim_body_hash h(false);  // simple on already-canonical text hashes it as is
    h.update(canonical);
    return sealgate::base64_encode(h.finish());
  };
  EXPECT_EQ(body_hash(" C \r\nD \t E\r\n\r\n\r\n"), hash_of(" C\r\nD E\r\n"));
  EXPECT_EQ(body_hash(""), sealgate::base64_encode(std::string("\xe3\xb0\xc4\x42\x98\xfc\x1c\x14\x9a\xfb\xf4\xc8\x99\x6f\xb9\x24"
                                                               "\x27\xae\x41\xe4\x64\x9b\x93\x4c\xa4\x95\x99\x1b\x78\x52\xb8\x55",
                                                               32)));  // SHA-256 of nothing
  EXPECT_EQ(body_hash("\r\n\r\n"), body_hash(""));
  EXPECT_EQ(body_hash("a \r\n \r\nb"), hash_of("a\r\n\r\nb\r\n"));
  EXPECT_EQ(body_hash("", false), hash_of("\r\n"));  // simple: an empty body is one CRLF
  EXPECT_EQ(body_hash("a\r\n\r\n", false), hash_of("a\r\n"));
  std::string body = "line one  \r\n\tline two\r\n\r\n";
  for (size_t cut = 0; cut <= body.size(); ++cut) {
    dkim_body_hash h;
    h.update(std::string_view(body).substr(0, cut));
    h.update(std::string_view(body).substr(cut));
    EXPECT_EQ(sealgate::base64_encode(h.finish()), body_hash(body)) << cut;
  }
  dkim_body_hash limited(true, 3);
  limited.update("abcdef\r\n");
  EXPECT_EQ(sealgate::base64_encode(limited.finish()), "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=");  // SHA-256("abc")
}

TEST(Dkim, HeaderCanonicalisationAndSelection) {
  EXPECT_EQ(dkim_relaxed_header("SubJect :  A \r\n\t B  \r\n"), "subject:A B\r\n");
  EXPECT_EQ(dkim_relaxed_header("X:\r\n"), "x:\r\n");
  auto fields = split_header_fields("A: 1\r\nB: 2\r\n  more\r\nA: 3\r\n\r\nbody: no\r\n");
  ASSERT_EQ(fields.size(), 3u);
  EXPECT_EQ(fields[1].raw, "B: 2\r\n  more\r\n");
  // The last instance first, then the one above; a name listed more often
  // than it occurs adds nothing (over-signing).
  EXPECT_EQ(dkim_header_input(fields, {"a", "a", "a", "b"}, true), "a:3\r\na:1\r\nb:2 more\r\n");
  EXPECT_EQ(dkim_header_input(fields, {"B"}, false), "B: 2\r\n  more\r\n");
}

TEST(Dkim, KeysAndRecords) {
  auto rsa = dkim_private_key::generate(dkim_algorithm::rsa_sha256);
  EXPECT_EQ(rsa.bits(), 2048);
  EXPECT_EQ(rsa.dns_record().rfind("v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA", 0), 0u);
  std::string why;
  auto again = dkim_private_key::from_pem(rsa.private_pem(), &why);
  ASSERT_TRUE(again) << why;
  EXPECT_EQ(again->public_key_base64(), rsa.public_key_base64());
  auto ed = dkim_private_key::generate(dkim_algorithm::ed25519_sha256);
  EXPECT_EQ(ed.public_key_base64().size(), 44u);
  EXPECT_EQ(ed.dns_record().rfind("v=DKIM1; k=ed25519; p=", 0), 0u);

  EXPECT_FALSE(dkim_private_key::from_pem("not a key", &why));
  EXPECT_EQ(why, "not a PEM private key");
  EXPECT_FALSE(dkim_private_key::load(data_dir / "missing.pem", &why));
  EXPECT_NE(why.find("cannot read"), std::string::npos);
  // An EC key is a private key DKIM cannot use.
  auto ec_key = dkim_private_key::load(data_dir / "ec-p256.pem", &why);
  EXPECT_NE(why.find("neither an RSA nor an Ed25519"), std::string::npos) << why;
  EXPECT_FALSE(ec_key);
}
