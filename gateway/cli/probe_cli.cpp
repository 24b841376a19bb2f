// `sealgate probe`; see probe_cli.hpp and docs/probe.md for the output. Prints
// what remote servers said only through escaping (they could forge lines).
#include "gateway/cli/probe_cli.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <charconv>
#include <cstdio>
#include <iostream>
#include <sstream>

#include "dns/resolver.hpp"
#include "gateway/cli/bootstrap.hpp"
#include "gateway/cli/cli_args.hpp"
#include "gateway/cli/cli_text.hpp"
#include "gateway/config/config.hpp"
#include "common/log.hpp"
#include "gateway/facts/probe.hpp"

namespace sealgate::gateway {

const char* const probe_usage_line =
    "  probe --config FILE DOMAIN [--json] [--burst N]\n"
    "                               probe DOMAIN's MX hosts (STARTTLS, TLS, certificate, DANE, MTA-STS);\n"
    "                               exit 0 when the probe ran, 1 when it could not (docs/probe.md)\n";

namespace {
namespace asio = boost::asio;
using policy::fact;

int usage(const std::string& problem) {
  return usage_exit(problem, "usage: sealgate COMMAND ...\n", probe_usage_line);
}

std::string yes_no_unknown(fact f) { return f == fact::found ? "yes" : f == fact::absent ? "no" : "unknown"; }
std::string fact_text(fact f) { return std::string(policy::to_string(f)); }
// Milliseconds with microsecond precision: a warm probe takes well under one.
std::string ms(std::chrono::microseconds d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", static_cast<double>(d.count()) / 1000.0);
  return buf;
}
std::string version_text(sealgate::policy::tls_version v) { return "TLSv" + std::string(sealgate::policy::to_string(v)); }
std::string safe(const std::string& s) {
  std::string out;
  for (char c : s) out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c;
  return out;
}
std::string tlsa_text(const crypto::tlsa_rr& r) {
  return std::to_string(r.usage) + " " + std::to_string(r.selector) + " " + std::to_string(r.matching_type) + " " +
         hex(r.data);
}

void json_mx(std::ostringstream& o, const mx_probe& m) {
  auto b = [](bool v) { return v ? "true" : "false"; };
  o << "{\"host\": " << json_string(m.host) << ", \"preference\": " << m.preference
    << ", \"reached\": " << json_string(fact_text(m.reached)) << ", \"address\": " << json_string(m.address)
    << ", \"error\": " << json_string(m.error) << ", \"banner\": " << json_string(m.banner.code ? m.banner.text() : "")
    << ", \"esmtp\": " << b(m.extensions.esmtp) << ", \"extensions\": [";
  for (size_t i = 0; i < m.extensions.keywords.size(); ++i) o << (i ? ", " : "") << json_string(m.extensions.keywords[i]);
  o << "], \"size\": " << (m.extensions.size ? std::to_string(*m.extensions.size) : "null")
    << ", \"starttls\": " << json_string(fact_text(m.starttls)) << ", \"tls\": ";
  if (m.starttls == fact::found) {
    o << "{\"ok\": " << b(m.tls_ok) << ", \"protocol\": " << json_string(m.tls_protocol)
      << ", \"cipher\": " << json_string(m.tls_cipher) << ", \"error\": " << json_string(m.tls_error)
      << ", \"chain_verified\": " << b(m.chain_verified) << ", \"chain_error\": " << json_string(m.chain_error)
      << ", \"host_matched\": " << b(m.host_matched) << "}";
  } else {
    o << "null";
  }
  o << ", \"dane\": {\"tlsa\": " << json_string(std::string(to_string(m.tlsa))) << ", \"records\": [";
  for (size_t i = 0; i < m.tlsa_records.size(); ++i) o << (i ? ", " : "") << json_string(tlsa_text(m.tlsa_records[i]));
  o << "], \"match\": " << (m.dane ? json_string(std::string(crypto::to_string(m.dane->match))) : "null")
    << ", \"detail\": " << json_string(m.dane ? m.dane->detail : "") << ", \"error\": " << json_string(m.tlsa_error)
    << "}, \"duration_ms\": " << ms(m.duration) << ", \"from_cache\": " << b(m.from_cache) << "}";
}

std::string to_json(const domain_probe& p, const probe_stats& st) {
  std::ostringstream o;
  auto b = [](bool v) { return v ? "true" : "false"; };
  o << "{\"domain\": " << json_string(p.domain) << ", \"mx_status\": " << json_string(std::string(dns::to_string(p.mx_status)))
    << ", \"mx_secure\": " << b(p.mx_secure) << ", \"implicit_mx\": " << b(p.implicit_mx)
    << ", \"mx_error\": " << json_string(p.mx_status == dns::mx_outcome::hosts ? "" : p.mx_error)
    << ", \"mx_total\": " << p.mx_total << ", \"mx\": [";
  for (size_t i = 0; i < p.mx.size(); ++i) {
    if (i) o << ", ";
    json_mx(o, p.mx[i]);
  }
  const auto& s = p.mta_sts;
  o << "], \"mta_sts\": {\"status\": " << json_string(std::string(dns::to_string(s.status)))
    << ", \"id\": " << json_string(s.id) << ", \"mode\": "
    << (s.status == dns::outcome::found ? json_string(std::string(to_string(s.policy.mode))) : "null")
    << ", \"max_age\": " << (s.status == dns::outcome::found ? std::to_string(s.policy.max_age) : "null") << ", \"mx\": [";
  for (size_t i = 0; i < s.policy.mx.size(); ++i) o << (i ? ", " : "") << json_string(s.policy.mx[i]);
  o << "], \"error\": " << json_string(s.error) << ", \"from_cache\": " << b(s.from_cache) << "}";
  const auto& sum = p.summary;
  o << ", \"summary\": {\"best_tls_version\": "
    << (sum.best_tls_version != sealgate::policy::tls_version::unknown ? json_string(version_text(sum.best_tls_version)) : "null")
    << ", \"starttls\": " << json_string(fact_text(sum.starttls)) << ", \"verified\": " << json_string(yes_no_unknown(sum.verified))
    << ", \"dane\": " << json_string(sum.dane) << ", \"dane_match\": " << (sum.dane_match.empty() ? "null" : json_string(sum.dane_match))
    << ", \"mta_sts\": " << json_string(sum.mta_sts) << "}";
  auto f = to_domain_facts(p);
  o << ", \"policy_facts\": {\"starttls\": " << json_string(fact_text(f.starttls)) << ", \"tls_version\": " << static_cast<int>(f.tls_version)
    << ", \"cert_verified\": " << json_string(fact_text(f.cert_verified))
    << ", \"dane\": " << json_string(std::string(policy::to_string(f.dane)))
    << ", \"mta_sts\": " << json_string(std::string(policy::to_string(f.mta_sts))) << "}";
  o << ", \"duration_ms\": " << ms(p.duration) << ", \"domain_probes\": " << st.domain_probes
    << ", \"host_probes\": " << st.host_probes
    << ", \"mta_sts_fetches\": " << st.mta_sts_fetches << "}";
  return o.str();
}

std::string to_text(const domain_probe& p) {
  std::ostringstream o;
  o << p.domain << ": ";
  if (p.mx_status != dns::mx_outcome::hosts) {
    o << dns::to_string(p.mx_status) << (p.mx_error.empty() ? "" : ": " + safe(p.mx_error)) << "\n";
  } else {
    o << (p.implicit_mx ? "no MX, the domain's own address" : std::to_string(p.mx_total) + " MX host(s)") << ", "
      << (p.mx_secure ? "DNSSEC-secure" : "insecure") << ", probed " << p.mx.size() << " in " << ms(p.duration)
      << " ms\n";
  }
  for (const auto& m : p.mx) {
    o << "  " << m.preference << " " << m.host;
    if (!m.address.empty()) o << " [" << m.address << "]";
    o << ": ";
    if (m.reached != fact::found) {
      o << "not reached (" << fact_text(m.reached) << "): " << safe(m.error) << "\n";
      continue;
    }
    if (!m.error.empty()) o << safe(m.error) << "; ";
    if (m.starttls == fact::absent) o << "no STARTTLS";
    else if (m.starttls == fact::found && !m.tls_ok) o << "STARTTLS offered, TLS failed: " << safe(m.tls_error);
    else if (m.tls_ok)
      o << "STARTTLS " << m.tls_protocol << " " << m.tls_cipher << ", chain "
        << (m.chain_verified ? "verified" : "not verified (" + m.chain_error + ")") << ", host name "
        << (m.host_matched ? "matches" : "does not match");
    o << "; TLSA " << to_string(m.tlsa);
    if (m.dane) o << ", DANE " << crypto::to_string(m.dane->match) << " (" << m.dane->detail << ")";
    else if (!m.tlsa_error.empty()) o << " (" << safe(m.tlsa_error) << ")";
    o << (m.from_cache ? " [cached]" : "") << "\n";
  }
  const auto& s = p.mta_sts;
  o << "MTA-STS: ";
  if (s.status == dns::outcome::found) {
    o << to_string(s.policy.mode) << " (id " << s.id << ", max_age " << s.policy.max_age << ", mx";
    for (auto& m : s.policy.mx) o << " " << m;
    o << ")";
  } else {
    o << dns::to_string(s.status) << (s.error.empty() ? "" : ": " + safe(s.error));
  }
  const auto& sum = p.summary;
  o << "\nsummary: best TLS " << (sum.best_tls_version != sealgate::policy::tls_version::unknown ? version_text(sum.best_tls_version) : "none") << ", verified "
    << yes_no_unknown(sum.verified) << ", DANE " << sum.dane << (sum.dane_match.empty() ? "" : " " + sum.dane_match)
    << ", MTA-STS " << sum.mta_sts << "\n";
  return o.str();
}

struct run_state {
  int exit_code = 1;
  size_t burst_done = 0;
};

// Named coroutines taking inputs by value (DESIGN.md 2: no capturing coroutine lambdas with g++ 12).
[[gnu::noinline]] asio::awaitable<void> one_of_burst(prober& p, std::string domain, run_state* st) {
  (void)co_await p.probe_domain(domain);
  ++st->burst_done;
}

[[gnu::noinline]] asio::awaitable<void> probe_and_print(prober& p, std::string domain, bool json, run_state* st) {
  auto result = co_await p.probe_domain(domain);
  auto stats = p.stats();
  if (json) std::cout << to_json(result, stats) << "\n";
  else std::cout << to_text(result);
  st->exit_code = result.ran() ? 0 : 1;
}

void log_exception(std::exception_ptr e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    log_error(std::string("probe: ") + x.what());
  }
}

}  // namespace

int run_probe_command(const std::vector<std::string>& args) {
  cli_args o;
  try {
    o = parse_cli(args, 0, {.values = {"--burst"}, .flags = {"--json"}});
  } catch (const cli_usage_error& e) {
    return usage(e.what());
  }
  const std::string config_file = o.value("--config");
  const bool json = o.has("--json");
  const auto& positional = o.positional;
  size_t burst = 0;
  if (o.has("--burst")) {
    const auto v = o.value("--burst");
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), burst);
    if (ec != std::errc{} || p != v.data() + v.size() || burst < 1 || burst > 100000)
      return usage("--burst takes a number from 1 to 100000");
  }
  if (positional.size() != 1) return usage("probe takes one DOMAIN");
  std::string domain = dns::canonical_name(positional[0]);
  if (domain.empty() || dns::build_query(domain, dns::rr_type::a, 0).empty()) return usage("invalid domain " + positional[0]);

  auto loaded = load_config_or_report(config_file);
  if (!loaded) return exit_failure;
  const config& cfg = *loaded;
  run_state st;
  try {
    asio::io_context io;
    dns::resolver res(io.get_executor(), cfg.dns);
    prober p(io.get_executor(), res, cfg.delivery);
    if (burst > 0) {
      // Cold: N concurrent requests for the same domain at once, as a burst
      // of N queued messages would make; coalescing should make them cost one
      // probe per MX host.
      auto start = std::chrono::steady_clock::now();
      for (size_t i = 0; i < burst; ++i) asio::co_spawn(io, one_of_burst(p, domain, &st), log_exception);
      io.run();
      io.restart();
      auto cold = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start);
      auto stats = p.stats();
      std::cerr << "burst: " << st.burst_done << " concurrent probes of " << domain << " in " << ms(cold)
                << " ms: " << stats.domain_probes << " domain probes, " << stats.host_probes << " host probes, "
                << stats.mta_sts_fetches << " MTA-STS fetches\n";
    }
    asio::co_spawn(io, probe_and_print(p, domain, json, &st), log_exception);
    io.run();
  } catch (const std::exception& e) {
    std::cerr << "sealgate: probe: " << e.what() << "\n";
    return 1;
  }
  return st.exit_code;
}

}  // namespace sealgate::gateway
