// OpenPGP Web Key Directory (draft-koch-openpgp-webkey-service): the hashed
// local part (z-base-32 of SHA-1), the advanced and direct URLs, and one
// lookup over verified HTTPS. Never treats a failed fetch as "no key", never
// imports or judges the key (keys.cpp does, on the pool).
#pragma once
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "crypto/https_get.hpp"
#include "policy/decide.hpp"

namespace sealgate::dns {
class resolver;
}

namespace sealgate::crypto {

// z-base-32 (the alphabet "ybndrfg8ejkmcpqxot1uwisza345h769"), most
// significant bit first, no padding: 20 octets give 32 characters.
std::string z_base32(std::span<const uint8_t> data);

// The draft's hashed local part: ASCII upper case folded to lower case
// (other octets kept), SHA-1, z-base-32.
std::string wkd_hash(std::string_view local);

enum class wkd_method { advanced, direct };
std::string_view to_string(wkd_method m);

struct wkd_location {
  std::string host;    // openpgpkey.<domain> or <domain>
  std::string target;  // path and query, e.g. /.well-known/openpgpkey/<domain>/hu/<hash>?l=<local>
};
// domain: lower-cased here; local: as written, percent-encoded in l=.
wkd_location wkd_url(wkd_method m, std::string_view local, std::string_view domain);

// What one HTTPS answer means (draft 3.1): 200 with a body is a key to judge;
// 404 and 410 say that this directory has none (proven absent); anything
// else (no verified connection, timeout, 5xx, a redirect that is not
// followed, another status) is a temporary failure: the key may exist.
struct wkd_answer {
  policy::fact outcome = policy::fact::tempfail;
  std::string detail;  // why absent or tempfail
};
wkd_answer classify_wkd_response(const https_response& response);

struct wkd_fetch_options {
  uint16_t port = 443;
  std::chrono::milliseconds timeout{15000};
  std::shared_ptr<boost::asio::ssl::context> context;  // make_client_context(crypto.wkd_ca_file)
};

inline constexpr size_t wkd_max_key_size = 256 * 1024;  // keys with many signatures; more is refused

struct wkd_result {
  policy::fact outcome = policy::fact::tempfail;  // found: body holds what the server sent
  wkd_method method = wkd_method::advanced;
  bool asked = false;    // a URL was fetched (host and method mean something)
  std::string host;
  std::string detail;
  std::string body;
};

// The advanced method first; the direct one only when DNS proves that
// openpgpkey.<domain> has no address (draft 3.1). A DNS failure on either
// name is a temporary failure. Runs on the calling coroutine's executor.
boost::asio::awaitable<wkd_result> wkd_fetch(dns::resolver& resolver, wkd_fetch_options options, std::string local,
                                             std::string domain);

}  // namespace sealgate::crypto
