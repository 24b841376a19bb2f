// The domain probe; see probe.hpp. Each host probe runs on a strand of its
// own (one connection, one strand). Sends EHLO, STARTTLS and QUIT only: never
// MAIL, RCPT or any content. Must never turn a failed lookup into "absent".
#include "gateway/facts/probe.hpp"

#include "common/metrics.hpp"
#include "common/text.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "crypto/https_get.hpp"
#include "crypto/tls_context.hpp"
#include "dns/resolver.hpp"
#include "gateway/facts/coalescing_cache.hpp"

namespace sealgate::gateway {
namespace asio = boost::asio;
using policy::fact;

struct prober::impl {
  asio::any_io_executor executor;
  dns::resolver& resolver;
  delivery_options options;
  std::shared_ptr<asio::ssl::context> tls_context;
  coalescing_cache<mx_probe> hosts;
  coalescing_cache<domain_probe> domains;  // coalesces concurrent probes of one domain only (TTL 0)
  coalescing_cache<mta_sts_result> sts_fetches;
  sts_policy_cache sts_policies;  // last valid policy per domain (RFC 8461 5.1)

  impl(asio::any_io_executor ex, dns::resolver& res, delivery_options opt)
      : executor(std::move(ex)),
        resolver(res),
        options(std::move(opt)),
        tls_context(crypto::make_client_context(options.ca_file)) {}
};

namespace {

std::string lower_name(std::string_view s) { return dns::canonical_name(s); }

}  // namespace

asio::awaitable<host_addresses> resolve_host_addresses(dns::resolver& res, std::string host) {
  auto set = co_await res.resolve_addresses(std::move(host));
  host_addresses out;
  out.list = std::move(set.list);
  out.secure = set.secure;
  switch (set.status) {
    case dns::outcome::found: out.status = fact::found; break;
    case dns::outcome::temporary_failure:
      out.status = fact::tempfail;
      out.error = "address lookup failed: " + set.error;
      break;
    case dns::outcome::absent:
      out.status = fact::absent;
      out.error = "no address records";
      break;
  }
  co_return out;
}

namespace {

std::vector<crypto::tlsa_rr> to_tlsa(const std::vector<dns::tlsa_record>& records) {
  std::vector<crypto::tlsa_rr> out;
  for (const auto& r : records) out.push_back({r.usage, r.selector, r.matching_type, {r.data.begin(), r.data.end()}});
  return out;
}

}  // namespace

asio::awaitable<host_tlsa> look_up_tlsa(dns::resolver& res, uint16_t port, std::string host, bool address_secure) {
  host_tlsa out;
  if (!address_secure) {
    out.state = tlsa_state::insecure;
    out.error = "address records not DNSSEC-secure";
    co_return out;
  }
  auto t = co_await res.resolve_tlsa("_" + std::to_string(port) + "._tcp." + host);
  switch (t.status) {
    case dns::outcome::found:
      out.state = t.secure ? tlsa_state::secure : tlsa_state::insecure;
      out.records = to_tlsa(t.records);
      break;
    case dns::outcome::absent: out.state = t.secure ? tlsa_state::none : tlsa_state::insecure; break;
    case dns::outcome::temporary_failure:
      out.state = tlsa_state::bogus;
      out.error = t.error;
      break;
  }
  co_return out;
}

namespace {

// One SMTP session: banner, EHLO, STARTTLS, EHLO, QUIT. Runs on its own strand.
asio::awaitable<mx_probe> run_host_probe(std::shared_ptr<prober::impl> im, std::string host) {
  auto start = std::chrono::steady_clock::now();
  mx_probe p;
  p.host = host;
  const auto& opt = im->options;
  auto addrs = co_await resolve_host_addresses(im->resolver, host);
  p.address_secure = addrs.secure;
  if (addrs.status != fact::found) {
    p.reached = addrs.status;
    p.starttls = fact::tempfail;  // unknown: nothing answered
    p.error = addrs.error;
    p.duration = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start);
    co_return p;
  }
  auto tlsa = co_await look_up_tlsa(im->resolver, opt.port, host, addrs.secure);
  p.tlsa = tlsa.state;
  p.tlsa_records = std::move(tlsa.records);
  p.tlsa_error = std::move(tlsa.error);

  auto executor = co_await asio::this_coro::executor;  // this probe's strand
  auto attempt = co_await smtp_connect_first(executor, addrs.list, opt.port, opt.timeouts.connect);
  std::optional<smtp_client> client;
  if (attempt.stream) {
    p.address = attempt.address.to_string();
    client.emplace(std::move(*attempt.stream), im->tls_context, opt.timeouts);
  }
  auto finish = [&] {
    p.duration = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start);
  };
  if (!client) {
    p.reached = fact::tempfail;
    p.error = "connect: " + attempt.errors;
    finish();
    co_return p;
  }
  p.reached = fact::found;
  auto r = co_await client->greeting();
  if (!r || r.reply.code != 220) {
    p.error = r ? "banner: " + r.reply.text() : "banner: " + r.error.message();
    p.banner = r.reply;
    if (r) co_await client->quit();
    finish();
    co_return p;
  }
  p.banner = r.reply;
  r = co_await client->ehlo(opt.helo_name);
  if (!r || !r.reply.positive()) {
    p.error = r ? "EHLO: " + r.reply.text() : "EHLO: " + r.error.message();
    if (r) co_await client->quit();
    finish();
    co_return p;
  }
  p.extensions = client->extensions();
  if (!p.extensions.starttls) {
    p.starttls = fact::absent;
    co_await client->quit();
    finish();
    co_return p;
  }
  p.starttls = fact::found;
  r = co_await client->start_tls(host, opt.helo_name);
  const auto& tls = client->tls();
  if (tls.active) {
    p.tls_ok = true;
    p.tls_protocol = tls.facts.protocol;
    p.tls_cipher = tls.facts.cipher;
    p.chain_verified = tls.verification.chain_verified;
    p.chain_error = tls.verification.chain_error;
    p.host_matched = tls.verification.host_matched;
    if (p.tlsa == tlsa_state::secure) p.dane = crypto::dane_verify(p.tlsa_records, tls.chain, {host});
  }
  if (!tls.active) {
    // Refused (the session is still usable: say goodbye) or the handshake
    // failed (the stream is in no state for QUIT: just close it).
    if (r) {
      p.tls_error = "STARTTLS: " + r.reply.text();
      co_await client->quit();
    } else {
      p.tls_error = "STARTTLS: " + (tls.handshake_error.empty() ? r.error.message() : tls.handshake_error);
    }
  } else if (!r || !r.reply.positive()) {
    p.tls_error = "EHLO after STARTTLS: " + (r ? r.reply.text() : r.error.message());
    if (r) co_await client->quit();
  } else {
    co_await client->quit();
  }
  finish();
  co_return p;
}

// Turns an exception into a temporary failure, so that the waiters of a
// coalesced probe always get an answer.
asio::awaitable<mx_probe> guarded_host_probe(std::shared_ptr<prober::impl> im, std::string host) {
  try {
    co_return co_await asio::co_spawn(asio::make_strand(im->executor), run_host_probe(im, host), asio::use_awaitable);
  } catch (const std::exception& e) {
    mx_probe p;
    p.host = host;
    p.error = std::string("probe failed: ") + e.what();
    co_return p;
  }
}

asio::awaitable<mta_sts_result> fetch_policy(std::shared_ptr<prober::impl> im, std::string domain, std::string id) {
  mta_sts_result out;
  out.id = id;
  std::string policy_host = "mta-sts." + domain;
  auto addrs = co_await resolve_host_addresses(im->resolver, policy_host);
  if (addrs.status != fact::found) {
    out.error = policy_host + ": " + addrs.error;
    co_return out;
  }
  crypto::https_request req;
  req.host = policy_host;
  req.port = im->options.mta_sts_port;
  req.target = "/.well-known/mta-sts.txt";  // RFC 8461 3.3
  req.addresses = addrs.list;
  req.timeout = im->options.timeouts.https;
  req.max_body = 64 * 1024;
  req.context = im->tls_context;
  auto resp = co_await crypto::https_get(req);
  if (!resp.ok) {
    out.error = "policy fetch: " + resp.error;
    co_return out;
  }
  // RFC 8461 3.3: only a 200 counts (redirects are not followed), served as text/plain.
  if (resp.status != 200) {
    out.error = "policy fetch: HTTP " + std::to_string(resp.status);
    co_return out;
  }
  std::string type = resp.content_type.substr(0, resp.content_type.find(';'));
  type = lower_ascii(type);
  if (type != "text/plain") {
    out.error = "policy fetch: media type '" + resp.content_type + "', not text/plain";
    co_return out;
  }
  std::string why;
  auto policy = parse_sts_policy(resp.body, &why);
  if (!policy) {
    out.error = "policy: " + why;
    co_return out;
  }
  out.status = dns::outcome::found;
  out.policy = *policy;
  co_return out;
}

}  // namespace

std::string_view to_string(tlsa_state s) {
  switch (s) {
    case tlsa_state::secure: return "secure";
    case tlsa_state::insecure: return "insecure";
    case tlsa_state::none: return "none";
    case tlsa_state::bogus: return "bogus";
  }
  return "?";
}

prober::prober(asio::any_io_executor executor, dns::resolver& resolver, delivery_options options)
    : impl_(std::make_shared<impl>(std::move(executor), resolver, std::move(options))) {}
prober::~prober() = default;

const delivery_options& prober::options() const { return impl_->options; }

probe_stats prober::stats() const {
  return {impl_->domains.computations(), impl_->hosts.computations(), impl_->sts_fetches.computations()};
}

asio::awaitable<mx_probe> prober::probe_host(std::string host) {
  host = lower_name(host);
  auto im = impl_;
  auto ticket = co_await im->hosts.acquire(host);
  metrics::get().probe_cache(!ticket.leader);
  if (!ticket.leader) {
    mx_probe p = std::move(*ticket.value);
    p.from_cache = true;
    co_return p;
  }
  mx_probe p = co_await guarded_host_probe(im, host);
  // Only a completed look is worth keeping: a host that did not answer, or
  // broke off before saying whether it offers STARTTLS, is asked again next
  // time rather than believed unknown for the whole TTL.
  bool complete = p.reached == fact::found && p.starttls != fact::tempfail;
  auto ttl = complete ? im->options.probe_cache_ttl : std::chrono::seconds(0);
  im->hosts.publish(host, p, ttl);
  co_return p;
}

asio::awaitable<mta_sts_result> prober::mta_sts(std::string domain) {
  domain = lower_name(domain);
  auto im = impl_;
  auto from_cache = [](const sts_policy_cache::entry& e) {
    mta_sts_result r;
    r.status = dns::outcome::found;
    r.id = e.id;
    r.policy = e.policy;
    r.from_cache = true;
    return r;
  };
  auto txt = co_await im->resolver.resolve_txt("_mta-sts." + domain);
  std::string why;
  std::optional<std::string> id;
  if (txt.status == dns::outcome::found) id = select_sts_id(txt.records, &why);
  auto cached = im->sts_policies.get(domain);
  switch (sts_policy_cache::plan(cached, txt.status == dns::outcome::temporary_failure, id)) {
    case sts_policy_cache::step::use_cached: co_return from_cache(*cached);
    case sts_policy_cache::step::none: {
      mta_sts_result out;
      out.status = dns::outcome::absent;
      out.error = txt.status == dns::outcome::absent ? "no _mta-sts TXT record" : why;
      co_return out;
    }
    case sts_policy_cache::step::unknown: {
      mta_sts_result out;
      out.error = "_mta-sts TXT lookup: " + txt.error;
      co_return out;
    }
    case sts_policy_cache::step::fetch: break;
  }

  // A new id (or nothing cached): fetch, coalesced per (domain, id).
  std::string key = domain + "#" + *id;
  auto ticket = co_await im->sts_fetches.acquire(key);
  mta_sts_result fetched;
  if (ticket.leader) {
    try {
      fetched = co_await fetch_policy(im, domain, *id);
    } catch (const std::exception& e) {
      fetched.error = std::string("policy fetch: ") + e.what();
    }
    if (fetched.status == dns::outcome::found) im->sts_policies.put(domain, fetched.id, fetched.policy);
    im->sts_fetches.publish(key, fetched, std::chrono::seconds(0));
  } else {
    fetched = std::move(*ticket.value);
    fetched.from_cache = true;
  }
  // RFC 8461 5.1: if the new policy cannot be fetched, an unexpired cached one stays.
  if (fetched.status != dns::outcome::found && cached) co_return from_cache(*cached);
  co_return fetched;
}

asio::awaitable<domain_probe> prober::probe_domain(std::string domain) {
  domain = lower_name(domain);
  auto im = impl_;
  // A burst of messages to one domain asks DNS once, not once per message;
  // nothing is kept beyond the burst (TTL 0): the host cache does that.
  auto ticket = co_await im->domains.acquire(domain);
  if (!ticket.leader) {
    domain_probe p = std::move(*ticket.value);
    for (auto& m : p.mx) m.from_cache = true;
    co_return p;
  }
  domain_probe p;
  try {
    p = co_await run_domain_probe(domain);
  } catch (const std::exception& e) {
    p.domain = domain;
    p.mx_error = std::string("probe failed: ") + e.what();
    p.summary = summarize(p);
  }
  im->domains.publish(domain, p, std::chrono::seconds(0));
  co_return p;
}

asio::awaitable<domain_probe> prober::run_domain_probe(std::string domain) {
  auto start = std::chrono::steady_clock::now();
  domain_probe out;
  out.domain = domain;
  auto set = co_await impl_->resolver.mx_hosts(out.domain);
  out.mx_status = set.status;
  out.mx_secure = set.secure;
  out.implicit_mx = set.implicit;
  out.mx_error = set.error;
  if (set.status == dns::mx_outcome::hosts) {
    out.mx_total = set.hosts.size();
    // The hosts are probed in parallel (each on its own strand), so that a
    // dead first MX costs one connect timeout, not one per host; results stay
    // in preference order.
    size_t n = std::min<size_t>(set.hosts.size(), impl_->options.probe_max_mx);
    auto executor = co_await asio::this_coro::executor;
    using probe_op = decltype(asio::co_spawn(executor, probe_host(std::string()), asio::deferred));
    std::vector<probe_op> ops;
    for (size_t i = 0; i < n; ++i) ops.push_back(asio::co_spawn(executor, probe_host(set.hosts[i].name), asio::deferred));
    auto group = asio::experimental::make_parallel_group(std::move(ops));
    auto [order, failures, results] =
        co_await group.async_wait(asio::experimental::wait_for_all(), asio::use_awaitable);
    (void)order;
    for (size_t i = 0; i < n; ++i) {
      mx_probe p;
      if (failures[i]) {
        p.host = set.hosts[i].name;
        p.error = "probe failed";
      } else {
        p = std::move(results[i]);
      }
      p.preference = set.hosts[i].preference;
      out.mx.push_back(std::move(p));
    }
    out.mta_sts = co_await mta_sts(out.domain);
  } else {
    out.mta_sts.status = dns::outcome::absent;
    out.mta_sts.error = "no MX hosts";
  }
  out.summary = summarize(out);
  out.duration = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start);
  co_return out;
}

domain_summary summarize(const domain_probe& p) {
  domain_summary s;
  if (!p.ran()) {
    s.dane = "bogus";
    s.mta_sts = "error";
    return s;
  }
  bool enforce = p.mta_sts.status == dns::outcome::found && p.mta_sts.policy.mode == sts_mode::enforce;
  bool any_starttls = false, any_starttls_unknown = false, any_verified = false, any_verify_unknown = false;
  for (const auto& m : p.mx) {
    any_starttls |= m.starttls == fact::found;
    any_starttls_unknown |= m.starttls == fact::tempfail;
    if (m.tls_ok) {
      s.best_tls_version = std::max(s.best_tls_version, policy::tls_version_from_protocol(m.tls_protocol));
      // RFC 8461 4.2: under enforce, a certificate counts only for an MX the policy lists.
      bool ok = m.chain_verified && m.host_matched && (!enforce || sts_mx_allowed(p.mta_sts.policy, m.host));
      any_verified |= ok;
    } else if (m.starttls != fact::absent) {
      any_verify_unknown = true;  // not reached, or the handshake failed: not a proven "no"
    }
  }
  s.starttls = any_starttls ? fact::found : any_starttls_unknown ? fact::tempfail : fact::absent;
  s.verified = any_verified ? fact::found : any_verify_unknown ? fact::tempfail : fact::absent;

  // RFC 7672 2.2.1: DANE applies only when the MX RRset itself is DNSSEC-secure.
  if (p.mx.empty()) s.dane = "none";
  else if (!p.mx_secure) s.dane = "insecure";
  else {
    bool secure = false, bogus = false, all_none = true, matched = false, mismatched = false, unchecked = false;
    for (const auto& m : p.mx) {
      secure |= m.tlsa == tlsa_state::secure;
      bogus |= m.tlsa == tlsa_state::bogus;
      all_none &= m.tlsa == tlsa_state::none;
      if (m.tlsa == tlsa_state::secure) {
        if (!m.dane) unchecked = true;
        else if (m.dane->match == crypto::dane_match::match) matched = true;
        else if (m.dane->match == crypto::dane_match::mismatch) mismatched = true;
      }
    }
    s.dane = secure ? "secure" : bogus ? "bogus" : all_none ? "none" : "insecure";
    if (secure) s.dane_match = matched ? "match" : mismatched ? "mismatch" : unchecked ? "" : "unusable";
  }
  switch (p.mta_sts.status) {
    case dns::outcome::found: s.mta_sts = std::string(to_string(p.mta_sts.policy.mode)); break;
    case dns::outcome::absent: s.mta_sts = "none"; break;
    case dns::outcome::temporary_failure: s.mta_sts = "error"; break;
  }
  return s;
}

policy::domain_facts to_domain_facts(const domain_probe& p) {
  policy::domain_facts f;
  const auto& s = p.summary;
  if (!p.ran()) {
    f.starttls = fact::tempfail;
    f.cert_verified = fact::tempfail;
    f.dane = policy::dane_state::unknown;
    f.mta_sts = policy::mta_sts_state::unknown;
    return f;
  }
  f.starttls = s.starttls;
  f.tls_version = s.best_tls_version;
  f.cert_verified = s.verified;
  if (s.dane == "bogus") f.dane = policy::dane_state::unknown;
  else if (s.dane == "secure") {
    // Usable TLSA records matched; no usable record (RFC 7672 3.1: only usages
    // 2 and 3) leaves PKIX to decide; secure TLSA with no TLS session is unknown.
    if (s.dane_match == "match") f.dane = policy::dane_state::secure;
    else if (s.dane_match == "mismatch") f.dane = policy::dane_state::mismatch;
    else if (s.dane_match == "unusable") f.dane = policy::dane_state::none;
    else f.dane = policy::dane_state::unknown;
  } else {
    f.dane = policy::dane_state::none;
  }
  // An MTA-STS fetch that failed is unknown, not "none": the house rule (a
  // failed lookup never lowers what a recipient gets) is stricter here than
  // RFC 8461 5, which would deliver as if the domain had no policy.
  if (s.mta_sts == "enforce") f.mta_sts = policy::mta_sts_state::enforce;
  else if (s.mta_sts == "testing") f.mta_sts = policy::mta_sts_state::testing;
  else if (s.mta_sts == "none") f.mta_sts = policy::mta_sts_state::none;
  else f.mta_sts = policy::mta_sts_state::unknown;
  return f;
}

}  // namespace sealgate::gateway
