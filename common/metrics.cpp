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

std::string registry::text() const { return prometheus::TextSerializer().Serialize(impl_->reg.Collect()); }

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
