// The asynchronous resolver: c-ares driven by the gateway's io_context. Its
// sockets are watched by Asio and its timeouts by a steady_timer; every c-ares
// call for the channel happens on one strand, and no thread ever blocks on a
// query. Answers are parsed by our own parser (message.hpp), cached (cache.hpp)
// and returned with their outcome, TTL and whether they are DNSSEC-secure.
#pragma once
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <memory>
#include <string>
#include <vector>

#include "dns/lookup.hpp"
#include "dns/options.hpp"

namespace sealgate::dns {

// Lifetimes: the resolver must outlive the lookups started on it (mx_hosts
// calls back into it), and should be destroyed before its io_context, so that
// c-ares's sockets and timer go while the reactor still exists.
class resolver {
 public:
  // Throws std::runtime_error when c-ares cannot be set up (bad servers,
  // unreadable resolv.conf).
  resolver(boost::asio::any_io_executor executor, resolver_options options);
  ~resolver();
  resolver(const resolver&) = delete;
  resolver& operator=(const resolver&) = delete;

  boost::asio::awaitable<a_result> resolve_a(std::string name);
  boost::asio::awaitable<aaaa_result> resolve_aaaa(std::string name);
  boost::asio::awaitable<mx_result> resolve_mx(std::string name);
  boost::asio::awaitable<txt_result> resolve_txt(std::string name);
  boost::asio::awaitable<tlsa_result> resolve_tlsa(std::string name);
  boost::asio::awaitable<smimea_result> resolve_smimea(std::string name);
  boost::asio::awaitable<openpgpkey_result> resolve_openpgpkey(std::string name);

  // A and AAAA of host, merged (lookup.hpp address_set).
  boost::asio::awaitable<address_set> resolve_addresses(std::string host);

  // Where mail for domain goes: MX rules, null MX, implicit MX (lookup.hpp).
  boost::asio::awaitable<mx_set> mx_hosts(std::string domain);

  // True when every server in use is on loopback, so that its AD bit can be
  // believed (as Postfix's smtp_dns_support_level=dnssec and maddy require).
  bool trusts_ad() const;
  std::vector<std::string> servers() const;

  // A raw answer for (name, type), from the cache or the network, following a
  // CNAME chain that the server left unfinished with further queries; ttl and
  // trusted_ad then cover every link. Exposed for the decoders above and tests.
  struct raw_answer {
    std::vector<uint8_t> message;  // empty on a transport failure
    bool trusted_ad = false;
    bool from_cache = false;
    std::chrono::seconds ttl{0};  // cache lifetime (fresh) or what remains of it (cached)
    std::string error;            // transport failure: timeout, refused, ...
    std::string answer_name;      // the name `message` answers: the last link of a CNAME chain
  };
  boost::asio::awaitable<raw_answer> query(std::string name, rr_type type);

  struct impl;

 private:
  std::shared_ptr<impl> impl_;
};

}  // namespace sealgate::dns
