// The outbound queue; see delivery.hpp. Everything here runs on one strand:
// the schedule, the in-flight set and the per-destination counters are only
// touched from it. Blocking file work is small (an envelope, a status line)
// and stays here; message content is read once per pass.
#include "gateway/queue/delivery.hpp"

#include "common/unique_fd.hpp"

#include "common/metrics.hpp"
#include "common/text.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <limits>
#include <map>
#include <mutex>
#include <random>
#include <set>

#include "crypto/password.hpp"
#include "dns/domain_name.hpp"
#include "gateway/queue/dsn.hpp"
#include "common/log.hpp"
#include "gateway/mail/headers.hpp"
#include "gateway/methods/method.hpp"
#include "gateway/methods/subject_tags.hpp"
#include "policy/classify.hpp"
#include "policy/message_facts.hpp"


namespace sealgate::gateway {
namespace asio = boost::asio;
using policy::method;

namespace {

constexpr int64_t held = std::numeric_limits<int64_t>::max();  // next_try of a recipient held by policy

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string header_value(const policy::message_facts& f, std::string_view name) {
  for (const auto& [n, v] : f.headers)
    if (iequals_ascii(n, name)) return v;
  return "";
}

}  // namespace

std::shared_ptr<const policy::policy> builtin_policy() {
  auto p = std::make_shared<policy::policy>();
  p->sha256 = "builtin";
  policy::rule r;
  r.name = "builtin-default";
  r.description = "no policy_file: TLS 1.2 or better, else wait";
  r.methods = {method::tls};
  r.tls.min_version = policy::tls_floor;
  r.on_failure = policy::on_failure::defer;
  p->rules.push_back(r);
  return p;
}

struct queue_manager::state : std::enable_shared_from_this<queue_manager::state> {
  state(asio::any_io_executor ex, delivery_settings st, spool& sp, database* d,
        std::function<std::shared_ptr<const policy::policy>()> p, delivery_services sv)
      : strand(asio::make_strand(ex)),
        wake(strand),
        settings(std::move(st)),
        spooler(sp),
        db(d),
        current_policy(std::move(p)),
        services(std::move(sv)),
        rng(std::random_device{}()) {}

  asio::strand<asio::any_io_executor> strand;
  asio::steady_timer wake;
  delivery_settings settings;
  spool& spooler;
  database* db;
  std::function<std::shared_ptr<const policy::policy>()> current_policy;
  delivery_services services;
  std::mt19937_64 rng;

  std::multimap<int64_t, std::string> due;  // when -> id
  std::map<std::string, int64_t> when;      // id -> its key in due
  std::set<std::string> in_flight, rerun, forced;
  // Recipient outcomes that could not be written to their status file (the
  // spool disk was full): kept here and laid over the file's on every pass
  // until a write succeeds, so that a delivered recipient is never sent again.
  std::map<std::string, std::map<size_t, rcpt_status>> unwritten;
  std::map<std::string, size_t> per_domain;
  std::map<std::string, std::vector<std::shared_ptr<asio::steady_timer>>> slot_waiters;
  size_t running = 0;
  bool stopped = false;
  std::atomic<size_t> active_count{0};  // when.size() + running, for readers off the strand
  void publish() { active_count.store(when.size() + running); }

  mutable std::mutex counters_mutex;
  counters totals;

  // Each message the queue knows, by state and arrival, for census(). Kept
  // beside due/when (strand-only) under a mutex of its own, since scrapes
  // come from the status listener's thread.
  struct census_entry {
    message_state state = message_state::queued;
    int64_t received = 0;
  };
  mutable std::mutex census_mutex;
  std::map<std::string, census_entry> known;
  void note(const std::string& id, message_state st, int64_t received = 0) {
    std::lock_guard lock(census_mutex);
    auto [it, fresh] = known.try_emplace(id, census_entry{st, received ? received : unix_now()});
    it->second.state = st;
    if (received) it->second.received = received;
  }
  void forget(const std::string& id) {
    std::lock_guard lock(census_mutex);
    known.erase(id);
  }

  void schedule(const std::string& id, int64_t at) {
    auto it = when.find(id);
    if (it != when.end()) {
      if (it->second <= at) return;  // already due earlier
      auto range = due.equal_range(it->second);
      for (auto d = range.first; d != range.second; ++d)
        if (d->second == id) {
          due.erase(d);
          break;
        }
    }
    when[id] = at;
    due.emplace(at, id);
    publish();
    {
      std::lock_guard lock(census_mutex);
      known.try_emplace(id, census_entry{message_state::queued, unix_now()});
    }
    if (due.begin()->first == at) wake.cancel();
  }

  double random01() { return std::uniform_real_distribution<double>(0.0, 1.0)(rng); }

  void count(uint64_t counters::*field, uint64_t n = 1) {
    std::lock_guard lock(counters_mutex);
    totals.*field += n;
  }
};

namespace {
using state_ptr = std::shared_ptr<queue_manager::state>;
using message_state = queue_manager::message_state;

asio::awaitable<void> acquire_slot(state_ptr s, std::string domain) {
  while (s->per_domain[domain] >= s->settings.queue.destination_concurrency) {
    auto t = std::make_shared<asio::steady_timer>(s->strand, asio::steady_timer::time_point::max());
    s->slot_waiters[domain].push_back(t);
    co_await t->async_wait(asio::as_tuple(asio::use_awaitable));
  }
  ++s->per_domain[domain];
}

void release_slot(const state_ptr& s, const std::string& domain) {
  if (--s->per_domain[domain] == 0) s->per_domain.erase(domain);
  auto w = s->slot_waiters.find(domain);
  if (w == s->slot_waiters.end()) return;
  auto t = w->second.front();
  w->second.erase(w->second.begin());
  if (w->second.empty()) s->slot_waiters.erase(w);
  t->cancel();
}

// Everything one pass over a message decided, applied at its end.
struct pass {
  std::string id;
  queued_message* message = nullptr;
  std::shared_ptr<const policy::policy> policy;
  int64_t now = 0;
  std::vector<std::pair<size_t, rcpt_status>> changes;
  std::vector<attempt_row> rows;
  std::vector<dsn_recipient> failures, delays;
  // For the record, by recipient index: the content classes the policy saw,
  // and the key an encryption method used.
  std::map<size_t, std::string> classes, key_fingerprints;
};

attempt_row row_for(const pass& p, size_t index, const std::string& state_name, const std::string& method_name,
                    const policy::decision* d, const recipient_result* r, const std::string& reason) {
  attempt_row row;
  row.queue_id = p.id;
  row.index = index;
  row.address = p.message->envelope.recipients[index].recipient;
  row.at = p.now;
  row.outcome = state_name;
  row.attempted = r != nullptr;
  row.method = method_name;
  if (d) row.rule = d->rule;
  row.policy_sha256 = p.policy->sha256;
  if (auto c = p.classes.find(index); c != p.classes.end()) row.classes = c->second;
  if (auto k = p.key_fingerprints.find(index); k != p.key_fingerprints.end()) row.key_fingerprint = k->second;
  if (r) {
    row.mx_host = r->mx_host;
    row.mx_address = r->mx_address;
    row.tls_protocol = r->tls_protocol;
    row.tls_cipher = r->tls_cipher;
    row.certificate = r->certificate;
  }
  row.reply = reason;
  return row;
}

// The sender sees the outcome's public text; logs and the record its reason.
dsn_recipient dsn_line(const pass& p, size_t index, const outcome& o, const std::string& method_name,
                       const recipient_result* r) {
  dsn_recipient d;
  d.address = p.message->envelope.recipients[index].recipient;
  d.orcpt = p.message->envelope.recipients[index].params.orcpt;
  d.status = o.enhanced;
  d.diagnostic = o.public_text;
  d.method = method_name;
  d.last_attempt = p.now;
  if (r) d.remote_mta = r->mx_host;
  return d;
}

void finish_recipient(const state_ptr& s, pass& p, size_t index, rcpt_state final_state, const outcome& o,
                      const std::string& method_name, const policy::decision* d, const recipient_result* r) {
  const std::string& reason = o.reason;
  auto st = p.message->status[index];
  st.state = final_state;
  st.time = p.now;
  if (r) ++st.attempts;
  st.method = method_name;
  st.detail = reason;
  p.message->status[index] = st;
  p.changes.emplace_back(index, st);
  const char* state_name = final_state == rcpt_state::delivered ? "delivered"
                           : final_state == rcpt_state::expired ? "expired"
                                                                 : "bounced";
  p.rows.push_back(row_for(p, index, state_name, method_name, d, r, reason));
  const auto& rcpt = p.message->envelope.recipients[index];
  std::string where = r && !r->mx_host.empty() ? ", relay=" + r->mx_host + "[" + r->mx_address + "]" : "";
  std::string tls = r && !r->tls_protocol.empty() ? ", tls=" + r->tls_protocol : "";
  log(final_state == rcpt_state::delivered ? log_level::info : log_level::warning, p.id,
      "to=<" + rcpt.recipient + ">" + where + ", method=" + method_name + tls + ", status=" + state_name + " (" +
          reason + ")");
  metrics::get().recipient(method_name, final_state == rcpt_state::delivered ? metrics::recipient_status::delivered
                                          : final_state == rcpt_state::expired ? metrics::recipient_status::expired
                                                                                : metrics::recipient_status::bounced);
  metrics::get().delivery_latency(std::chrono::seconds(std::max<int64_t>(0, p.now - p.message->envelope.received)));
  if (final_state == rcpt_state::delivered) {
    s->count(&queue_manager::counters::delivered);
  } else {
    s->count(final_state == rcpt_state::expired ? &queue_manager::counters::expired : &queue_manager::counters::bounced);
    if (notify_wants(rcpt.params.notify, dsn_kind::failure))
      p.failures.push_back(dsn_line(p, index, o, method_name, r));
  }
}

void defer_recipient(const state_ptr& s, pass& p, size_t index, const outcome& o, const std::string& method_name,
                     const policy::decision* d, const recipient_result* r) {
  const std::string& reason = o.reason;
  const auto& q = s->settings.queue;
  int64_t age = p.now - p.message->envelope.received;
  if (age >= q.max_age.count()) {
    finish_recipient(s, p, index, rcpt_state::expired,
                     reworded(o, "4.4.7", "delivery time expired; last problem: " + reason), method_name, d, r);
    return;
  }
  metrics::get().recipient(method_name, metrics::recipient_status::deferred);
  auto st = p.message->status[index];
  st.state = rcpt_state::pending;
  st.time = p.now;
  ++st.attempts;
  st.next_try = p.now + retry_delay(st.attempts, q.retry_min, q.retry_max, s->random01()).count();
  st.method = method_name;
  st.detail = reason;
  const auto& rcpt = p.message->envelope.recipients[index];
  if (!st.delay_warned && q.delay_warning < q.max_age && age >= q.delay_warning.count()) {
    st.delay_warned = true;  // one notice per recipient, whatever NOTIFY says
    if (notify_wants(rcpt.params.notify, dsn_kind::delay)) p.delays.push_back(dsn_line(p, index, o, method_name, r));
  }
  p.message->status[index] = st;
  p.changes.emplace_back(index, st);
  p.rows.push_back(row_for(p, index, "deferred", method_name, d, r, reason));
  s->count(&queue_manager::counters::deferred);
  log(log_level::info, p.id, "to=<" + rcpt.recipient + ">, method=" + method_name + ", status=deferred (" + reason + ")");
}

void hold_recipient(pass& p, size_t index, const policy::decision& d) {
  auto st = p.message->status[index];
  if (st.next_try == held) return;  // already held: nothing new to record
  st.time = p.now;
  st.next_try = held;
  st.method = "hold";
  st.detail = "held by policy rule " + d.rule;
  p.message->status[index] = st;
  p.changes.emplace_back(index, st);
  p.rows.push_back(row_for(p, index, "held", "hold", &d, nullptr, st.detail));
  log(log_level::info, p.id, "to=<" + p.message->envelope.recipients[index].recipient + ">, status=held (rule " + d.rule + ")");
}

// Spools a message the gateway writes itself (a DSN, a portal notification,
// code or reply) and schedules it: its queue id, or "" when it could not be
// made durable. listener names its origin ("dsn", "portal").
asio::awaitable<std::string> spool_generated(state_ptr s, std::string sender, std::string recipient, std::string text,
                                             std::string listener, bool smtputf8 = false) {
  auto msg = s->spooler.begin();
  auto& e = msg->envelope;
  e.queue_id = msg->id();
  e.received = unix_now();
  e.listener = std::move(listener);
  e.client_address = "127.0.0.1";
  e.helo = s->settings.hostname;
  e.sender = std::move(sender);
  e.params.smtputf8 = smtputf8;
  e.recipients = {parsed_rcpt{std::move(recipient), {}}};
  e.content_size = text.size();
  std::string id = e.queue_id;
  msg->write(encode_envelope(e));
  msg->write(text);
  auto [ec] = co_await s->spooler.async_commit(std::move(msg), asio::as_tuple(asio::use_awaitable));
  if (ec) {
    log(log_level::error, id, "cannot spool: " + ec.message());
    co_return "";
  }
  s->schedule(id, unix_now());
  co_return id;
}

// Spools a DSN from the null sender to the message's sender.
asio::awaitable<void> spool_dsn(state_ptr s, dsn_kind kind, const pass& p, std::vector<dsn_recipient> recipients) {
  dsn_input in;
  in.kind = kind;
  in.reporting_mta = s->settings.hostname;
  in.queue_id = p.id;
  in.sender = p.message->envelope.sender;
  in.params = p.message->envelope.params;
  in.arrival = p.message->envelope.received;
  in.now = p.now;
  in.retry_until = p.message->envelope.received + s->settings.queue.max_age.count();
  in.recipients = std::move(recipients);
  if (!in.params.ret.empty()) {
    // Only the header block is read back: the body never goes into a DSN.
    unique_fd fd(::open(queue_file(s->settings.spool_dir, p.id).c_str(), O_RDONLY | O_CLOEXEC));
    if (fd) {
      std::string head(256 * 1024, '\0');
      ssize_t n = ::pread(fd.get(), head.data(), head.size(), static_cast<off_t>(p.message->content_offset));
      fd.reset();
      head.resize(n > 0 ? static_cast<size_t>(n) : 0);
      in.original_headers = header_block(head);
      if (in.original_headers.size() == head.size()) in.original_headers.clear();  // no end of headers seen: leave them out
    }
  }
  std::string text = make_dsn(in);
  if (text.empty()) co_return;  // the null sender never gets a DSN
  // RFC 6533: a report with UTF-8 addresses needs SMTPUTF8 on its way.
  std::string dsn_id = co_await spool_generated(s, "", p.message->envelope.sender, std::move(text), "dsn",
                                                dsn_is_global(in));
  if (dsn_id.empty()) {
    log(log_level::error, p.id, "cannot spool the delivery status notification");
    co_return;
  }
  s->count(&queue_manager::counters::dsns);
  log(log_level::info, p.id, std::string(kind == dsn_kind::failure ? "failure" : "delay") + " notification " + dsn_id +
                                 " to <" + p.message->envelope.sender + ">");
}

// What classification needs of a message's content, computed once per pass.
struct scanned_message {
  policy::message_facts facts;
  policy::content_verdicts verdicts;
};

// The MIME walk and every content test of the policy (regexes, DLP), whose
// cost grows with the message: on the content executor for a large message,
// which is read whole here and let go again, one at a time on that
// executor, so at most one such copy at once.
asio::awaitable<std::shared_ptr<const scanned_message>> scan_message(std::shared_ptr<const policy::policy> pol,
                                                                     std::shared_ptr<const message_content> content) {
  auto out = std::make_shared<scanned_message>();
  if (const std::string* whole = content->memory()) {
    out->facts = policy::read_message(*whole);
  } else {
    std::string bytes;
    if (!content->read_all(bytes)) throw std::runtime_error("cannot read the spool file");
    out->facts = policy::read_message(bytes);
  }
  out->verdicts = policy::scan_content(*pol, out->facts);
  co_return out;
}

// The Subject rewrite on the header block alone: the body is still read from
// the spool file as it is sent. A header block longer than 1 MiB is left as it is.
std::shared_ptr<const message_content> strip_subject_tags_of(const std::shared_ptr<const message_content>& content,
                                                             const std::vector<std::string>& tags) {
  if (const std::string* whole = content->memory())
    return message_content::in_memory(strip_subject_tags_in(*whole, tags));
  std::string head;
  if (!content->read(0, 1 << 20, head)) return content;
  size_t end = head.find("\r\n\r\n");
  if (end == std::string::npos) return content;
  head.resize(end + 4);
  std::string rewritten = strip_subject_tags_in(head, tags);
  if (rewritten == head) return content;
  return content->with_start_replaced(head.size(), std::move(rewritten));
}

struct pending_recipient {
  size_t index;
  std::vector<method> failed;
};

// Decides, acts and sends for the due recipients of one domain. Facts are
// looked up only where the policy can read them (policy::needed_facts): a
// recipient whose rule holds or rejects costs no DNS query and no key search,
// and is given unknown facts, which could only make decide() defer.
asio::awaitable<void> deliver_domain(state_ptr s, pass& p, std::string domain, std::vector<size_t> indexes,
                                     std::shared_ptr<const message_content> content,
                                     std::shared_ptr<const scanned_message> scanned) {
  const auto& env = p.message->envelope;
  // The portal's own mail (notifications, codes) never goes to the portal: a
  // notification of a notification would never reach anyone.
  const bool portal_open = s->services.portal_available && env.listener != "portal" && s->services.portal_available();
  std::map<size_t, std::vector<policy::class_match>> classes;
  bool domain_needed = false;
  for (size_t i : indexes) {
    policy::decide_input in;
    in.envelope = {env.sender, env.recipients[i].recipient, env.listener, env.auth_user};
    in.classes = policy::classify(*p.policy, scanned->verdicts, in.envelope);
    in.portal_configured = portal_open;
    domain_needed = domain_needed || policy::needed_facts(*p.policy, in).domain;
    std::string names;
    for (const auto& c : in.classes) names += (names.empty() ? "" : ",") + c.name;
    p.classes[i] = std::move(names);
    classes[i] = std::move(in.classes);
  }
  // Later rounds only remove methods, so they never need more than the first.
  policy::domain_facts dfacts = policy::unknown_domain();
  if (domain_needed) {
    destination_facts destination = co_await s->services.domain_facts(domain);
    if (!destination.takes_mail) {
      for (size_t i : indexes)
        finish_recipient(s, p, i, rcpt_state::bounced, destination.refusal, "none", nullptr, nullptr);
      co_return;
    }
    dfacts = destination.policy;
  }
  std::vector<pending_recipient> round;
  for (size_t i : indexes) round.push_back({i, {}});
  std::map<size_t, policy::key_facts> keys;
  // One rewrite per set of tags, not one per recipient (a large message's
  // header block is read from the file for it).
  std::map<std::vector<std::string>, std::shared_ptr<const message_content>> stripped;

  // Each round decides for the recipients still open; a method failure with
  // on_failure: next sends the recipient into the next round without it.
  for (int guard = 0; !round.empty() && guard < 8; ++guard) {
    struct group {
      outbound_transfer transfer;
      std::vector<size_t> indexes;
      std::vector<policy::decision> decisions;
      std::vector<std::vector<method>> failed;
    };
    std::map<std::string, group> groups;
    std::vector<pending_recipient> next;

    auto method_failure = [&](const pending_recipient& r, const policy::decision& d, const std::string& why,
                              const recipient_result* result) {
      std::string name(policy::to_string(d.chosen));
      switch (d.on_failure) {
        case policy::on_failure::next: {
          auto failed = r.failed;
          failed.push_back(d.chosen);
          p.rows.push_back(row_for(p, r.index, "method-failed", name, &d, result, why));
          next.push_back({r.index, failed});
          break;
        }
        case policy::on_failure::bounce:
          finish_recipient(s, p, r.index, rcpt_state::bounced, permanent_outcome("5.7.10", why), name, &d, result);
          break;
        case policy::on_failure::defer:
          defer_recipient(s, p, r.index, temporary_outcome("4.7.10", why), name, &d, result);
          break;
      }
    };

    for (const auto& r : round) {
      const auto& rcpt = env.recipients[r.index];
      policy::decide_input in;
      in.envelope = {env.sender, rcpt.recipient, env.listener, env.auth_user};
      in.classes = classes[r.index];
      in.domain = dfacts;
      in.portal_configured = portal_open;
      in.failed = r.failed;
      in.keys = policy::unknown_keys();
      if (policy::needed_facts(*p.policy, in).keys) {
        if (!keys.count(r.index)) keys[r.index] = co_await s->services.key_facts(rcpt.recipient);
        in.keys = keys[r.index];
      }
      policy::decision d = policy::decide(*p.policy, in);
      std::string name(policy::to_string(d.chosen));
      const delivery_method& chosen = method_for(d.chosen);
      method_request request{p.id, rcpt.recipient, &d, nullptr, &s->services.encrypt, &s->services.deposit, env.sender};
      if (chosen.reads_content()) {
        request.content = content;
        if (!d.strip_subject_tags.empty()) {
          auto& rewritten = stripped[d.strip_subject_tags];
          if (!rewritten) rewritten = strip_subject_tags_of(content, d.strip_subject_tags);
          request.content = rewritten;
        }
      }
      method_action action = co_await chosen.act(std::move(request));
      switch (action.next) {
        case method_action::step::bounce:
          finish_recipient(s, p, r.index, rcpt_state::bounced, action.result, name, &d, nullptr);
          continue;
        case method_action::step::hold:
          hold_recipient(p, r.index, d);
          continue;
        case method_action::step::defer:
          defer_recipient(s, p, r.index, action.result, name, &d, nullptr);
          continue;
        case method_action::step::method_failed:
          method_failure(r, d, action.result.reason, nullptr);
          continue;
        case method_action::step::deposited: {
          // The notification is made durable before the recipient counts as
          // delivered: a crash in between deposits and notifies again (a
          // second link), never leaves a deposit nobody hears of.
          std::string notice = co_await spool_generated(s, s->services.portal_sender, rcpt.recipient,
                                                        std::move(action.notification), "portal");
          if (notice.empty()) {
            defer_recipient(s, p, r.index, temporary_outcome("4.3.0", "cannot spool the portal notification"), name,
                            &d, nullptr);
            continue;
          }
          if (s->services.portal_notified)
            s->services.portal_notified(action.portal_entry, p.id, rcpt.recipient, notice);
          finish_recipient(s, p, r.index, rcpt_state::delivered,
                           reworded(action.result, action.result.enhanced,
                                    action.result.reason + ", notification " + notice),
                           name, &d, nullptr);
          continue;
        }
        case method_action::step::send:
          if (!action.key_id.empty()) p.key_fingerprints[r.index] = action.key_id;
          break;
      }
      std::string key = name + "|" + std::string(policy::to_string(d.transport)) + "|" +
                        std::string(policy::to_string(d.min_tls_version));
      for (const auto& t : d.strip_subject_tags) key += "|" + t;
      if (action.own_transfer) key += "|" + std::to_string(r.index);  // encrypted for this recipient alone
      auto& g = groups[key];
      if (g.indexes.empty()) {
        g.transfer.queue_id = p.id;
        g.transfer.domain = domain;
        g.transfer.sender = env.sender;
        g.transfer.params = env.params;
        g.transfer.method = d.chosen;
        g.transfer.transport = d.transport;
        g.transfer.min_tls_version = d.min_tls_version;
        g.transfer.requiretls = env.params.requiretls;
        if (env.params.requiretls) {
          g.transfer.transport = std::max(g.transfer.transport, policy::tls_level::verified);
          g.transfer.min_tls_version = std::max(g.transfer.min_tls_version, policy::tls_floor);
        }
        g.transfer.content = action.content;
      }
      g.transfer.recipients.push_back(rcpt.recipient);
      g.transfer.recipient_params.push_back(rcpt.params);
      g.indexes.push_back(r.index);
      g.decisions.push_back(d);
      g.failed.push_back(r.failed);
    }

    for (auto& [key, g] : groups) {
      if (s->services.finish) {
        // Signing reads the whole content: a failure leaves it queued, never
        // sends it unsigned and half-read.
        std::string why;
        try {
          g.transfer.content = co_await s->services.finish(p.id, content, g.transfer.content);
        } catch (const std::exception& e) {
          why = e.what();
        }
        if (!why.empty()) {
          log(log_level::error, p.id, "cannot prepare the message for sending: " + why);
          for (size_t k = 0; k < g.indexes.size(); ++k)
            defer_recipient(s, p, g.indexes[k], temporary_outcome("4.3.0", "cannot prepare the message for sending"),
                            std::string(policy::to_string(g.decisions[k].chosen)), &g.decisions[k], nullptr);
          continue;
        }
      }
      co_await acquire_slot(s, domain);
      std::vector<recipient_result> results;
      try {
        s->count(&queue_manager::counters::attempts);
        results = co_await s->services.send(g.transfer);
      } catch (const std::exception& e) {
        results.clear();
        log(log_level::error, p.id, std::string("transport failed: ") + e.what());
      }
      release_slot(s, domain);
      if (!results.empty()) {
        const auto& first = results.front();
        metrics::get().transfer(first.tls_protocol, first.certificate,
                                first.result.delivered()   ? "delivered"
                                : first.method_failed      ? "method_failed"
                                : first.result.permanent() ? "bounced"
                                                           : "deferred");
      }
      for (size_t k = 0; k < g.indexes.size(); ++k) {
        recipient_result r;
        if (k < results.size()) {
          r = results[k];
        } else {
          r.result = temporary_outcome("4.3.0", "internal error in the SMTP client");
        }
        const auto& d = g.decisions[k];
        std::string name(policy::to_string(d.chosen));
        if (r.result.delivered()) {
          finish_recipient(s, p, g.indexes[k], rcpt_state::delivered, r.result, name, &d, &r);
        } else if (r.method_failed && g.transfer.requiretls) {
          // RFC 8689 4.2.1: the message is returned, not relayed with less.
          finish_recipient(s, p, g.indexes[k], rcpt_state::bounced,
                           permanent_outcome("5.7.30", "REQUIRETLS could not be honoured: " + r.result.reason), name,
                           &d, &r);
        } else if (r.method_failed) {
          method_failure({g.indexes[k], g.failed[k]}, d, r.result.reason, &r);
        } else if (r.result.permanent()) {
          finish_recipient(s, p, g.indexes[k], rcpt_state::bounced, r.result, name, &d, &r);
        } else {
          defer_recipient(s, p, g.indexes[k], r.result, name, &d, &r);
        }
      }
    }
    round = std::move(next);
  }
  for (const auto& r : round)  // methods exhausted by repeated failures
    defer_recipient(s, p, r.index, temporary_outcome("4.7.10", "every method of the rule failed"), "defer", nullptr,
                    nullptr);
}

// Closes a pass: status lines, DSNs, records; removes the message when done.
// Writes this pass's status lines, with any that earlier passes could not
// write. On failure they stay in memory (state::unwritten) and the error is
// logged every time: throwing here once meant the pass was retried from the
// stale file, and a full disk had the same message delivered again every
// retry_min.
void write_status(const state_ptr& s, const pass& p) {
  auto pending = s->unwritten.find(p.id);
  if (p.changes.empty() && pending == s->unwritten.end()) return;
  std::vector<std::pair<size_t, rcpt_status>> lines;
  if (pending != s->unwritten.end()) lines.assign(pending->second.begin(), pending->second.end());
  lines.insert(lines.end(), p.changes.begin(), p.changes.end());
  try {
    append_status(status_file(s->settings.spool_dir, p.id), lines);
    if (pending != s->unwritten.end()) {
      s->unwritten.erase(pending);
      log(log_level::warning, p.id, "recipient status written to the spool at last");
    }
  } catch (const std::exception& e) {
    auto& keep = s->unwritten[p.id];
    for (const auto& [i, st] : p.changes) keep[i] = st;  // the latest line per recipient is the one that counts
    log(log_level::error, p.id,
        std::string("CANNOT WRITE RECIPIENT STATUS TO THE SPOOL (") + e.what() + "): " + std::to_string(keep.size()) +
            " outcomes kept in memory only; delivered recipients are not sent again while the gateway runs, but a "
            "restart before the spool has room would resend them");
  }
}

asio::awaitable<void> close_pass(state_ptr s, pass& p) {
  write_status(s, p);
  if (!p.failures.empty()) co_await spool_dsn(s, dsn_kind::failure, p, std::move(p.failures));
  if (!p.delays.empty()) co_await spool_dsn(s, dsn_kind::delay, p, std::move(p.delays));
  bool done = p.message->complete();
  if (done) {
    // Recipients that were final before this pass (a crash came between
    // their status line and their record): make sure the record says so.
    // Only the recipient row is touched, so this is idempotent.
    std::set<size_t> changed;
    for (const auto& [i, st] : p.changes) changed.insert(i);
    for (size_t i = 0; i < p.message->status.size(); ++i) {
      if (changed.count(i)) continue;
      const auto& st = p.message->status[i];
      p.rows.push_back(row_for(p, i, std::string(to_string(st.state)), st.method, nullptr, nullptr, st.detail));
      p.rows.back().policy_sha256.clear();
    }
  }
  auto dir = s->settings.spool_dir;
  std::string id = p.id;
  if (s->db) {
    // The files go only once the records are written: a crash before that
    // leaves the message with its final status lines, and the next start
    // writes the records from them.
    s->db->submit(std::move(p.rows), [done, dir, id](bool written) {
      if (done && written) remove_queued(dir, id);
    });
  } else if (done) {
    remove_queued(dir, id);
  }
  if (done) {
    s->unwritten.erase(id);
    s->forget(id);
  } else {
    int64_t next = held;
    bool tried = false;
    for (const auto& st : p.message->status)
      if (st.state == rcpt_state::pending) {
        next = std::min(next, st.next_try);
        tried = tried || (st.next_try != held && st.attempts > 0);
      }
    s->note(id, next == held ? message_state::held : tried ? message_state::deferred : message_state::queued);
    if (next != held) s->schedule(id, std::max(next, p.now + 1));
  }
}

asio::awaitable<void> deliver_pass(state_ptr s, std::string id) {
  if (!valid_queue_id(id)) co_return;
  // An operator's `sealgate queue delete` takes the same lock. The file is
  // opened once: the lock, the envelope, the status and the content (one
  // read for a small message) all come through this descriptor.
  auto lock = queue_lock::try_lock(s->settings.spool_dir, id);
  if (lock.status() == queue_lock::state::no_such_message) {  // deleted by an operator, or already finished
    s->forget(id);
    co_return;
  }
  if (lock.status() == queue_lock::state::busy) {
    s->schedule(id, unix_now() + 5);
    co_return;
  }
  int fd = lock.fd();
  // The lock lasts as long as the descriptor: the pass and its transfers,
  // which read a large message's content through it as they send it.
  auto file = std::make_shared<const shared_fd>(lock.release().release());
  std::string small;
  auto m = read_queued(fd, s->settings.spool_dir, id, &small);
  if (!m) {  // its envelope does not parse: left for an operator
    s->forget(id);
    co_return;
  }
  s->note(id, message_state::active, m->envelope.received);
  if (auto kept = s->unwritten.find(id); kept != s->unwritten.end())
    for (const auto& [i, st] : kept->second)
      if (i < m->status.size()) m->status[i] = st;

  pass p;
  p.id = id;
  p.message = &*m;
  p.policy = s->current_policy ? s->current_policy() : nullptr;
  if (!p.policy) p.policy = builtin_policy();
  p.now = unix_now();
  bool forced = s->forced.erase(id) > 0;

  std::map<std::string, std::vector<size_t>> by_domain;
  for (size_t i = 0; i < m->status.size(); ++i) {
    const auto& st = m->status[i];
    if (is_final(st.state)) continue;
    if (!forced && st.next_try > p.now) continue;
    // The destination as the DNS knows it (RFC 5891 A-labels): an SMTPUTF8
    // recipient's U-label domain was looked up raw, found nothing, and the
    // message expired after max_age. The address itself goes on as written.
    std::string domain = domain_of(m->envelope.recipients[i].recipient);
    by_domain[dns::to_ascii_domain(domain).value_or(domain)].push_back(i);
  }
  if (!by_domain.empty()) {
    // A small message was read with its envelope; a large one (over 1 MiB)
    // is read from the file a piece at a time as each transfer sends it.
    const uint64_t length = m->file_size - m->content_offset;
    std::shared_ptr<const message_content> shared =
        small.size() == length ? message_content::in_memory(std::move(small))
                               : message_content::from_file(file, m->content_offset, length);
    // A small message is scanned here: the hop to another thread would cost
    // more than the scan (RE2 and the DLP scanners are linear; 64 KiB take
    // well under a millisecond). A large one never holds up this loop.
    constexpr uint64_t scan_here_below = 64 * 1024;
    std::shared_ptr<const scanned_message> scanned;
    if (s->services.content_executor && length >= scan_here_below)
      scanned = co_await asio::co_spawn(s->services.content_executor, scan_message(p.policy, shared), asio::use_awaitable);
    else
      scanned = co_await scan_message(p.policy, shared);
    if (s->db) {
      std::string message_id = header_value(scanned->facts, "Message-ID");
      if (!message_id.empty()) s->db->set_message_id(id, message_id);
    }
    for (auto& [domain, indexes] : by_domain) co_await deliver_domain(s, p, domain, indexes, shared, scanned);
  }
  co_await close_pass(s, p);
}

asio::awaitable<void> deliver_message(state_ptr s, std::string id) {
  try {
    co_await deliver_pass(s, id);
  } catch (const std::exception& e) {
    log(log_level::error, id, std::string("delivery pass failed: ") + e.what());
    s->note(id, message_state::deferred);
    s->schedule(id, unix_now() + s->settings.queue.retry_min.count());
  }
  s->in_flight.erase(id);
  --s->running;
  s->publish();
  if (s->rerun.erase(id)) s->schedule(id, unix_now());
  s->wake.cancel();
}

asio::awaitable<void> scheduler(state_ptr s) {
  while (!s->stopped) {
    int64_t now = unix_now();
    while (!s->due.empty() && s->due.begin()->first <= now && s->running < s->settings.queue.concurrency) {
      std::string id = s->due.begin()->second;
      s->due.erase(s->due.begin());
      s->when.erase(id);
      s->publish();
      if (s->in_flight.count(id)) {
        s->rerun.insert(id);  // a pass is running: go again when it ends
        continue;
      }
      s->in_flight.insert(id);
      ++s->running;
      s->publish();
      asio::co_spawn(s->strand, deliver_message(s, id), [](std::exception_ptr e) { log_failure("delivery", e); });
    }
    if (s->due.empty() || s->running >= s->settings.queue.concurrency)
      s->wake.expires_at(asio::steady_timer::time_point::max());
    else
      s->wake.expires_after(std::chrono::seconds(std::max<int64_t>(0, s->due.begin()->first - now)));
    co_await s->wake.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

}  // namespace

queue_manager::queue_manager(asio::any_io_executor executor, delivery_settings settings, spool& spooler, database* db,
                             std::function<std::shared_ptr<const policy::policy>()> current_policy,
                             delivery_services services)
    : state_(std::make_shared<state>(std::move(executor), std::move(settings), spooler, db, std::move(current_policy),
                                     std::move(services))) {}

queue_manager::~queue_manager() = default;

void queue_manager::start(const std::vector<std::string>& ids) {
  asio::post(state_->strand, [s = state_, ids] {
    int64_t now = unix_now();
    for (const auto& id : ids) s->schedule(id, now);
    asio::co_spawn(s->strand, scheduler(s), [](std::exception_ptr e) { log_failure("queue scheduler", e); });
  });
}

void queue_manager::enqueue(const std::string& id) {
  asio::post(state_->strand, [s = state_, id] { s->schedule(id, unix_now()); });
}

namespace {
asio::awaitable<void> submit_generated(state_ptr s, std::string sender, std::string recipient, std::string content,
                                       std::string listener, std::function<void(std::string)> done) {
  std::string id = co_await spool_generated(s, std::move(sender), std::move(recipient), std::move(content),
                                            std::move(listener));
  if (done) done(id);
}
}  // namespace

void queue_manager::submit(std::string sender, std::string recipient, std::string content, std::string listener,
                           std::function<void(std::string)> done) {
  asio::co_spawn(state_->strand,
                 submit_generated(state_, std::move(sender), std::move(recipient), std::move(content),
                                  std::move(listener), std::move(done)),
                 [](std::exception_ptr e) { log_failure("submitting a generated message", e); });
}

void queue_manager::flush(const std::string& id) {
  asio::post(state_->strand, [s = state_, id] {
    int64_t now = unix_now();
    if (!id.empty()) {
      s->forced.insert(id);
      s->schedule(id, now);
      return;
    }
    std::vector<std::string> all;
    for (const auto& [i, t] : s->when) all.push_back(i);
    for (const auto& i : all) {
      s->forced.insert(i);
      s->schedule(i, now);
    }
  });
}

void queue_manager::stop() {
  asio::post(state_->strand, [s = state_] {
    s->stopped = true;
    s->wake.cancel();
    for (auto& [d, waiters] : s->slot_waiters)
      for (auto& t : waiters) t->cancel();
  });
}

queue_manager::counters queue_manager::stats() const {
  std::lock_guard lock(state_->counters_mutex);
  return state_->totals;
}

size_t queue_manager::active() const { return state_->active_count.load(); }

std::array<queue_manager::census_row, queue_manager::message_state_count> queue_manager::census() const {
  std::array<census_row, message_state_count> rows{};
  std::lock_guard lock(state_->census_mutex);
  for (const auto& [id, e] : state_->known) {
    auto& row = rows[static_cast<int>(e.state)];
    ++row.messages;
    if (row.oldest_received == 0 || e.received < row.oldest_received) row.oldest_received = e.received;
  }
  return rows;
}

}  // namespace sealgate::gateway
