// S/MIME through OpenSSL CMS; see smime.hpp. All OpenSSL objects are owned
// by unique_ptrs with their free functions; errors come back as text, never
// with message content in them.
#include "crypto/smime.hpp"

#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include <stdexcept>

#include "crypto/address.hpp"
#include "common/worker.hpp"

namespace sealgate::crypto {
namespace {

template <auto Free>
struct freer {
  template <typename T>
  void operator()(T* p) const {
    Free(p);
  }
};
using bio_ptr = std::unique_ptr<BIO, freer<BIO_free>>;
using cms_ptr = std::unique_ptr<CMS_ContentInfo, freer<CMS_ContentInfo_free>>;
using pkey_ptr = std::unique_ptr<EVP_PKEY, freer<EVP_PKEY_free>>;
using store_ptr = std::unique_ptr<X509_STORE, freer<X509_STORE_free>>;
using store_ctx_ptr = std::unique_ptr<X509_STORE_CTX, freer<X509_STORE_CTX_free>>;
struct stack_free {
  void operator()(STACK_OF(X509) * s) const { sk_X509_free(s); }  // the certificates belong to shared_ptrs
};
using stack_ptr = std::unique_ptr<STACK_OF(X509), stack_free>;

certificate own(X509* x) { return certificate(x, X509_free); }

// OpenSSL's error queue is per thread: drained into the reason, then cleared.
std::string openssl_error(std::string_view what) {
  std::string out(what);
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    out += std::string("; ") + buf;
  }
  return out;
}

std::string hex(const unsigned char* p, unsigned n) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < n; ++i) {
    out += digits[p[i] >> 4];
    out += digits[p[i] & 15];
  }
  return out;
}

std::string date_of(const ASN1_TIME* t) {
  struct tm tm {};
  if (!t || ASN1_TIME_to_tm(t, &tm) != 1) return "?";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
  return buf;
}

std::vector<std::string> addresses_of(X509* x) {
  std::vector<std::string> out;
  if (auto* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(x, NID_subject_alt_name, nullptr, nullptr))) {
    for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
      const GENERAL_NAME* g = sk_GENERAL_NAME_value(names, i);
      if (g->type == GEN_EMAIL)
        out.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(g->d.rfc822Name)),
                         static_cast<size_t>(ASN1_STRING_length(g->d.rfc822Name)));
    }
    GENERAL_NAMES_free(names);
  }
  const X509_NAME* subject = X509_get_subject_name(x);
  for (int i = -1; (i = X509_NAME_get_index_by_NID(subject, NID_pkcs9_emailAddress, i)) >= 0;) {
    const ASN1_STRING* s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i));
    out.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)), static_cast<size_t>(ASN1_STRING_length(s)));
  }
  return out;
}

std::string subject_of(X509* x) {
  bio_ptr b(BIO_new(BIO_s_mem()));
  X509_NAME_print_ex(b.get(), X509_get_subject_name(x), 0, XN_FLAG_RFC2253);
  char* p = nullptr;
  long n = BIO_get_mem_data(b.get(), &p);
  return std::string(p ? p : "", n > 0 ? static_cast<size_t>(n) : 0);
}

std::string key_type_of(EVP_PKEY* k) {
  if (!k) return "none";
  switch (EVP_PKEY_get_base_id(k)) {
    case EVP_PKEY_RSA: return "rsa" + std::to_string(EVP_PKEY_get_bits(k));
    case EVP_PKEY_EC: {
      char group[64] = {};
      size_t len = 0;
      EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &len);
      return std::string("ec ") + group;
    }
    default: return OBJ_nid2sn(EVP_PKEY_get_base_id(k));
  }
}

std::string der_of(CMS_ContentInfo* cms) {
  unsigned char* der = nullptr;
  int len = i2d_CMS_ContentInfo(cms, &der);
  if (len <= 0) throw std::runtime_error(openssl_error("i2d_CMS_ContentInfo"));
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  return out;
}

}  // namespace

std::vector<certificate> read_pem_certificates(const std::filesystem::path& file, std::string* error) {
  std::vector<certificate> out;
  bio_ptr b(BIO_new_file(file.c_str(), "r"));
  if (!b) {
    if (error) *error = "cannot read " + file.string();
    ERR_clear_error();
    return out;
  }
  while (X509* x = PEM_read_bio_X509(b.get(), nullptr, nullptr, nullptr)) out.push_back(own(x));
  ERR_clear_error();  // the end of the file shows up as an error
  if (out.empty() && error) *error = file.string() + ": no PEM certificate";
  return out;
}

certificate certificate_from_der(std::span<const uint8_t> der) {
  const unsigned char* p = der.data();
  X509* x = d2i_X509(nullptr, &p, static_cast<long>(der.size()));
  ERR_clear_error();
  if (x && p != der.data() + der.size()) {  // trailing octets: not one certificate
    X509_free(x);
    return nullptr;
  }
  return x ? own(x) : nullptr;
}

std::string sha256_fingerprint(const certificate& cert) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned n = 0;
  X509_digest(cert.get(), EVP_sha256(), md, &n);
  return hex(md, n);
}

struct smime_engine::impl {
  crypto_options options;
  store_ptr store;
  certificate signing_cert;
  std::vector<certificate> signing_chain;
  pkey_ptr signing_key;
};

smime_engine::smime_engine(const crypto_options& options) : impl_(std::make_unique<impl>()) {
  impl_->options = options;
  impl_->store.reset(X509_STORE_new());
  if (!impl_->store) throw std::runtime_error(openssl_error("X509_STORE_new"));
  if (options.smime_ca_file.empty()) {
    if (X509_STORE_set_default_paths(impl_->store.get()) != 1)
      throw std::runtime_error(openssl_error("OpenSSL's default trust store"));
  } else if (X509_STORE_load_file(impl_->store.get(), options.smime_ca_file.c_str()) != 1) {
    throw std::runtime_error(openssl_error("crypto.smime_ca_file " + options.smime_ca_file.string() + ": cannot load"));
  }
  if (!options.smime_signing_certificate.empty()) {
    std::string error;
    auto chain = read_pem_certificates(options.smime_signing_certificate, &error);
    if (chain.empty()) throw std::runtime_error("crypto.smime_signing_certificate: " + error);
    impl_->signing_cert = chain.front();
    impl_->signing_chain.assign(chain.begin() + 1, chain.end());
    bio_ptr b(BIO_new_file(options.smime_signing_key.c_str(), "r"));
    // A null passphrase callback argument would prompt on the terminal: an empty one fails instead.
    static char empty[] = "";
    EVP_PKEY* k = b ? PEM_read_bio_PrivateKey(b.get(), nullptr, nullptr, empty) : nullptr;
    if (!k)
      throw std::runtime_error(openssl_error("crypto.smime_signing_key " + options.smime_signing_key.string() +
                                             ": cannot read an unencrypted PEM private key"));
    impl_->signing_key.reset(k);
    if (X509_check_private_key(impl_->signing_cert.get(), k) != 1)
      throw std::runtime_error(openssl_error("crypto.smime_signing_key does not belong to crypto.smime_signing_certificate"));
  }
  ERR_clear_error();
}

smime_engine::~smime_engine() = default;

bool smime_engine::can_sign() const { return impl_->signing_key != nullptr; }

smime_cert_info smime_engine::evaluate(const certificate& cert, const std::vector<certificate>& untrusted,
                                       std::string_view address, cert_trust trust) const {
  smime_cert_info info;
  X509* x = cert.get();
  info.subject = subject_of(x);
  info.fingerprint = sha256_fingerprint(cert);
  EVP_PKEY* key = X509_get0_pubkey(x);
  info.key_type = key_type_of(key);
  info.not_after = date_of(X509_get0_notAfter(x));
  info.addresses = addresses_of(x);
  int id = key ? EVP_PKEY_get_base_id(key) : 0;
  uint32_t ku = X509_get_key_usage(x);       // UINT32_MAX: no extension, every use allowed
  uint32_t xku = X509_get_extended_key_usage(x);
  bool address_ok = false;
  for (auto& a : info.addresses) address_ok |= address_matches(a, address, impl_->options.fold_plus_tag);

  if (X509_cmp_current_time(X509_get0_notAfter(x)) < 0) info.why = "expired on " + info.not_after;
  else if (X509_cmp_current_time(X509_get0_notBefore(x)) > 0) info.why = "not valid before " + date_of(X509_get0_notBefore(x));
  else if (id != EVP_PKEY_RSA && id != EVP_PKEY_EC) info.why = "key type " + info.key_type + " cannot encrypt";
  else if (id == EVP_PKEY_RSA && !(ku & KU_KEY_ENCIPHERMENT)) info.why = "key usage lacks keyEncipherment (RFC 8550 4.4.2)";
  else if (id == EVP_PKEY_EC && !(ku & KU_KEY_AGREEMENT)) info.why = "key usage lacks keyAgreement (RFC 8550 4.4.2)";
  else if (xku != UINT32_MAX && !(xku & (XKU_SMIME | XKU_ANYEKU))) info.why = "extended key usage lacks emailProtection";
  else if (trust == cert_trust::pkix && !address_ok) info.why = "address " + std::string(address) + " not in subjectAltName rfc822Name or emailAddress";
  if (!info.why.empty()) {
    ERR_clear_error();
    return info;
  }
  if (trust == cert_trust::pkix) {
    stack_ptr chain(sk_X509_new_null());
    for (auto& c : untrusted) sk_X509_push(chain.get(), c.get());
    store_ctx_ptr ctx(X509_STORE_CTX_new());
    if (!ctx || X509_STORE_CTX_init(ctx.get(), impl_->store.get(), x, chain.get()) != 1) {
      info.why = openssl_error("X509_STORE_CTX_init");
      return info;
    }
    if (X509_verify_cert(ctx.get()) != 1) {
      int err = X509_STORE_CTX_get_error(ctx.get());
      info.why = std::string("no chain to the trust store: ") + X509_verify_cert_error_string(err);
      ERR_clear_error();
      return info;
    }
  }
  info.usable = true;
  ERR_clear_error();
  return info;
}

encrypt_result smime_engine::encrypt(std::string_view message, const std::vector<certificate>& to, bool sign) const {
  auto prepared = prepare(message, to.size());
  if (auto* done = std::get_if<encrypt_result>(&prepared)) return std::move(*done);
  const split_message* m = &std::get<split_message>(prepared);
  encrypt_result r;
  if (sign && !impl_->signing_key) {
    r.error = "signing asked for, but crypto.smime_signing_certificate is not set";
    return r;
  }
  try {
    auto w = wrap(*m, {impl_->options.subject, impl_->options.protected_headers});
    std::string content = std::move(w.inner);
    if (sign) {
      // Opaque signed-data (RFC 8551 3.5.2): the signed octets travel inside
      // the CMS structure, so no transfer encoding can break the signature,
      // and 8-bit or binary parts need no re-encoding.
      stack_ptr chain(sk_X509_new_null());
      for (auto& c : impl_->signing_chain) sk_X509_push(chain.get(), c.get());
      bio_ptr in(BIO_new_mem_buf(content.data(), static_cast<int>(content.size())));
      cms_ptr signed_data(CMS_sign(impl_->signing_cert.get(), impl_->signing_key.get(), chain.get(), in.get(), CMS_BINARY));
      if (!signed_data) throw std::runtime_error(openssl_error("CMS_sign"));
      content = "Content-Type: application/pkcs7-mime; smime-type=signed-data; name=\"smime.p7m\"\r\n"
                "Content-Transfer-Encoding: base64\r\n"
                "Content-Disposition: attachment; filename=\"smime.p7m\"\r\n"
                "\r\n" +
                base64_lines(der_of(signed_data.get()));
    }
    bool gcm = impl_->options.cipher == smime_cipher::aes_256_gcm;
    // RFC 8551 2.7: AES-256-GCM is AuthEnvelopedData (RFC 5083); OpenSSL 3
    // makes that structure when given an AEAD cipher.
    cms_ptr cms(CMS_encrypt(nullptr, nullptr, gcm ? EVP_aes_256_gcm() : EVP_aes_256_cbc(), CMS_BINARY | CMS_PARTIAL));
    if (!cms) throw std::runtime_error(openssl_error("CMS_encrypt"));
    for (const auto& c : to) {
      EVP_PKEY* key = X509_get0_pubkey(c.get());
      bool rsa = key && EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA;
      // RSA needs its padding set before the key is wrapped; EC gets ECDH
      // key agreement (RFC 5753) with OpenSSL's defaults.
      CMS_RecipientInfo* ri = CMS_add1_recipient_cert(cms.get(), c.get(), rsa ? CMS_KEY_PARAM : 0);
      if (!ri) throw std::runtime_error(openssl_error("recipient " + subject_of(c.get())));
      if (rsa) {
        EVP_PKEY_CTX* pctx = CMS_RecipientInfo_get0_pkey_ctx(ri);
        bool ok = pctx != nullptr;
        if (ok && impl_->options.padding == rsa_padding::oaep) {
          // RFC 8551 2.3 / RFC 8017: RSAES-OAEP with SHA-256 for both hash and MGF1.
          ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_OAEP_PADDING) > 0 &&
               EVP_PKEY_CTX_set_rsa_oaep_md(pctx, EVP_sha256()) > 0 && EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) > 0;
        } else if (ok) {
          ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) > 0;
        }
        if (!ok) throw std::runtime_error(openssl_error("setting RSA padding"));
      }
    }
    bio_ptr in(BIO_new_mem_buf(content.data(), static_cast<int>(content.size())));
    if (CMS_final(cms.get(), in.get(), nullptr, CMS_BINARY) != 1) throw std::runtime_error(openssl_error("CMS_final"));
    std::string body = base64_lines(der_of(cms.get()));
    std::string out = std::move(w.outer_headers);
    out.reserve(out.size() + body.size() + 300);
    out += "MIME-Version: 1.0\r\n";
    out += gcm ? "Content-Type: application/pkcs7-mime; smime-type=authEnveloped-data; name=\"smime.p7m\"\r\n"
               : "Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name=\"smime.p7m\"\r\n";
    out += "Content-Transfer-Encoding: base64\r\n"
           "Content-Disposition: attachment; filename=\"smime.p7m\"\r\n"
           "\r\n";
    out += body;
    r.state = encrypt_result::status::encrypted;
    r.message = std::move(out);
  } catch (const std::exception& e) {
    r.error = e.what();
  }
  ERR_clear_error();
  return r;
}

boost::asio::awaitable<encrypt_result> encrypt_async(boost::asio::thread_pool& pool, const smime_engine& engine,
                                                     std::string message, std::vector<certificate> to, bool sign) {
  const smime_engine* e = &engine;
  std::function<encrypt_result()> work = [e, &message, &to, sign] { return e->encrypt(message, to, sign); };
  encrypt_result r = co_await on_pool<encrypt_result>(pool, work);
  co_return r;
}

std::string_view to_string(smime_cipher c) { return c == smime_cipher::aes_256_gcm ? "aes-256-gcm" : "aes-256-cbc"; }
std::string_view to_string(rsa_padding p) { return p == rsa_padding::oaep ? "oaep" : "pkcs1v15"; }

}  // namespace sealgate::crypto
