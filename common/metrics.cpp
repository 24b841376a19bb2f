// See metrics.hpp. prometheus-cpp (Debian's prometheus-cpp-dev) holds the
// registry and writes the text format; its Family::Add takes a lock and a map
// lookup, so every series is added here once and kept as a pointer.
#include "common/metrics.hpp"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <array>
#include <atomic>
#include <map>
#include <mutex>

namespace sealgate::metrics {
namespace {

constexpr std::array<const char*, refusal_count> refusal_names = {
    "relay_denied", "auth_required", "size", "line_length", "bare_newline", "loop", "tenant_pin", "spool_error", "other"};
constexpr std::array<const char*, recipient_status_count> status_names = {"delivered", "deferred", "bounced", "expired"};
// policy::method names, and "none" (a recipient no method acted for).
constexpr std::array<const char*, 9> method_names = {"tls", "plain", "pgp", "smime", "portal", "reject", "hold", "defer",
                                                     "none"};

constexpr std::array<const char*, 6> tls_names = {"1.0", "1.1", "1.2", "1.3", "none", "other"};
constexpr std::array<const char*, 6> judgement_names = {"dane", "mta-sts", "verified", "unverified", "none", "other"};
constexpr std::array<const char*, 5> transfer_results = {"delivered", "deferred", "bounced", "method_failed", "other"};

// RFC 8460 section 4.4's policy types and section 4.3's result types, and
// "success" (a session that negotiated TLS as the policy asked).
constexpr std::array<const char*, 3> policy_type_names = {"tlsa", "sts", "no-policy-found"};
constexpr std::array<const char*, 13> result_type_names = {
    "success", "starttls-not-supported", "certificate-host-mismatch", "certificate-expired",
    "certificate-not-trusted", "validation-failure", "tlsa-invalid", "dnssec-invalid", "dane-required",
    "sts-policy-fetch-error", "sts-policy-invalid", "sts-webpki-invalid", "other"};
constexpr std::array<const char*, 7> key_source_names = {"keyring", "smime_directory", "dns_openpgpkey", "dns_smimea",
                                                         "wkd", "cache", "other"};
constexpr std::array<const char*, 4> key_result_names = {"found", "absent", "tempfail", "other"};
constexpr std::array<const char*, 3> encryption_methods = {"pgp", "smime", "other"};
constexpr std::array<const char*, 13> portal_event_names = {
    "deposited", "notified", "code-sent", "code-failed", "locked",         "opened", "downloaded",
    "replied",   "expired",  "retracted", "reissued",    "deposit_failed", "other"};
constexpr std::array<const char*, 4> queue_state_names = {"queued", "active", "deferred", "held"};

template <size_t N>
size_t index_of(const std::array<const char*, N>& names, std::string_view v) {
  for (size_t i = 0; i < N; ++i)
    if (v == names[i]) return i;
  return N - 1;  // "other"
}

std::atomic<registry*> current{nullptr};

}  // namespace

struct registry::impl {
  prometheus::Registry reg;
  struct listener_series {
    prometheus::Counter* accepted = nullptr;
    std::array<prometheus::Counter*, refusal_count> refused{};
    prometheus::Gauge* connections = nullptr;
  };
  std::map<std::string, listener_series, std::less<>> listeners;
  listener_series unknown;  // a listener name not given to init (the gateway's own mail)
  std::map<std::string, std::array<prometheus::Counter*, recipient_status_count>, std::less<>> recipients;
  prometheus::Histogram* latency = nullptr;
  // [tls version][judgement][result]
  std::array<std::array<std::array<prometheus::Counter*, 5>, 6>, 6> transfers{};
  prometheus::Histogram* fsync = nullptr;
  std::array<std::array<prometheus::Counter*, result_type_names.size()>, policy_type_names.size()> tls_sessions{};
  std::array<prometheus::Counter*, 2> probe_cache{};  // miss, hit
  std::array<std::array<prometheus::Counter*, key_result_names.size()>, key_source_names.size()> key_lookups{};
  std::array<prometheus::Histogram*, encryption_methods.size()> encryption{};
  std::array<prometheus::Counter*, portal_event_names.size()> portal{};
  std::array<prometheus::Gauge*, queue_state_names.size()> queue_messages{}, queue_oldest{};
  std::mutex refresh_mutex;
  std::function<void()> refresh;

  const listener_series& of(std::string_view name) const {
    auto it = listeners.find(name);
    return it == listeners.end() ? unknown : it->second;
  }
};

registry::registry(const std::vector<std::string>& listener_names) : impl_(std::make_unique<impl>()) {
  auto& accepted = prometheus::BuildCounter()
                       .Name("sealgate_messages_accepted_total")
                       .Help("Messages accepted (250 after DATA), by listener")
                       .Register(impl_->reg);
  auto& refused = prometheus::BuildCounter()
                      .Name("sealgate_messages_refused_total")
                      .Help("Transactions refused, by listener and reason")
                      .Register(impl_->reg);
  auto& connections = prometheus::BuildGauge()
                          .Name("sealgate_connections_open")
                          .Help("Inbound SMTP connections open now, by listener")
                          .Register(impl_->reg);
  auto make = [&](const std::string& name) {
    impl::listener_series s;
    s.accepted = &accepted.Add({{"listener", name}});
    for (int i = 0; i < refusal_count; ++i) s.refused[i] = &refused.Add({{"listener", name}, {"reason", refusal_names[i]}});
    s.connections = &connections.Add({{"listener", name}});
    return s;
  };
  for (const auto& l : listener_names) impl_->listeners.emplace(l, make(l));
  impl_->unknown = make("other");

  auto& recipients = prometheus::BuildCounter()
                         .Name("sealgate_recipients_total")
                         .Help("Recipients that reached a status, by the method that acted")
                         .Register(impl_->reg);
  for (const char* m : method_names) {
    auto& row = impl_->recipients[m];
    for (int i = 0; i < recipient_status_count; ++i)
      row[i] = &recipients.Add({{"method", m}, {"status", status_names[i]}});
  }
  auto& transfers = prometheus::BuildCounter()
                        .Name("sealgate_outbound_transfers_total")
                        .Help("Outbound SMTP transactions, by TLS version, certificate judgement and result")
                        .Register(impl_->reg);
  for (size_t v = 0; v < tls_names.size(); ++v)
    for (size_t j = 0; j < judgement_names.size(); ++j)
      for (size_t r = 0; r < transfer_results.size(); ++r)
        impl_->transfers[v][j][r] = &transfers.Add(
            {{"tls_version", tls_names[v]}, {"certificate", judgement_names[j]}, {"result", transfer_results[r]}});
  // Seconds from the 250 to a final status: most mail leaves within seconds,
  // a deferred recipient within hours, the queue's lifetime is days.
  impl_->latency = &prometheus::BuildHistogram()
                        .Name("sealgate_delivery_latency_seconds")
                        .Help("From acceptance to a recipient's final status")
                        .Register(impl_->reg)
                        .Add({}, prometheus::Histogram::BucketBoundaries{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900,
                                                                         3600, 4 * 3600, 86400, 5 * 86400});
  impl_->fsync = &prometheus::BuildHistogram()
                      .Name("sealgate_journal_fsync_seconds")
                      .Help("One fdatasync of the spool journal (a group of messages)")
                      .Register(impl_->reg)
                      .Add({}, prometheus::Histogram::BucketBoundaries{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                                       0.01, 0.025, 0.05, 0.1, 0.25, 1});

  auto& sessions = prometheus::BuildCounter()
                       .Name("sealgate_outbound_tls_sessions_total")
                       .Help("Outbound TLS sessions as RFC 8460 counts them, by policy type and result type")
                       .Register(impl_->reg);
  for (size_t p = 0; p < policy_type_names.size(); ++p)
    for (size_t r = 0; r < result_type_names.size(); ++r)
      impl_->tls_sessions[p][r] = &sessions.Add({{"policy_type", policy_type_names[p]}, {"result", result_type_names[r]}});
  auto& probes = prometheus::BuildCounter()
                     .Name("sealgate_probe_cache_total")
                     .Help("MX host probes, answered from the cache or run")
                     .Register(impl_->reg);
  impl_->probe_cache = {&probes.Add({{"result", "miss"}}), &probes.Add({{"result", "hit"}})};
  auto& keys = prometheus::BuildCounter()
                   .Name("sealgate_key_lookups_total")
                   .Help("Recipient key lookups, by source and result")
                   .Register(impl_->reg);
  for (size_t k = 0; k < key_source_names.size(); ++k)
    for (size_t r = 0; r < key_result_names.size(); ++r)
      impl_->key_lookups[k][r] = &keys.Add({{"source", key_source_names[k]}, {"result", key_result_names[r]}});
  auto& encryption = prometheus::BuildHistogram()
                         .Name("sealgate_encryption_seconds")
                         .Help("Encrypting one message for its recipients, by method")
                         .Register(impl_->reg);
  for (size_t m = 0; m < encryption_methods.size(); ++m)
    impl_->encryption[m] = &encryption.Add(
        {{"method", encryption_methods[m]}},
        prometheus::Histogram::BucketBoundaries{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10});
  auto& portal = prometheus::BuildCounter()
                     .Name("sealgate_portal_events_total")
                     .Help("Portal events, in the gateway and the portal process, by kind")
                     .Register(impl_->reg);
  for (size_t e = 0; e < portal_event_names.size(); ++e)
    impl_->portal[e] = &portal.Add({{"event", portal_event_names[e]}});
  auto& queued = prometheus::BuildGauge()
                     .Name("sealgate_queue_messages")
                     .Help("Messages in the queue, by state")
                     .Register(impl_->reg);
  auto& oldest = prometheus::BuildGauge()
                     .Name("sealgate_queue_oldest_message_age_seconds")
                     .Help("Age of the oldest message in each queue state (0 when there is none)")
                     .Register(impl_->reg);
  for (size_t q = 0; q < queue_state_names.size(); ++q) {
    impl_->queue_messages[q] = &queued.Add({{"state", queue_state_names[q]}});
    impl_->queue_oldest[q] = &oldest.Add({{"state", queue_state_names[q]}});
  }
}

registry::~registry() = default;

void registry::accepted(std::string_view listener) { impl_->of(listener).accepted->Increment(); }

void registry::refused(std::string_view listener, refusal why) {
  impl_->of(listener).refused[static_cast<int>(why)]->Increment();
}

void registry::connection_opened(std::string_view listener) { impl_->of(listener).connections->Increment(); }
void registry::connection_closed(std::string_view listener) { impl_->of(listener).connections->Decrement(); }

void registry::recipient(std::string_view method, recipient_status status) {
  auto it = impl_->recipients.find(method);
  if (it == impl_->recipients.end()) it = impl_->recipients.find(std::string_view("none"));
  it->second[static_cast<int>(status)]->Increment();
}

void registry::delivery_latency(std::chrono::duration<double> d) { impl_->latency->Observe(d.count()); }
void registry::transfer(std::string_view tls_protocol, std::string_view certificate, std::string_view result) {
  std::string_view version = "none";
  if (!tls_protocol.empty()) version = tls_protocol.rfind("TLSv", 0) == 0 ? tls_protocol.substr(4) : "other";
  impl_->transfers[index_of(tls_names, version)][index_of(judgement_names, certificate.empty() ? "none" : certificate)]
                  [index_of(transfer_results, result)]
                      ->Increment();
}

void registry::journal_fsync(std::chrono::duration<double> d) { impl_->fsync->Observe(d.count()); }

void registry::tls_session(std::string_view policy_type, std::string_view result_type) {
  // An unknown policy type counts as no-policy-found (the last name).
  impl_->tls_sessions[index_of(policy_type_names, policy_type)][index_of(result_type_names, result_type)]->Increment();
}

void registry::probe_cache(bool hit) { impl_->probe_cache[hit ? 1 : 0]->Increment(); }

void registry::key_lookup(std::string_view source, std::string_view result) {
  impl_->key_lookups[index_of(key_source_names, source)][index_of(key_result_names, result)]->Increment();
}

void registry::encryption(std::string_view method, std::chrono::duration<double> took) {
  impl_->encryption[index_of(encryption_methods, method)]->Observe(took.count());
}

void registry::portal_event(std::string_view event, int64_t count) {
  if (count > 0) impl_->portal[index_of(portal_event_names, event)]->Increment(static_cast<double>(count));
}

void registry::queue_state(std::string_view state, size_t messages, double oldest_age_seconds) {
  for (size_t q = 0; q < queue_state_names.size(); ++q)
    if (state == queue_state_names[q]) {
      impl_->queue_messages[q]->Set(static_cast<double>(messages));
      impl_->queue_oldest[q]->Set(oldest_age_seconds);
    }
}

void registry::on_scrape(std::function<void()> refresh) {
  std::lock_guard lock(impl_->refresh_mutex);
  impl_->refresh = std::move(refresh);
}

std::string registry::text() const {
  {
    std::lock_guard lock(impl_->refresh_mutex);
    if (impl_->refresh) impl_->refresh();
  }
  return prometheus::TextSerializer().Serialize(impl_->reg.Collect());
}

registry& get() {
  if (registry* r = current.load(std::memory_order_acquire)) return *r;
  static registry fallback({});
  registry* expected = nullptr;
  current.compare_exchange_strong(expected, &fallback);
  return *current.load(std::memory_order_acquire);
}

void init(const std::vector<std::string>& listeners) {
  // Made once per process, before any stage counts; never freed (stages may
  // still count while the process exits).
  static std::mutex once;
  std::lock_guard lock(once);
  current.store(new registry(listeners), std::memory_order_release);
}

}  // namespace sealgate::metrics
