// A small verified HTTPS GET (Beast) for fetching policies and keys (MTA-STS,
// RFC 8461 3.3; WKD), and a POST for sending TLS reports (RFC 8460 5.2). The certificate chain must verify against the
// context's trust store and name `host`, or nothing is returned. Never follows
// redirects (RFC 8461 3.3 forbids it), never reads more than max_body octets.
#pragma once
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace sealgate::crypto {

struct https_request {
  std::string host;    // SNI, certificate name and Host header
  uint16_t port = 443;
  std::string target = "/";
  // Where to connect, tried in order. The caller resolves host (with the
  // gateway's own resolver), so that this stays free of DNS.
  std::vector<boost::asio::ip::address> addresses;
  std::chrono::milliseconds timeout{60000};  // the whole fetch: connect, handshake, request, response
  size_t max_body = 64 * 1024;               // RFC 8461 3.3 suggests 64 KB for policies
  std::shared_ptr<boost::asio::ssl::context> context;  // a client context (make_client_context)
  // Set: a POST of this body with this Content-Type (RFC 8460 5.2's reports)
  // instead of a GET.
  std::optional<std::string> post_body;
  std::string post_content_type;
};

struct https_response {
  bool ok = false;     // a complete response came from a verified server
  int status = 0;      // HTTP status code
  std::string content_type;
  std::string body;
  std::string error;   // when !ok: connect, TLS, verification, timeout, size or HTTP syntax failure
};

// Runs on the calling coroutine's executor. With request.post_body set it
// POSTs (see https_post).
boost::asio::awaitable<https_response> https_get(https_request request);
inline boost::asio::awaitable<https_response> https_post(https_request request) {
  return https_get(std::move(request));
}

}  // namespace sealgate::crypto
