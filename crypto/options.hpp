// The crypto: section of the configuration as a plain struct (defaults here),
// shared by pgp, smime and key discovery. Holds paths and choices only; it
// never holds key material or passphrases.
#pragma once
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>

namespace sealgate::crypto {

enum class smime_cipher { aes_256_cbc, aes_256_gcm };
enum class rsa_padding { oaep, pkcs1v15 };

// Which key sources discovery may consult (each switchable).
struct key_sources {
  bool keyring = true;           // crypto.gnupg_home, keys the operator imported
  bool smime_directory = true;   // crypto.smime_certificates, certificates the operator put there
  bool dns_openpgpkey = true;    // RFC 7929, discovered: only DNSSEC-secure answers unless relaxed
  bool dns_smimea = true;        // RFC 8162, discovered: likewise
  // WKD (draft-koch-openpgp-webkey-service), discovered over verified HTTPS.
  // Off by default: it connects to a web server that the recipient's domain
  // chooses for every new recipient, and tells it the local part (l=).
  bool wkd = false;
};

struct crypto_options {
  std::filesystem::path gnupg_home;          // empty: PGP disabled
  std::filesystem::path smime_certificates;  // directory of recipients' PEM certificates; empty: none
  std::filesystem::path smime_ca_file;       // trust store for recipients' chains; empty: OpenSSL's default paths
  std::string pgp_signing_key;               // fingerprint of the gateway's own key; empty: cannot sign
  std::filesystem::path smime_signing_certificate;  // PEM, the gateway's certificate then its chain
  std::filesystem::path smime_signing_key;          // PEM, unencrypted (the gateway runs unattended), 0600
  smime_cipher cipher = smime_cipher::aes_256_cbc;  // CBC by default: many clients still lack GCM (RFC 8551 2.7)
  rsa_padding padding = rsa_padding::oaep;
  std::string subject = "...";  // the outer Subject when protected_headers is on
  bool protected_headers = true;
  bool fold_plus_tag = false;    // alice+tag@ matches a key for alice@
  key_sources sources;
  bool dns_require_secure = true;  // DNS keys only from DNSSEC-secure answers
  std::chrono::seconds cache_ttl{600};
  uint16_t wkd_port = 443;                 // only tests use another port
  std::filesystem::path wkd_ca_file;       // trust store for WKD's HTTPS; empty: delivery.ca_file, else OpenSSL's default paths
  std::chrono::seconds wkd_timeout{15};  // one whole fetch: connect, handshake, request, response
};

std::string_view to_string(smime_cipher c);
std::string_view to_string(rsa_padding p);

}  // namespace sealgate::crypto
