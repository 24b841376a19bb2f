// TLS contexts for sealgate's listeners. Owns OpenSSL configuration choices
// (protocol floor, options); never performs I/O on a connection.
#pragma once
#include <boost/asio/ssl/context.hpp>
#include <filesystem>
#include <memory>
#include <string>

namespace sealgate::crypto {

// A server context for inbound SMTP (STARTTLS or implicit TLS). TLS 1.2 is the
// floor: RFC 8996 deprecates 1.0 and 1.1. Throws std::runtime_error naming the
// file that could not be loaded.
std::shared_ptr<boost::asio::ssl::context> make_server_context(const std::filesystem::path& certificate_chain,
                                                               const std::filesystem::path& private_key);

// What a finished handshake negotiated, in the words a Received: header uses.
struct tls_facts {
  std::string protocol;  // "TLSv1.3"
  std::string cipher;    // "TLS_AES_256_GCM_SHA384"
  int secret_bits = 0;   // bits used
  int algorithm_bits = 0;
};
tls_facts describe(const SSL* ssl);

}  // namespace sealgate::crypto
