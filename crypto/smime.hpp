// S/MIME 4.0 (RFC 8551) enveloped data through OpenSSL CMS, in process:
// certificate evaluation (chain, validity, key usage, address) and
// encryption, optionally signed first. CPU-bound: a 1 MiB message takes
// milliseconds, so delivery runs it on the worker pool (encrypt_async).
// Never reads a private key other than the gateway's own signing key.
#pragma once
#include <openssl/x509.h>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/mime.hpp"
#include "crypto/options.hpp"

namespace sealgate::crypto {

using certificate = std::shared_ptr<X509>;

// Every certificate in a PEM file; empty with *error set when none parse.
std::vector<certificate> read_pem_certificates(const std::filesystem::path& file, std::string* error);
certificate certificate_from_der(std::span<const uint8_t> der);
// SHA-256 of the DER certificate, lower-case hex (as `openssl x509 -fingerprint -sha256` without colons).
std::string sha256_fingerprint(const certificate& cert);

struct smime_cert_info {
  std::string subject;      // RFC 2253 form
  std::string fingerprint;  // SHA-256, hex
  std::string key_type;     // "rsa3072", "ec prime256v1"
  std::string not_after;    // "2027-01-01"
  std::vector<std::string> addresses;  // SAN rfc822Name and subject emailAddress
  bool usable = false;
  std::string why;          // when not usable
};

// How a certificate earned trust: a chain to the trust store (a file the
// operator keeps, an SMIMEA PKIX-EE record), or the DNSSEC-secure SMIMEA
// DANE-EE record itself (RFC 8162 2, RFC 7671 5.1: no chain, and the owner
// name, made from the address, binds it).
enum class cert_trust { pkix, dane_ee };

class smime_engine {
 public:
  // Loads the trust store and the signing certificate and key; throws
  // std::runtime_error naming the file that failed.
  explicit smime_engine(const crypto_options& options);
  ~smime_engine();
  smime_engine(const smime_engine&) = delete;
  smime_engine& operator=(const smime_engine&) = delete;

  // The rules: (pkix) a chain to the trust store, within its validity, key
  // usage allowing keyEncipherment (RSA) or keyAgreement (EC), the address in
  // a SAN rfc822Name or the subject emailAddress. untrusted: intermediates.
  smime_cert_info evaluate(const certificate& cert, const std::vector<certificate>& untrusted,
                           std::string_view address, cert_trust trust) const;

  // The whole entity as application/pkcs7-mime enveloped-data (AES-256-CBC)
  // or authEnveloped-data (AES-256-GCM) per crypto.smime_cipher; with sign,
  // an opaque signed-data entity is made first and enveloped (RFC 8551 3.7).
  encrypt_result encrypt(std::string_view message, const std::vector<certificate>& to, bool sign) const;

  bool can_sign() const;

  struct impl;

 private:
  std::unique_ptr<impl> impl_;
};

boost::asio::awaitable<encrypt_result> encrypt_async(boost::asio::thread_pool& pool, const smime_engine& engine,
                                                     std::string message, std::vector<certificate> to, bool sign);

}  // namespace sealgate::crypto
