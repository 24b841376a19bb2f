// Builds OpenSSL server and client contexts and reads back negotiated
// parameters and verification results. Must never weaken the protocol floor
// below TLS 1.2.
#include "crypto/tls_context.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <stdexcept>

namespace sealgate::crypto {
namespace ssl = boost::asio::ssl;

namespace {
std::string openssl_error() {
  unsigned long e = ERR_get_error();
  if (e == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return buf;
}
}  // namespace

std::shared_ptr<ssl::context> make_server_context(const std::filesystem::path& certificate_chain,
                                                  const std::filesystem::path& private_key) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX* native = ctx->native_handle();
  SSL_CTX_set_min_proto_version(native, policy::openssl_version(policy::tls_floor));
  // No renegotiation (CVE-2009-3555 class of attacks, and a DoS vector); the server
  // picks the cipher so that clients cannot steer it to the weakest they offer.
  SSL_CTX_set_options(native, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
  if (SSL_CTX_use_certificate_chain_file(native, certificate_chain.c_str()) != 1)
    throw std::runtime_error(certificate_chain.string() + ": cannot load certificate chain: " + openssl_error());
  if (SSL_CTX_use_PrivateKey_file(native, private_key.c_str(), SSL_FILETYPE_PEM) != 1)
    throw std::runtime_error(private_key.string() + ": cannot load private key: " + openssl_error());
  if (SSL_CTX_check_private_key(native) != 1)
    throw std::runtime_error(private_key.string() + ": private key does not match the certificate: " + openssl_error());
  return ctx;
}

namespace {
// The handshake goes on whatever the chain: the result stays in the SSL
// object for describe_client_certificate, and the relay classes judge it.
int accept_any_chain(int, X509_STORE_CTX*) { return 1; }
}  // namespace

void request_client_certificates(ssl::context& ctx, const std::filesystem::path& ca_file) {
  SSL_CTX* native = ctx.native_handle();
  if (SSL_CTX_load_verify_locations(native, ca_file.c_str(), nullptr) != 1)
    throw std::runtime_error(ca_file.string() + ": cannot load CA certificates: " + openssl_error());
  // The CA names go into the CertificateRequest, so that a client with
  // several certificates picks the right one.
  if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(ca_file.c_str())) SSL_CTX_set_client_CA_list(native, names);
  SSL_CTX_set_verify(native, SSL_VERIFY_PEER, accept_any_chain);
  // Required once peers are verified, or resumed sessions fail.
  static const unsigned char context_id[] = "sealgate-smtp";
  SSL_CTX_set_session_id_context(native, context_id, sizeof context_id - 1);
}

client_certificate describe_client_certificate(const SSL* ssl) {
  client_certificate c;
  X509* cert = SSL_get0_peer_certificate(ssl);
  if (!cert) return c;
  c.presented = true;
  c.verified = SSL_get_verify_result(ssl) == X509_V_OK;
  auto name_of = [](const X509_NAME* n) {
    std::string out;
    BIO* bio = BIO_new(BIO_s_mem());
    X509_NAME_print_ex(bio, n, 0, XN_FLAG_RFC2253);
    char* data = nullptr;
    long len = BIO_get_mem_data(bio, &data);
    if (len > 0) out.assign(data, static_cast<size_t>(len));
    BIO_free(bio);
    return out;
  };
  c.issuer = name_of(X509_get_issuer_name(cert));
  c.subject = name_of(X509_get_subject_name(cert));
  if (auto* sans = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr))) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
      const GENERAL_NAME* g = sk_GENERAL_NAME_value(sans, i);
      if (g->type != GEN_DNS) continue;
      const ASN1_IA5STRING* s = g->d.dNSName;
      std::string name(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)), static_cast<size_t>(ASN1_STRING_length(s)));
      for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      c.dns_names.push_back(std::move(name));
    }
    GENERAL_NAMES_free(sans);
  }
  return c;
}

std::shared_ptr<ssl::context> make_client_context(const std::filesystem::path& ca_file, policy::tls_version min_version) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  SSL_CTX* native = ctx->native_handle();
  SSL_CTX_set_min_proto_version(native, policy::openssl_version(std::max(min_version, policy::tls_floor)));
  SSL_CTX_set_options(native, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  // SSL_VERIFY_NONE still verifies the chain (the result is in
  // SSL_get_verify_result); it only keeps a failure from aborting the
  // handshake, so that opportunistic TLS works and the result is recorded.
  SSL_CTX_set_verify(native, SSL_VERIFY_NONE, nullptr);
  if (ca_file.empty()) {
    if (SSL_CTX_set_default_verify_paths(native) != 1)
      throw std::runtime_error("cannot load the system trust store: " + openssl_error());
  } else if (SSL_CTX_load_verify_locations(native, ca_file.c_str(), nullptr) != 1) {
    throw std::runtime_error(ca_file.string() + ": cannot load CA certificates: " + openssl_error());
  }
  return ctx;
}

bool certificate_names_host(const std::vector<unsigned char>& der, const std::string& host) {
  const unsigned char* p = der.data();
  X509* cert = d2i_X509(nullptr, &p, static_cast<long>(der.size()));
  if (!cert) return false;
  // RFC 6125 6.4.3 as RFC 7672 3.2.3 narrows it: a wildcard only as the whole left-most label.
  bool ok = !host.empty() && X509_check_host(cert, host.data(), host.size(), X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, nullptr) == 1;
  X509_free(cert);
  return ok;
}

std::vector<std::vector<unsigned char>> peer_chain_der(const SSL* ssl) {
  std::vector<std::vector<unsigned char>> out;
  if (!ssl) return out;
  // Client side: the chain as sent includes the leaf (SSL_get_peer_cert_chain(3)).
  STACK_OF(X509)* chain = SSL_get_peer_cert_chain(ssl);
  for (int i = 0; chain && i < sk_X509_num(chain); ++i) {
    X509* c = sk_X509_value(chain, i);
    int n = i2d_X509(c, nullptr);
    if (n <= 0) continue;
    std::vector<unsigned char> der(static_cast<size_t>(n));
    unsigned char* p = der.data();
    i2d_X509(c, &p);
    out.push_back(std::move(der));
  }
  return out;
}

peer_verification verify_peer(const SSL* ssl, const std::string& host) {
  peer_verification v;
  if (!ssl) return v;
  X509* leaf = SSL_get0_peer_certificate(ssl);
  if (!leaf) {
    v.chain_error = "no certificate";
    return v;
  }
  v.certificate = true;
  long result = SSL_get_verify_result(ssl);
  v.chain_verified = result == X509_V_OK;
  if (!v.chain_verified) v.chain_error = X509_verify_cert_error_string(result);
  v.host_matched = !host.empty() &&
                   X509_check_host(leaf, host.data(), host.size(), X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, nullptr) == 1;
  return v;
}

tls_facts describe(const SSL* ssl) {
  tls_facts f;
  if (!ssl) return f;
  f.protocol = SSL_get_version(ssl);
  if (const SSL_CIPHER* c = SSL_get_current_cipher(ssl)) {
    f.cipher = SSL_CIPHER_get_name(c);
    f.secret_bits = SSL_CIPHER_get_bits(c, &f.algorithm_bits);
  }
  return f;
}

}  // namespace sealgate::crypto
