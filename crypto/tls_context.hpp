// TLS contexts for sealgate's listeners and its outbound client. Owns OpenSSL
// configuration choices (protocol floor, options, trust store); never performs
// I/O on a connection.
#pragma once
#include <boost/asio/ssl/context.hpp>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "policy/tls_level.hpp"

namespace sealgate::crypto {

// A server context for inbound SMTP (STARTTLS or implicit TLS). TLS 1.2 is the
// floor: RFC 8996 deprecates 1.0 and 1.1. Throws std::runtime_error naming the
// file that could not be loaded.
std::shared_ptr<boost::asio::ssl::context> make_server_context(const std::filesystem::path& certificate_chain,
                                                               const std::filesystem::path& private_key);

// A client context for outbound SMTP and HTTPS. Trust store: ca_file (PEM) or,
// when empty, the system store. policy::tls_floor is the floor unless
// min_version says more. Peer verification does not fail the
// handshake: the chain is still verified and the result kept in the SSL object
// (peer_verification), so that the caller records it and the policy judges it
// (opportunistic TLS to a self-signed MX is better than clear text).
// Throws std::runtime_error naming ca_file when it cannot be loaded.
std::shared_ptr<boost::asio::ssl::context> make_client_context(const std::filesystem::path& ca_file,
                                                               policy::tls_version min_version = policy::tls_floor);

// A server context asks clients for a certificate, verified against ca_file
// (PEM) and the chain's result kept in the SSL object: a client without one,
// or with one that does not verify, still gets TLS (the relay classes judge).
void request_client_certificates(boost::asio::ssl::context& ctx, const std::filesystem::path& ca_file);

// The client's certificate after a server handshake. Issuer and subject in
// RFC 2253 form, as `openssl x509 -noout -issuer -nameopt RFC2253` prints them.
struct client_certificate {
  bool presented = false;
  bool verified = false;  // the chain ends at request_client_certificates' ca_file
  std::string issuer, subject;
  std::vector<std::string> dns_names;  // subjectAltName dNSName entries, lower case
};
client_certificate describe_client_certificate(const SSL* ssl);

// The verification facts of a finished client handshake.
struct peer_verification {
  bool certificate = false;     // the server sent a certificate
  bool chain_verified = false;  // the chain ends at the trust store (X509_V_OK)
  std::string chain_error;      // why not, in OpenSSL's words
  bool host_matched = false;    // the leaf names `host` (RFC 6125, wildcard only as the whole left-most label)
};
peer_verification verify_peer(const SSL* ssl, const std::string& host);

// The peer's certificate chain as the server sent it (leaf first), DER each.
std::vector<std::vector<unsigned char>> peer_chain_der(const SSL* ssl);

// True when cert (DER) names host. Pure, for tests and for DANE-TA name checks.
bool certificate_names_host(const std::vector<unsigned char>& der, const std::string& host);

// What a finished handshake negotiated, in the words a Received: header uses.
struct tls_facts {
  std::string protocol;  // "TLSv1.3"
  std::string cipher;    // "TLS_AES_256_GCM_SHA384"
  int secret_bits = 0;   // bits used
  int algorithm_bits = 0;
};
tls_facts describe(const SSL* ssl);

}  // namespace sealgate::crypto
