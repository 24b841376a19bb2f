// Builds OpenSSL server contexts and reads back negotiated parameters.
// Must never weaken the protocol floor below TLS 1.2.
#include "crypto/tls_context.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>

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
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
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
