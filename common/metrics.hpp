// The gateway's Prometheus metrics (issue 16): one registry per process,
// every series made at start with labels from closed sets (listener names
// from the configuration, methods, states, TLS versions, result types), so
// that the hot path is one atomic add on a pointer found without a lock and
// the cardinality is known before the first scrape: no per-domain or
// per-address label, ever. Stages count through metrics::get(); a process
// that never calls init() (the CLI, unit tests) counts into series nobody
// reads. Serving the text is gateway/daemon's (status_server).
#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace sealgate::metrics {

// Why a message was refused (sealgate_messages_refused_total{reason}).
enum class refusal {
  relay_denied, auth_required, size, line_length, bare_newline, loop, tenant_pin, spool_error, other
};
inline constexpr int refusal_count = 9;

// Where a recipient ended (sealgate_recipients_total{status}).
enum class recipient_status { delivered, deferred, bounced, expired };
inline constexpr int recipient_status_count = 4;

class registry;

// The process's metrics; init() replaces the default (listener names known).
registry& get();
void init(const std::vector<std::string>& listeners);

class registry {
 public:
  explicit registry(const std::vector<std::string>& listeners);
  ~registry();
  registry(const registry&) = delete;
  registry& operator=(const registry&) = delete;

  void accepted(std::string_view listener);
  void refused(std::string_view listener, refusal why);
  void connection_opened(std::string_view listener);
  void connection_closed(std::string_view listener);
  // method: policy::to_string of the method ("tls", "pgp", ...; "none" when
  // no method acted, e.g. a domain without mail).
  void recipient(std::string_view method, recipient_status status);
  void delivery_latency(std::chrono::duration<double> since_acceptance);
  // One outbound transaction (sealgate_outbound_transfers_total): the TLS
  // version the client got ("TLSv1.3"; "" for none), the certificate's
  // judgement (dane, mta-sts, verified, unverified, none) and how it ended
  // for its first recipient (delivered, deferred, bounced, method_failed).
  // Values outside those sets count as "other".
  void transfer(std::string_view tls_protocol, std::string_view certificate, std::string_view result);
  void journal_fsync(std::chrono::duration<double> took);

  // One outbound TLS session attempt as RFC 8460 counts it
  // (sealgate_outbound_tls_sessions_total): the policy type that applied
  // ("tlsa" for DANE, "sts" for MTA-STS, "no-policy-found") and the result
  // type ("success", or a failure of RFC 8460 section 4.3: starttls-not-
  // supported, certificate-host-mismatch, certificate-not-trusted, validation-
  // failure, dnssec-invalid, ...). DANE and MTA-STS outcomes are its rows.
  void tls_session(std::string_view policy_type, std::string_view result_type);
  // An MX host's probe: answered from the cache (or a concurrent probe) or run.
  void probe_cache(bool hit);
  // A recipient key lookup, per source asked (keyring, smime_directory,
  // dns_openpgpkey, dns_smimea, wkd; "cache" for an answer kept from an
  // earlier lookup) and its result (found, absent, tempfail).
  void key_lookup(std::string_view source, std::string_view result);
  // The time one message took to encrypt (pgp, smime) on the crypto pool.
  void encryption(std::string_view method, std::chrono::duration<double> took);
  // Portal events: the store's kinds (deposited, notified, code-sent,
  // code-failed, locked, opened, downloaded, replied, expired, retracted,
  // reissued), read from the store at each scrape as they happen in either
  // process, and deposit_failed (a deposit that never reached the store).
  void portal_event(std::string_view event, int64_t count = 1);

  // Gauges read rather than counted: the queue by state (queued, active,
  // deferred, held), with the age of its oldest message. Set by the
  // refresh function, which text() calls first.
  void queue_state(std::string_view state, size_t messages, double oldest_age_seconds);
  void on_scrape(std::function<void()> refresh);

  // The Prometheus text exposition of every series (text format 0.0.4).
  std::string text() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace sealgate::metrics
