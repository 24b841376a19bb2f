// Verified HTTPS GET over Beast; see https_get.hpp. Must never accept an
// unverified certificate or an unbounded body, and never log the body.
#include "crypto/https_get.hpp"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

namespace sealgate::crypto {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {
std::string describe_error(const boost::system::error_code& ec, std::string_view step) {
  if (ec == beast::error::timeout) return std::string(step) + ": timeout";
  return std::string(step) + ": " + ec.message();
}
}  // namespace

asio::awaitable<https_response> https_get(https_request req) {
  https_response out;
  if (!req.context) {
    out.error = "no TLS context";
    co_return out;
  }
  auto executor = co_await asio::this_coro::executor;
  asio::ssl::stream<beast::tcp_stream> stream(executor, *req.context);
  auto deadline = std::chrono::steady_clock::now() + req.timeout;
  auto use = asio::as_tuple(asio::use_awaitable);

  boost::system::error_code ec;
  bool connected = false;
  for (const auto& address : req.addresses) {
    beast::get_lowest_layer(stream).expires_at(deadline);
    std::tie(ec) = co_await beast::get_lowest_layer(stream).async_connect(asio::ip::tcp::endpoint(address, req.port), use);
    if (!ec) {
      connected = true;
      break;
    }
    beast::get_lowest_layer(stream).close();
  }
  if (!connected) {
    out.error = req.addresses.empty() ? "connect: no address" : describe_error(ec, "connect");
    co_return out;
  }

  // Verification fails the handshake here (unlike SMTP): an MTA-STS policy or
  // a key from an unverified server is worth nothing (RFC 8461 3.3).
  // OpenSSL checks the name as part of the chain (SSL_set1_host), so that a
  // failure names its reason (X509_V_ERR_HOSTNAME_MISMATCH) rather than an
  // unspecified one from a callback.
  SSL_set_tlsext_host_name(stream.native_handle(), req.host.c_str());
  SSL_set_hostflags(stream.native_handle(), X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  if (SSL_set1_host(stream.native_handle(), req.host.c_str()) != 1) {
    out.error = "TLS: cannot check host name " + req.host;
    co_return out;
  }
  stream.set_verify_mode(asio::ssl::verify_peer);
  beast::get_lowest_layer(stream).expires_at(deadline);
  std::tie(ec) = co_await stream.async_handshake(asio::ssl::stream_base::client, use);
  if (ec) {
    long v = SSL_get_verify_result(stream.native_handle());
    out.error = v != X509_V_OK ? std::string("TLS: certificate not verified: ") + X509_verify_cert_error_string(v)
                               : describe_error(ec, "TLS handshake");
    co_return out;
  }

  http::request<http::string_body> request(req.post_body ? http::verb::post : http::verb::get, req.target, 11);
  request.set(http::field::host, req.port == 443 ? req.host : req.host + ":" + std::to_string(req.port));
  request.set(http::field::user_agent, "sealgate");
  request.set(http::field::connection, "close");
  if (req.post_body) {
    request.set(http::field::content_type, req.post_content_type);
    request.body() = *req.post_body;
    request.prepare_payload();
  }
  beast::get_lowest_layer(stream).expires_at(deadline);
  std::tie(ec, std::ignore) = co_await http::async_write(stream, request, use);
  if (ec) {
    out.error = describe_error(ec, "request");
    co_return out;
  }

  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.header_limit(16 * 1024);
  parser.body_limit(req.max_body);
  beast::get_lowest_layer(stream).expires_at(deadline);
  std::tie(ec, std::ignore) = co_await http::async_read(stream, buffer, parser, use);
  if (ec) {
    out.error = ec == http::error::body_limit ? "response: body larger than " + std::to_string(req.max_body) + " octets"
                                              : describe_error(ec, "response");
    co_return out;
  }
  auto& response = parser.get();
  out.ok = true;
  out.status = static_cast<int>(response.result_int());
  out.content_type = std::string(response[http::field::content_type]);
  out.body = std::move(response.body());
  // close_notify, briefly: the response is complete whatever the server does next.
  beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(2));
  co_await stream.async_shutdown(use);
  co_return out;
}

}  // namespace sealgate::crypto
