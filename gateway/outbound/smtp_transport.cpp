// The outbound transport; see smtp_transport.hpp. The order of one attempt:
// MX set (null MX and NXDOMAIN bounce, a failed lookup waits), the domain's
// MTA-STS policy, then each MX host in order and each of its addresses:
// connect, banner, EHLO, STARTTLS, EHLO, judge the connection, MAIL, RCPT,
// DATA, QUIT. A host that cannot be used moves on to the next; a verdict
// against the connection moves on too, because another MX may be honest.
#include "gateway/outbound/smtp_transport.hpp"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <chrono>
#include <map>
#include <mutex>

#include "crypto/dane.hpp"
#include "crypto/tls_context.hpp"
#include "dns/resolver.hpp"
#include "common/log.hpp"
#include "common/metrics.hpp"
#include "gateway/facts/probe.hpp"
#include "gateway/smtp_client/smtp_client.hpp"
#include "gateway/outbound/transport_security.hpp"


namespace sealgate::gateway {
namespace asio = boost::asio;

namespace {
struct open_connection;
}

struct smtp_transport::impl {
  impl(asio::any_io_executor ex, dns::resolver& r, prober& p, delivery_options o)
      : executor(std::move(ex)), resolver(r), probe(p), options(std::move(o)),
        tls_context(crypto::make_client_context(options.ca_file)) {}
  asio::any_io_executor executor;
  dns::resolver& resolver;
  prober& probe;
  delivery_options options;
  std::shared_ptr<asio::ssl::context> tls_context;

  // Idle connections per MX host, newest last (Postfix's connection cache).
  std::mutex idle_mutex;
  std::map<std::string, std::vector<std::unique_ptr<open_connection>>> idle;
  std::unique_ptr<open_connection> take_idle(const std::string& host);
  // Keeps conn for the next transaction to host; false when it cannot be kept.
  bool keep_idle(const std::string& host, std::unique_ptr<open_connection>& conn);
  std::function<void(const tls_session_event&)> tls_sessions;

  void report(const std::string& domain, const std::string& host, const std::string& address,
              tls_report_row row) const {
    metrics::get().tls_session(row.policy_type, row.result_type);
    if (tls_sessions)
      tls_sessions({domain, host, address, std::string(row.policy_type), std::string(row.result_type)});
  }
};

namespace {

// How long an idle connection is kept, and how many transactions one carries
// (Postfix: smtp_connection_cache_time_limit 2s, smtp_connection_reuse_count_limit).
constexpr auto idle_time_limit = std::chrono::seconds(5);
constexpr unsigned reuse_count_limit = 100;
constexpr size_t idle_per_host_limit = 32;

// What became of one attempt on one address.
enum class session_end {
  finished,     // every recipient has its result for this attempt
  next_mx,      // this host could not be used (busy, broken, 4xx before RCPT): try the next one
  next_address  // the connection failed: try the host's next address
};

struct attempt {
  attempt(const outbound_transfer& transfer, std::vector<recipient_result>& r) : t(transfer), results(r) {}
  const outbound_transfer& t;
  std::vector<recipient_result>& results;
  std::string last_error;          // the most telling temporary problem so far
  std::string last_status = "4.4.1";
  std::string method_failure;      // the last verdict against a connection
  size_t hosts_tried = 0, hosts_failed_on_method = 0;
};

void set_all(attempt& a, const outcome& o, bool method_failed = false) {
  for (auto& r : a.results) {
    r.result = o;
    r.method_failed = method_failed;
  }
}

outcome of(const remote_reply& r) { return reply_outcome(r.code, r.enhanced, r.text()); }

// RFC 3461 5.2: NOTIFY and ORCPT go on unchanged to a next hop that offers DSN.
std::string rcpt_to(const outbound_transfer& t, size_t i, const smtp_extensions& ext) {
  std::string line = "RCPT TO:<" + t.recipients[i] + ">";
  if (ext.dsn && i < t.recipient_params.size()) {
    const auto& p = t.recipient_params[i];
    if (!p.notify.empty()) line += " NOTIFY=" + p.notify;
    if (!p.orcpt.empty()) line += " ORCPT=" + p.orcpt;
  }
  return line;
}

std::string where(const std::string& host, const asio::ip::address& a) { return host + "[" + a.to_string() + "]"; }

std::string mail_from(const outbound_transfer& t, const smtp_extensions& ext) {
  std::string line = "MAIL FROM:<" + t.sender + ">";
  if (ext.size) line += " SIZE=" + std::to_string(t.content->size());
  if (t.params.body == "8BITMIME" && ext.eight_bit_mime) line += " BODY=8BITMIME";
  if (t.params.smtputf8) line += " SMTPUTF8";
  if (t.requiretls) line += " REQUIRETLS";
  if (ext.dsn) {
    if (!t.params.ret.empty()) line += " RET=" + t.params.ret;
    if (!t.params.envid.empty()) line += " ENVID=" + t.params.envid;
  }
  return line;
}

// A connection that passed its check, with what it showed, kept between
// transactions to the same MX host (RFC 5321 4.1.1.5: RSET ends one
// transaction and the next MAIL starts another), as Postfix's connection
// cache does. Reused only when the new transaction's demand is met by the
// facts this connection showed: a kept connection never excuses anything.
struct open_connection {
  std::unique_ptr<smtp_client> client;
  asio::ip::address address;
  connection_security security;
  unsigned transactions = 0;
  std::chrono::steady_clock::time_point idle_since;
};

// Drops idle connections older than the limit (their sockets close with them).
void sweep(std::map<std::string, std::vector<std::unique_ptr<open_connection>>>& idle) {
  auto now = std::chrono::steady_clock::now();
  for (auto it = idle.begin(); it != idle.end();) {
    auto& v = it->second;
    v.erase(std::remove_if(v.begin(), v.end(), [&](const auto& c) { return now - c->idle_since > idle_time_limit; }),
            v.end());
    it = v.empty() ? idle.erase(it) : std::next(it);
  }
}

std::string fail_text(const smtp_result& r) { return r ? r.reply.text() : r.error.message(); }

void note_failure(attempt* a, const std::string& host, const asio::ip::address& address, const std::string& stage,
                  const smtp_result& r) {
  a->last_error = where(host, address) + " " + stage + ": " + fail_text(r);
  // A reply that is no success here (a 250 banner, say) counts as a temporary one.
  if (r) a->last_status = !r.reply.enhanced.empty() ? r.reply.enhanced : r.reply.permanent() ? "5.0.0" : "4.0.0";
}

// Connects to one address of one MX host: banner, EHLO, STARTTLS, EHLO, and
// the facts for the check. Null when the host could not be used (the reason
// is in *a); *end says whether to try the next address or the next host.
asio::awaitable<std::unique_ptr<open_connection>> connect_and_greet(
    std::shared_ptr<smtp_transport::impl> im, attempt* a, std::string host, asio::ip::address address,
    security_demand demand, bool dane, std::vector<crypto::tlsa_rr> tlsa, bool use_starttls, bool* retry_in_clear,
    session_end* end) {
  const auto& opt = im->options;
  auto executor = co_await asio::this_coro::executor;
  boost::beast::tcp_stream stream(executor);
  auto ec = co_await smtp_connect(stream, asio::ip::tcp::endpoint(address, opt.port), opt.timeouts.connect);
  if (ec) {
    a->last_error = "connect to " + where(host, address) + ": " + ec.message();
    *end = session_end::next_address;
    co_return nullptr;
  }
  *end = session_end::next_mx;
  auto conn = std::make_unique<open_connection>();
  conn->address = address;
  conn->client = std::make_unique<smtp_client>(std::move(stream), im->tls_context, opt.timeouts);
  auto& c = *conn->client;
  auto r = co_await c.greeting();
  if (!r || r.reply.code != 220) {
    note_failure(a, host, address, "greeting", r);
    if (r) co_await c.quit();
    co_return nullptr;
  }
  r = co_await c.ehlo(opt.helo_name);
  if (!r || !r.reply.positive()) {
    note_failure(a, host, address, "EHLO", r);
    if (r) co_await c.quit();
    co_return nullptr;
  }
  auto& cs = conn->security;
  cs.starttls_offered = c.extensions().starttls;
  // A session that tried TLS is reported (RFC 8460); the retry in clear after
  // a failed handshake, and a policy of no TLS at all, are not new tries.
  const bool reported = use_starttls && demand.level != policy::tls_level::none;
  if (cs.starttls_offered && use_starttls && demand.level != policy::tls_level::none) {
    r = co_await c.start_tls(host, opt.helo_name);
    if (!c.tls().active) {
      im->report(a->t.domain, host, address.to_string(), tls_report(demand, cs));
      // Postfix's "may" level does the same: a failed handshake is retried
      // in clear, but only where clear text is allowed at all.
      a->last_error = where(host, address) + " STARTTLS: " + fail_text(r);
      if (clear_text_allowed(demand)) {
        *retry_in_clear = true;
      } else {
        a->method_failure = "the TLS handshake with " + where(host, address) + " failed (" + fail_text(r) +
                            "), and TLS is required";
        ++a->hosts_failed_on_method;
      }
      co_return nullptr;
    }
    if (!r || !r.reply.positive()) {
      note_failure(a, host, address, "EHLO after STARTTLS", r);
      co_return nullptr;
    }
  }
  const auto& tls = c.tls();
  cs.tls_active = tls.active;
  if (tls.active) {
    cs.tls_version = policy::tls_version_from_protocol(tls.facts.protocol);
    cs.chain_verified = tls.verification.chain_verified;
    cs.name_matched = tls.verification.host_matched;
    if (dane) cs.dane_matched = crypto::dane_verify(tlsa, tls.chain, {host}).match == crypto::dane_match::match;
    cs.requiretls_offered = c.extensions().requiretls;
  }
  if (reported) im->report(a->t.domain, host, address.to_string(), tls_report(demand, cs));
  co_return conn;
}

// One transaction on a connection that passed its check. *reusable: the
// connection ended the transaction cleanly and may carry another.
asio::awaitable<session_end> transact(std::shared_ptr<smtp_transport::impl> im, attempt* a, std::string host,
                                      open_connection* conn, security_verdict verdict, bool* reusable,
                                      bool* stale) {
  const auto& opt = im->options;
  const auto& t = a->t;
  auto& c = *conn->client;
  const auto& address = conn->address;
  *reusable = false;
  const auto& tls = c.tls();
  for (auto& res : a->results) {
    res.mx_host = host;
    res.mx_address = address.to_string();
    res.tls_protocol = tls.active ? tls.facts.protocol : "";
    res.tls_cipher = tls.active ? tls.facts.cipher : "";
    res.certificate = verdict.certificate;
  }
  const auto& ext = c.extensions();
  if (t.params.smtputf8 && !ext.smtputf8) {
    set_all(*a, permanent_outcome("5.6.7", "the message needs SMTPUTF8 and " + where(host, address) +
                                               " does not offer it (RFC 6531)"));
    *reusable = true;
    co_return session_end::finished;
  }
  if (ext.size && *ext.size > 0 && t.content->size() > *ext.size) {
    set_all(*a, permanent_outcome("5.3.4", "the message is larger than " + where(host, address) + " accepts (SIZE " +
                                               std::to_string(*ext.size) + ")"));
    *reusable = true;
    co_return session_end::finished;
  }
  // MAIL and every RCPT in one write when the server pipelines (RFC 2920),
  // one round trip each otherwise.
  std::vector<std::string> lines{mail_from(t, ext)};
  for (size_t i = 0; i < t.recipients.size(); ++i) lines.push_back(rcpt_to(t, i, ext));
  std::vector<smtp_result> replies;
  if (ext.pipelining) {
    replies = co_await c.pipeline(lines, std::max(opt.timeouts.mail, opt.timeouts.rcpt));
  } else {
    replies.push_back(co_await c.command(lines[0], opt.timeouts.mail));
    for (size_t i = 1; i < lines.size() && replies[0] && replies[0].reply.positive(); ++i)
      replies.push_back(co_await c.command(lines[i], opt.timeouts.rcpt));
  }
  auto r = replies[0];
  if (!r && conn->transactions > 0) {
    // A kept connection the server has closed meanwhile: nothing was
    // accepted, so the transaction is simply tried on a fresh connection.
    *stale = true;
    co_return session_end::next_address;
  }
  if (!r || !r.reply.positive()) {
    note_failure(a, host, address, "MAIL FROM", r);
    if (r && r.reply.permanent()) {
      co_await c.quit();
      set_all(*a, of(r.reply));
      co_return session_end::finished;
    }
    if (r) co_await c.quit();
    co_return session_end::next_mx;
  }
  std::vector<size_t> accepted;
  for (size_t i = 0; i < t.recipients.size(); ++i) {
    r = replies[i + 1];
    auto& res = a->results[i];
    if (!r) {
      note_failure(a, host, address, "RCPT TO", r);
      set_all(*a, temporary_outcome("4.4.2", a->last_error));
      co_return session_end::finished;
    }
    if (r.reply.positive()) {
      accepted.push_back(i);  // DATA gives its outcome
    } else {
      res.result = of(r.reply);
    }
  }
  if (accepted.empty()) {
    // The transaction is open (MAIL was accepted): RSET ends it.
    auto rset = co_await c.command("RSET", opt.timeouts.mail);
    *reusable = rset && rset.reply.positive();
    co_return session_end::finished;
  }
  r = co_await c.send_data(t.content);
  for (size_t i : accepted) {
    auto& res = a->results[i];
    if (r.error == smtp_client_error::unexpected_reply) {
      // 250 to DATA, or 354 after the dot: whether the server has the
      // message is unknown, and it is never recorded as delivered.
      res.result = temporary_outcome("4.5.0", "protocol error from " + where(host, address) +
                                                  " during DATA: unexpected reply " + r.reply.text());
    } else if (!r) {
      // The server may or may not have the message: SMTP's at-least-once
      // window; a retry may deliver it twice, never zero times.
      res.result = temporary_outcome("4.4.2", "lost connection with " + where(host, address) +
                                                  " during DATA: " + r.error.message());
    } else {
      res.result = of(r.reply);
    }
  }
  *reusable = static_cast<bool>(r);
  co_return session_end::finished;
}

// After a transaction: kept for the next one, or closed with QUIT.
asio::awaitable<void> release(std::shared_ptr<smtp_transport::impl> im, std::string host,
                              std::unique_ptr<open_connection> conn, bool reusable) {
  if (reusable && ++conn->transactions < reuse_count_limit && im->keep_idle(host, conn)) co_return;
  co_await conn->client->quit();
}

asio::awaitable<std::vector<recipient_result>> run_transfer(std::shared_ptr<smtp_transport::impl> im,
                                                            outbound_transfer t) {
  std::vector<recipient_result> results(t.recipients.size());
  attempt a{t, results};
  set_all(a, temporary_outcome("4.4.1", "no MX host of " + t.domain + " could be reached"));

  auto mx = co_await im->resolver.mx_hosts(t.domain);
  switch (mx.status) {
    case dns::mx_outcome::temporary_failure:
      set_all(a, temporary_outcome("4.4.3", "MX lookup for " + t.domain + " failed: " + mx.error));
      co_return results;
    case dns::mx_outcome::null_mx:
      set_all(a, permanent_outcome("5.1.10", t.domain + " accepts no mail (null MX, RFC 7505)"));
      co_return results;
    case dns::mx_outcome::no_such_domain:
      set_all(a, permanent_outcome("5.1.2", t.domain + " does not exist or has no mail host"));
      co_return results;
    case dns::mx_outcome::hosts: break;
  }
  auto sts = co_await im->probe.mta_sts(t.domain);
  if (sts.status == dns::outcome::temporary_failure) {
    set_all(a, temporary_outcome("4.7.5", "the MTA-STS policy of " + t.domain + " could not be read: " + sts.error));
    co_return results;
  }
  bool enforce = sts.status == dns::outcome::found && sts.policy.mode == sts_mode::enforce;
  bool testing = sts.status == dns::outcome::found && sts.policy.mode == sts_mode::testing;

  for (const auto& host : mx.hosts) {
    ++a.hosts_tried;
    bool in_sts = (enforce || testing) && sts_mx_allowed(sts.policy, host.name);
    if (enforce && !in_sts) {
      // RFC 8461 4.1: under enforce, a host the policy does not list is not used.
      a.method_failure = "MTA-STS: " + host.name + " is not listed in the policy of " + t.domain;
      ++a.hosts_failed_on_method;
      continue;
    }
    auto addrs = co_await resolve_host_addresses(im->resolver, host.name);
    if (addrs.status != policy::fact::found) {
      a.last_error = host.name + ": " + addrs.error;
      continue;
    }
    // From the DNS, as every delivery must see them now (RFC 7672 2.2), not
    // from a probe: a delivery never opens a connection only to learn them.
    auto tlsa = co_await look_up_tlsa(im->resolver, im->options.port, host.name, addrs.secure);
    if (tlsa.state == tlsa_state::bogus) {
      // RFC 7672 2.2: a TLSA lookup that failed makes the host unusable now.
      a.last_error = "TLSA lookup for " + host.name + " failed: " + tlsa.error;
      a.last_status = "4.7.5";
      im->report(t.domain, host.name, "", {"tlsa", "dnssec-invalid"});
      continue;
    }
    bool dane = false;
    if (tlsa.state == tlsa_state::secure)
      for (const auto& rr : tlsa.records) dane = dane || crypto::usable_for_smtp(rr);
    security_demand demand{t.transport, std::max(t.min_tls_version, policy::tls_floor), t.requiretls, dane, enforce,
                           in_sts, testing};
    size_t method_failures_before = a.hosts_failed_on_method;
    // A connection kept from an earlier transaction to this host, when what
    // it showed meets this demand.
    bool next_host = false;
    while (auto kept = im->take_idle(host.name)) {
      auto verdict = judge(demand, kept->security);
      if (!verdict.ok) {
        // It suits other transfers (a clear one, say); this one opens its own.
        im->keep_idle(host.name, kept);
        break;
      }
      bool reusable = false, stale = false;
      auto end = co_await transact(im, &a, host.name, kept.get(), verdict, &reusable, &stale);
      if (stale) continue;  // closed by the server meanwhile: try another, or a fresh one
      co_await release(im, host.name, std::move(kept), reusable);
      if (end == session_end::finished) co_return results;
      next_host = true;
      break;
    }
    for (size_t i = 0; !next_host && i < addrs.list.size(); ++i) {
      const auto& address = addrs.list[i];
      bool retry_in_clear = false;
      session_end end = session_end::next_address;
      auto conn = co_await connect_and_greet(im, &a, host.name, address, demand, dane, tlsa.records, true,
                                             &retry_in_clear, &end);
      if (!conn && retry_in_clear)
        conn = co_await connect_and_greet(im, &a, host.name, address, demand, dane, tlsa.records, false,
                                          &retry_in_clear, &end);
      if (!conn) {
        if (end == session_end::next_mx) break;
        continue;
      }
      auto verdict = judge(demand, conn->security);
      if (!verdict.ok) {
        // Nothing of the message goes over this connection.
        a.method_failure = verdict.failure + " (" + where(host.name, address) + ")";
        ++a.hosts_failed_on_method;
        co_await conn->client->quit();
        break;
      }
      bool reusable = false, stale = false;
      end = co_await transact(im, &a, host.name, conn.get(), verdict, &reusable, &stale);
      co_await release(im, host.name, std::move(conn), reusable);
      if (end == session_end::finished) co_return results;
      if (end == session_end::next_mx) break;
    }
    // Counted once per host, however many of its addresses were tried.
    if (a.hosts_failed_on_method > method_failures_before) a.hosts_failed_on_method = method_failures_before + 1;
  }
  if (a.hosts_tried > 0 && a.hosts_failed_on_method == a.hosts_tried) {
    // Every MX fell short of the requirement: the rule's on_failure decides.
    set_all(a, temporary_outcome("4.7.10", a.method_failure), true);
  } else {
    // No MX host took the transaction (Postfix's smtp_trouble.c: trouble on a
    // non-final MX moves on to the next; when the last one fails too, defer).
    set_all(a, temporary_outcome(a.last_status.empty() || a.last_status[0] != '4' ? "4.4.1" : a.last_status,
                                 a.last_error.empty() ? "no MX host of " + t.domain + " could be reached"
                                                      : a.last_error));
  }
  co_return results;
}

}  // namespace

std::unique_ptr<open_connection> smtp_transport::impl::take_idle(const std::string& host) {
  std::lock_guard lock(idle_mutex);
  sweep(idle);
  auto it = idle.find(host);
  if (it == idle.end()) return nullptr;
  auto conn = std::move(it->second.back());
  it->second.pop_back();
  if (it->second.empty()) idle.erase(it);
  return conn;
}

bool smtp_transport::impl::keep_idle(const std::string& host, std::unique_ptr<open_connection>& conn) {
  std::lock_guard lock(idle_mutex);
  sweep(idle);
  auto& v = idle[host];
  if (v.size() >= idle_per_host_limit) return false;
  conn->idle_since = std::chrono::steady_clock::now();
  v.push_back(std::move(conn));
  return true;
}

namespace {
// Every second, idle connections past their time are taken out of the cache
// and closed politely (QUIT), so that a destination that gets no more mail
// is not left holding our connections. Holds the transport only weakly.
asio::awaitable<void> close_idle_connections(std::weak_ptr<smtp_transport::impl> weak) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (;;) {
    timer.expires_after(std::chrono::seconds(1));
    auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    if (ec) co_return;
    std::vector<std::unique_ptr<open_connection>> expired;
    {
      auto im = weak.lock();
      if (!im) co_return;
      std::lock_guard lock(im->idle_mutex);
      auto now = std::chrono::steady_clock::now();
      for (auto it = im->idle.begin(); it != im->idle.end();) {
        auto& v = it->second;
        for (auto c = v.begin(); c != v.end();) {
          if (now - (*c)->idle_since > idle_time_limit) {
            expired.push_back(std::move(*c));
            c = v.erase(c);
          } else {
            ++c;
          }
        }
        it = v.empty() ? im->idle.erase(it) : std::next(it);
      }
    }
    for (auto& c : expired) co_await c->client->quit();
  }
}
}  // namespace

smtp_transport::smtp_transport(asio::any_io_executor executor, dns::resolver& resolver, prober& probe,
                               delivery_options options)
    : impl_(std::make_shared<impl>(executor, resolver, probe, std::move(options))) {
  asio::co_spawn(asio::make_strand(executor), close_idle_connections(impl_), [](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      log_error(std::string("connection cache: ") + x.what());
    }
  });
}

smtp_transport::~smtp_transport() = default;

asio::awaitable<std::vector<recipient_result>> smtp_transport::send(outbound_transfer t) {
  co_return co_await asio::co_spawn(asio::make_strand(impl_->executor), run_transfer(impl_, std::move(t)),
                                    asio::use_awaitable);
}

void smtp_transport::on_tls_session(std::function<void(const tls_session_event&)> observer) {
  impl_->tls_sessions = std::move(observer);
}

}  // namespace sealgate::gateway
