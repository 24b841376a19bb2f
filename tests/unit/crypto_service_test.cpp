// crypto_service as delivery calls it (key_facts, encrypt_for), with an
// S/MIME certificate made here in process. Interoperability with other
// implementations is proven in crypto_test.py; this checks the wiring:
// which reason comes back, that the chosen certificate is used, and that an
// encrypted message passes unchanged.
#include <gtest/gtest.h>
#include <openssl/cms.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <cstdio>
#include <filesystem>

#include "crypto/service.hpp"
#include "crypto_test_util.hpp"

using namespace sealgate::crypto;
using sealgate::policy::fact;
using sealgate::policy::method;
namespace asio = boost::asio;

namespace {

// A self-signed RSA certificate for address, written as PEM; the key stays in memory.
EVP_PKEY* make_certificate(const std::filesystem::path& file, const std::string& address) {
  EVP_PKEY* key = EVP_RSA_gen(2048);
  X509* x = X509_new();
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), -60);
  X509_gmtime_adj(X509_getm_notAfter(x), 86400);
  X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("unit"), -1, -1, 0);
  X509_set_issuer_name(x, X509_get_subject_name(x));
  X509_set_pubkey(x, key);
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, x, x, nullptr, nullptr, 0);
  for (auto [nid, value] : {std::pair{NID_subject_alt_name, "email:" + address},
                            std::pair{NID_key_usage, std::string("critical,keyEncipherment,keyCertSign")}}) {
    X509_EXTENSION* ext = X509V3_EXT_nconf_nid(nullptr, &ctx, nid, value.c_str());
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
  }
  X509_sign(x, key, EVP_sha256());
  FILE* f = std::fopen(file.c_str(), "w");
  PEM_write_X509(f, x);
  std::fclose(f);
  X509_free(x);
  return key;
}

std::string decrypt(const std::string& message, EVP_PKEY* key) {
  BIO* in = BIO_new_mem_buf(message.data(), static_cast<int>(message.size()));
  CMS_ContentInfo* cms = SMIME_read_CMS(in, nullptr);
  BIO* out = BIO_new(BIO_s_mem());
  std::string plain;
  if (cms && CMS_decrypt(cms, key, nullptr, nullptr, out, CMS_BINARY) == 1) {
    char* p = nullptr;
    long n = BIO_get_mem_data(out, &p);
    plain.assign(p, static_cast<size_t>(n));
  }
  CMS_ContentInfo_free(cms);
  BIO_free(in);
  BIO_free(out);
  return plain;
}

class ServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sealgate-svc-XXXXXX";
    dir_ = mkdtemp(tmpl);
    std::filesystem::create_directory(dir_ / "certs");
    key_ = make_certificate(dir_ / "certs" / "bob.pem", "bob@example.org");
    options_.smime_certificates = dir_ / "certs";
    options_.smime_ca_file = dir_ / "certs" / "bob.pem";  // its own anchor
    options_.sources.dns_openpgpkey = options_.sources.dns_smimea = false;
  }
  void TearDown() override {
    EVP_PKEY_free(key_);
    std::filesystem::remove_all(dir_);
  }
  template <typename T>
  T run(asio::awaitable<T> a) {
    return test_util::run_to_end(io_, std::move(a));
  }

  std::filesystem::path dir_;
  EVP_PKEY* key_ = nullptr;
  crypto_options options_;
  asio::io_context io_;
  asio::thread_pool pool_{1};
};

const std::string message = "From: a@example.org\r\nTo: bob@example.org\r\nSubject: hi\r\n\r\nhello\r\n";

}  // namespace

TEST_F(ServiceTest, KeyFactsAndEncryptionAgree) {
  crypto_service svc(options_, nullptr, pool_);
  auto facts = run(svc.key_facts("bob@example.org"));
  EXPECT_EQ(facts.smime, fact::found);
  EXPECT_EQ(facts.pgp, fact::absent);  // no gnupg_home: proven unavailable
  std::string why;
  std::string key_id;
  auto out = run(svc.encrypt_for(method::smime, "bob@example.org", std::make_shared<const std::string>(message), &why,
                                 &key_id));
  ASSERT_TRUE(out) << why;
  // The record names the certificate used: its SHA-256, as openssl x509 -fingerprint -sha256 shows it.
  {
    FILE* f = std::fopen((dir_ / "certs" / "bob.pem").c_str(), "r");
    ASSERT_TRUE(f);
    X509* cert = PEM_read_X509(f, nullptr, nullptr, nullptr);
    std::fclose(f);
    ASSERT_TRUE(cert);
    unsigned char md[32];
    unsigned n = sizeof md;
    ASSERT_EQ(X509_digest(cert, EVP_sha256(), md, &n), 1);
    X509_free(cert);
    std::string hex;
    for (unsigned i = 0; i < n; ++i) {
      char b[3];
      std::snprintf(b, sizeof b, "%02x", md[i]);
      hex += b;
    }
    EXPECT_EQ(key_id, hex);
  }
  EXPECT_NE(out->find("Content-Type: application/pkcs7-mime; smime-type=enveloped-data"), std::string::npos);
  EXPECT_NE(out->find("\r\nSubject: ...\r\n"), std::string::npos);
  EXPECT_EQ(decrypt(*out, key_),
            "From: a@example.org\r\nTo: bob@example.org\r\nSubject: hi\r\n"
            "Content-Type: text/plain; charset=us-ascii; protected-headers=\"v1\"\r\n\r\nhello\r\n");
  EXPECT_FALSE(svc.can_sign(method::smime));
}

TEST_F(ServiceTest, ReasonsWhenTheMethodCannotBeUsed) {
  crypto_service svc(options_, nullptr, pool_);
  auto content = std::make_shared<const std::string>(message);
  std::string why;
  EXPECT_FALSE(run(svc.encrypt_for(method::pgp, "bob@example.org", content, &why)));
  EXPECT_EQ(why, "pgp: crypto.gnupg_home is not set");
  EXPECT_FALSE(run(svc.encrypt_for(method::smime, "carol@example.org", content, &why)));
  EXPECT_EQ(why, "smime: no usable key for carol@example.org; smime_directory: absent (no certificate for "
                 "carol@example.org among 1 in " + options_.smime_certificates.string() + ")");
  EXPECT_FALSE(run(svc.encrypt_for(method::tls, "bob@example.org", content, &why)));
  EXPECT_EQ(why, "not an encryption method: tls");
  auto o = run(svc.encrypt(method::smime, {"carol@example.org"}, message, false));
  EXPECT_TRUE(o.no_key);
  EXPECT_FALSE(o.tempfail);
}

TEST_F(ServiceTest, AlreadyEncryptedPassesUnchanged) {
  crypto_service svc(options_, nullptr, pool_);
  std::string enc = "To: bob@example.org\r\nContent-Type: application/pkcs7-mime; smime-type=enveloped-data\r\n\r\nMIAG\r\n";
  auto o = run(svc.encrypt(method::smime, {"bob@example.org"}, enc, false));
  ASSERT_TRUE(o.message);
  EXPECT_TRUE(o.already_encrypted);
  EXPECT_EQ(*o.message, enc);
}

TEST_F(ServiceTest, AFailedLookupIsATemporaryFailure) {
  options_.smime_certificates = dir_ / "gone";
  crypto_service svc(options_, nullptr, pool_);
  auto o = run(svc.encrypt(method::smime, {"bob@example.org"}, message, false));
  EXPECT_FALSE(o.message);
  EXPECT_TRUE(o.tempfail);
  EXPECT_EQ(run(svc.key_facts("bob@example.org")).smime, fact::tempfail);
}
