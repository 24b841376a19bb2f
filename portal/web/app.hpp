// What the portal answers to one HTTP request, apart from the connection that
// carried it (server.hpp): routes, the code flow, sessions, CSRF, rate
// limits, security headers. Blocking (the store, decryption): the server calls
// it from its worker pool.
//
//   GET  /m/TOKEN           the entry's page: "send me a code", "enter the
//                           code", or the message itself; changes nothing
//   POST /m/TOKEN/code      sends a one-time code to the recipient
//   POST /m/TOKEN/verify    checks a code; opens a session for this browser
//   GET  /m/TOKEN/a/N       attachment N (session needed)
//   POST /m/TOKEN/reply     a reply to the original sender (session needed)
//   GET  /style.css /logo   the page's style sheet and the organisation's logo
//
// The browser is known by one cookie, __Host-sg (a random token, set on the
// first page); the store keeps only its hash. Codes are bound to it, sessions
// are it, and every form carries a CSRF token derived from it.
#pragma once
#include <boost/asio/ip/address.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "common/log.hpp"
#include "portal/store/portal_config.hpp"
#include "portal/store/store.hpp"

namespace sealgate::portal {

using http_request = boost::beast::http::request<boost::beast::http::string_body>;
using http_response = boost::beast::http::response<boost::beast::http::string_body>;

// Headers every response carries (exposed for tests).
void add_security_headers(http_response& r);

// Requests per client address per minute, in memory (one portal process).
class rate_limiter {
 public:
  explicit rate_limiter(unsigned per_minute) : per_minute_(per_minute) {}
  // False when the address has used up its minute.
  bool allow(const std::string& client, int64_t now);

 private:
  unsigned per_minute_;
  std::mutex mutex_;
  std::map<std::string, std::pair<int64_t, unsigned>> windows_;  // client -> (minute, count)
};

class portal_app {
 public:
  portal_app(portal_config config, std::unique_ptr<store> s);
  // peer: the TCP peer; the client is derived from it per request (a load
  // balancer may carry several clients' requests on one connection).
  http_response handle(const http_request& request, const boost::asio::ip::address& peer, int64_t now);
  // The largest request body a target may send (the reply form takes attachments).
  uint64_t body_limit(std::string_view target) const;

 private:
  struct context;
  http_response entry_page(context& c);
  http_response request_code(context& c);
  http_response verify_code(context& c);
  http_response download(context& c, std::string_view index);
  http_response reply(context& c);
  http_response static_file(std::string_view path, const http_request& request);
  std::optional<std::string> open_for(context& c);  // the decrypted message of an authorised session

  portal_config config_;
  std::unique_ptr<store> store_;
  std::mutex store_mutex_;  // one SQLite handle, one thread at a time
  rate_limiter limiter_;
  rate_limited_warning forwarded_malformed_;
  std::string logo_;
};

}  // namespace sealgate::portal
