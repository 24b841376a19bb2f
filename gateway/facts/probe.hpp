// The recipient-domain probe: MX hosts, then per host (in order, up to
// delivery.probe_max_mx) banner, EHLO, STARTTLS, TLS protocol and cipher,
// chain verification, host-name match, DANE (RFC 7672) and the domain's
// MTA-STS policy (RFC 8461). Nothing is ever sent but EHLO, STARTTLS and QUIT.
// Results are cached per MX host and concurrent probes of one host coalesced.
// The probe informs delivery; it never excuses a live connection that lacks
// what the policy requires. Found, proven absent and temporary failure are
// kept apart throughout: a failed lookup is never a "no".
#pragma once
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "crypto/dane.hpp"
#include "dns/lookup.hpp"
#include "gateway/config/delivery_options.hpp"
#include "gateway/facts/mta_sts.hpp"
#include "gateway/smtp_client/smtp_client.hpp"
#include "policy/decide.hpp"

namespace sealgate::dns {
class resolver;
}

namespace sealgate::gateway {

// The state of a TLSA answer for an MX host (RFC 7672 2.2).
enum class tlsa_state {
  secure,    // TLSA records in a DNSSEC-signed zone: DANE applies
  insecure,  // answer not DNSSEC-secure (records or not): DANE does not apply
  none,      // proven by DNSSEC that there are no TLSA records: DANE does not apply
  bogus,     // the lookup failed (SERVFAIL from a validating resolver, timeout): unknown, never "none"
};
std::string_view to_string(tlsa_state s);

// One MX host's facts.
struct mx_probe {
  std::string host;
  uint16_t preference = 0;
  policy::fact reached = policy::fact::tempfail;  // found: a server answered; absent: the host has no address
  std::string address;   // the address that answered
  std::string error;     // why not reached, or where the session broke off
  remote_reply banner;
  smtp_extensions extensions;  // announced before STARTTLS
  policy::fact starttls = policy::fact::tempfail;  // found: offered; absent: EHLO lacked it
  bool tls_ok = false;        // the handshake succeeded
  std::string tls_error;
  std::string tls_protocol;   // "TLSv1.3"
  std::string tls_cipher;
  bool chain_verified = false;
  std::string chain_error;
  bool host_matched = false;
  bool address_secure = false;  // the A/AAAA answer was DNSSEC-secure (RFC 7672 2.2.2 needs it for TLSA)
  tlsa_state tlsa = tlsa_state::insecure;
  std::vector<crypto::tlsa_rr> tlsa_records;
  std::string tlsa_error;
  std::optional<crypto::dane_result> dane;  // when tlsa is secure and TLS came up
  std::chrono::microseconds duration{0};
  bool from_cache = false;
};

struct mta_sts_result {
  dns::outcome status = dns::outcome::temporary_failure;  // found: a valid policy; absent: the domain has none
  std::string id;
  sts_policy policy;
  std::string error;      // why absent, or what failed
  bool from_cache = false;
};

struct domain_summary {
  policy::tls_version best_tls_version = policy::tls_version::unknown;  // unknown when no MX negotiated TLS
  policy::fact starttls = policy::fact::tempfail;
  policy::fact verified = policy::fact::tempfail;  // PKIX: chain and host name (and the MTA-STS mx patterns under enforce)
  std::string dane = "none";        // secure | insecure | none | bogus
  std::string dane_match;           // match | mismatch | unusable, when dane is secure
  std::string mta_sts = "none";     // enforce | testing | none | error
};

struct domain_probe {
  std::string domain;
  dns::mx_outcome mx_status = dns::mx_outcome::temporary_failure;
  bool mx_secure = false;
  bool implicit_mx = false;
  std::string mx_error;
  std::vector<mx_probe> mx;              // probed hosts, in preference order
  size_t mx_total = 0;                   // hosts the domain has (probed or not)
  mta_sts_result mta_sts;
  domain_summary summary;
  std::chrono::microseconds duration{0};
  bool ran() const { return mx_status != dns::mx_outcome::temporary_failure; }
};

// The addresses of a host, A then AAAA. secure only when every answer that
// counted was DNSSEC-secure (RFC 7672 2.2.2: TLSA records are looked up only
// then). Shared by the probe and delivery.
struct host_addresses {
  std::vector<boost::asio::ip::address> list;
  bool secure = false;
  policy::fact status = policy::fact::tempfail;
  std::string error;
};
boost::asio::awaitable<host_addresses> resolve_host_addresses(dns::resolver& res, std::string host);

// The TLSA records of _port._tcp.host (RFC 7672 2.2; RFC 6698 3 for the
// name), looked up only when the host's addresses were DNSSEC-secure. From
// the DNS (and its cache), never from an SMTP connection: delivery asks this
// for every MX host it tries, the probe for every host it probes.
struct host_tlsa {
  tlsa_state state = tlsa_state::insecure;
  std::vector<crypto::tlsa_rr> records;
  std::string error;  // bogus: the failed lookup; insecure: why DANE does not apply
};
boost::asio::awaitable<host_tlsa> look_up_tlsa(dns::resolver& res, uint16_t port, std::string host,
                                               bool address_secure);

// The one place probe results become the facts the policy consumes.
policy::domain_facts to_domain_facts(const domain_probe& p);

struct probe_stats {
  size_t domain_probes = 0;   // domain probes actually run (concurrent requests for one domain coalesced)
  size_t host_probes = 0;     // SMTP probes actually run (cache misses, coalesced counted once)
  size_t mta_sts_fetches = 0; // HTTPS policy fetches actually run
};

class prober {
 public:
  // The resolver must outlive the prober. Throws std::runtime_error when
  // options.ca_file cannot be loaded.
  prober(boost::asio::any_io_executor executor, dns::resolver& resolver, delivery_options options);
  ~prober();
  prober(const prober&) = delete;
  prober& operator=(const prober&) = delete;

  boost::asio::awaitable<domain_probe> probe_domain(std::string domain);
  // One MX host, from the cache (delivery.probe_cache_ttl) or probed now.
  boost::asio::awaitable<mx_probe> probe_host(std::string host);
  // The domain's MTA-STS policy (cached by max_age, refetched when the TXT id changes).
  boost::asio::awaitable<mta_sts_result> mta_sts(std::string domain);

  probe_stats stats() const;
  const delivery_options& options() const;

  struct impl;

 private:
  boost::asio::awaitable<domain_probe> run_domain_probe(std::string domain);
  std::shared_ptr<impl> impl_;
};

// Summarises the probed hosts for the domain (best TLS version, verification,
// DANE, MTA-STS). Pure; exposed for tests.
domain_summary summarize(const domain_probe& p);


}  // namespace sealgate::gateway
