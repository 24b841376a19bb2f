// Web Key Directory lookup; see wkd.hpp. Must never fall back to the direct
// method when the advanced host merely failed (that would let a blocked
// connection pick the server), and never log the key or the local part.
#include "crypto/wkd.hpp"

#include "dns/message.hpp"

#include "common/text.hpp"

#include <openssl/sha.h>

#include "dns/resolver.hpp"

namespace sealgate::crypto {
namespace asio = boost::asio;
using policy::fact;

std::string z_base32(std::span<const uint8_t> data) {
  static constexpr char alphabet[] = "ybndrfg8ejkmcpqxot1uwisza345h769";
  std::string out;
  uint32_t bits = 0;  // pending bits, right-aligned
  int count = 0;
  for (uint8_t octet : data) {
    bits = (bits << 8) | octet;
    count += 8;
    while (count >= 5) {
      count -= 5;
      out += alphabet[(bits >> count) & 31];
    }
    bits &= (1u << count) - 1;
  }
  if (count > 0) out += alphabet[(bits << (5 - count)) & 31];  // the last group, padded with zero bits
  return out;
}

std::string wkd_hash(std::string_view local) {
  // Only ASCII is folded (draft 3.1): other octets of a UTF-8 local part stay.
  std::string lower = lower_ascii(local);
  uint8_t digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(lower.data()), lower.size(), digest);
  return z_base32(digest);
}

std::string_view to_string(wkd_method m) { return m == wkd_method::advanced ? "advanced" : "direct"; }

namespace {

// RFC 3986 unreserved characters stay; everything else becomes %XX, so that
// a local part with '+', '&', '#' or '%' cannot change the query.
std::string percent_encode(std::string_view s) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
        c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

}  // namespace

wkd_location wkd_url(wkd_method m, std::string_view local, std::string_view domain) {
  std::string d = dns::canonical_name(domain);
  std::string tail = "hu/" + wkd_hash(local) + "?l=" + percent_encode(local);
  if (m == wkd_method::advanced) return {"openpgpkey." + d, "/.well-known/openpgpkey/" + d + "/" + tail};
  return {d, "/.well-known/openpgpkey/" + tail};
}

wkd_answer classify_wkd_response(const https_response& r) {
  if (!r.ok) return {fact::tempfail, r.error};
  if (r.status == 200) {
    if (r.body.empty()) return {fact::absent, "HTTP 200 with an empty body: no key"};
    return {fact::found, ""};
  }
  if (r.status == 404 || r.status == 410) return {fact::absent, "HTTP " + std::to_string(r.status) + ": no key published"};
  if (r.status >= 300 && r.status < 400)
    return {fact::tempfail, "HTTP " + std::to_string(r.status) + ": redirects are not followed"};
  return {fact::tempfail, "HTTP " + std::to_string(r.status)};
}

namespace {

struct addresses_of {
  fact outcome = fact::tempfail;
  std::vector<asio::ip::address> list;
  std::string detail;
};

// The host's addresses in WKD's terms; the absence keeps its reason, because
// only a proven absence of the advanced host allows the direct method.
asio::awaitable<addresses_of> host_addresses(dns::resolver& resolver, std::string host) {
  auto set = co_await resolver.resolve_addresses(host);
  addresses_of out;
  out.list = std::move(set.list);
  if (set.status == dns::outcome::found) {
    out.outcome = fact::found;
  } else if (set.status == dns::outcome::temporary_failure) {
    out.detail = host + ": address lookup failed: " + set.error;
  } else {
    out.outcome = fact::absent;
    out.detail = host + ": no address (" + std::string(dns::to_string(set.why_absent)) + ")";
  }
  co_return out;
}

}  // namespace

asio::awaitable<wkd_result> wkd_fetch(dns::resolver& resolver, wkd_fetch_options options, std::string local,
                                      std::string domain) {
  wkd_result out;
  auto location = wkd_url(wkd_method::advanced, local, domain);
  auto addresses = co_await host_addresses(resolver, location.host);
  if (addresses.outcome == fact::absent) {
    // Draft 3.1: the direct method only when the advanced host does not exist.
    std::string advanced_why = addresses.detail;
    out.method = wkd_method::direct;
    location = wkd_url(wkd_method::direct, local, domain);
    addresses = co_await host_addresses(resolver, location.host);
    if (addresses.outcome == fact::absent) addresses.detail = advanced_why + "; " + addresses.detail;
  }
  out.host = location.host;
  if (addresses.outcome != fact::found) {
    out.outcome = addresses.outcome;
    out.detail = addresses.detail;
    co_return out;
  }
  https_request request;
  request.host = location.host;
  request.port = options.port;
  request.target = location.target;
  request.addresses = std::move(addresses.list);
  request.timeout = options.timeout;
  request.max_body = wkd_max_key_size;
  request.context = options.context;
  out.asked = true;
  auto response = co_await https_get(std::move(request));
  auto answer = classify_wkd_response(response);
  out.outcome = answer.outcome;
  out.detail = std::move(answer.detail);
  if (out.outcome == fact::found) out.body = std::move(response.body);
  co_return out;
}

}  // namespace sealgate::crypto
