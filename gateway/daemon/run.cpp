// `sealgate run`: the gateway's process. Wires the stages together (inbound
// listeners, the spool, the queue with the probe, key discovery, crypto and
// the SMTP transport, the record) on one set of event loops, and runs until
// SIGTERM or SIGINT.
#include "gateway/daemon/run.hpp"

#include <grp.h>
#include <pwd.h>
#include <sys/resource.h>
#include <unistd.h>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <openssl/rand.h>

#include "common/file_io.hpp"
#include "common/log.hpp"
#include "common/text.hpp"
#include "common/unique_fd.hpp"
#include "common/worker.hpp"
#include "crypto/service.hpp"
#include "dns/resolver.hpp"
#include "gateway/daemon/audit_task.hpp"
#include "gateway/daemon/control.hpp"
#include "gateway/daemon/current_policy.hpp"
#include "gateway/daemon/policy_watch.hpp"
#include "gateway/daemon/portal_tasks.hpp"
#include "gateway/daemon/service_notify.hpp"
#include "gateway/daemon/status_server.hpp"
#include "gateway/daemon/tlsrpt_task.hpp"
#include "common/metrics.hpp"
#include "gateway/methods/outgoing.hpp"
#include "gateway/methods/portal_service.hpp"
#include "gateway/facts/probe.hpp"
#include "gateway/inbound/server.hpp"
#include "gateway/outbound/smtp_transport.hpp"
#include "gateway/queue/delivery.hpp"
#include "gateway/record/database.hpp"
#include "gateway/record/tlsrpt.hpp"
#include "gateway/spool/spool.hpp"

namespace sealgate::gateway {
namespace {
namespace asio = boost::asio;

// The loop stamp's HMAC key: loop.secret, else loop.secret_file, made with
// 256 random bits (0600) when it does not exist yet. Nodes that should count
// each other's stamps share the file.
void load_loop_secret(loop_options& o) {
  if (!o.secret.empty()) return;
  if (auto bytes = read_file(o.secret_file)) {
    std::string s = *bytes;
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
    if (s.size() < 16) throw std::runtime_error(o.secret_file.string() + ": the loop secret needs 16 characters or more");
    o.secret = std::move(s);
    return;
  }
  unsigned char raw[32];
  if (RAND_bytes(raw, sizeof raw) != 1) throw std::runtime_error("no random bytes for the loop secret");
  std::string text = base64_encode(std::string_view(reinterpret_cast<char*>(raw), sizeof raw));
  unique_fd fd(::open(o.secret_file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd || !write_all(fd.get(), text + "\n") || ::fsync(fd.get()) != 0)
    throw std::runtime_error(o.secret_file.string() + ": cannot create the loop secret");
  o.secret = std::move(text);
}

// The queue's finish step on the signing pool (a named coroutine: see
// common/worker.hpp on g++ 12 and capturing lambdas).
asio::awaitable<std::shared_ptr<const message_content>> finish_outgoing(
    const outgoing_finisher* finisher, asio::thread_pool* pool, std::string queue_id,
    std::shared_ptr<const message_content> original, std::shared_ptr<const message_content> outgoing) {
  std::function<outgoing_finisher::result()> work = [finisher, original, outgoing] {
    return finisher->finish(original, outgoing, static_cast<int64_t>(std::time(nullptr)));
  };
  auto r = co_await on_pool<outgoing_finisher::result>(*pool, work);
  if (r.signatures_removed)
    log(log_level::info, queue_id, "dkim: " + std::to_string(r.signatures_removed) + " existing signature(s) the changes broke removed");
  if (!r.signed_by.empty()) log(log_level::info, queue_id, "dkim: signed " + r.signed_by);
  co_return r.content;
}

// Named coroutines for the queue's services (no capturing coroutine lambdas
// with g++ 12; DESIGN.md 2).
asio::awaitable<destination_facts> probe_facts(prober* probe, std::string domain) {
  auto p = co_await probe->probe_domain(domain);
  destination_facts f;
  f.policy = to_domain_facts(p);
  if (p.mx_status == sealgate::dns::mx_outcome::null_mx) {
    f.takes_mail = false;
    f.refusal = permanent_outcome("5.1.10", domain + " accepts no mail (null MX, RFC 7505)");
  } else if (p.mx_status == sealgate::dns::mx_outcome::no_such_domain) {
    f.takes_mail = false;
    f.refusal = permanent_outcome("5.1.2", domain + " does not exist or has no mail host");
  }
  co_return f;
}

// How long a stopping gateway lets sessions finish the message they are
// receiving (Postfix simply drops them; a client retries what got no 250).
constexpr std::chrono::seconds shutdown_grace{5};

void drop_privileges(const std::string& user) {
  if (user.empty() || ::geteuid() != 0) return;
  struct passwd* pw = ::getpwnam(user.c_str());
  if (!pw) throw std::runtime_error("user " + user + ": no such user");
  if (::setgroups(0, nullptr) != 0 || ::setgid(pw->pw_gid) != 0 || ::setuid(pw->pw_uid) != 0)
    throw std::runtime_error("cannot drop privileges to " + user);
  if (::setuid(0) == 0) throw std::runtime_error("privileges were not dropped");
}

// Descriptors the gateway needs besides its inbound connections: outbound
// connections and probes (queue.concurrency each at most), the spool file of
// each delivery pass, and a fixed set (listeners, journal, database, DNS,
// inotify, control socket, logs, worker pipes).
size_t reserved_descriptors(const config& cfg) { return 3 * cfg.queue.concurrency + 64; }

// Raises the soft RLIMIT_NOFILE to the hard one (systemd and most shells
// start with 1024), then lowers limits.connections to what is left after the
// reserve, so that a full house of clients can never starve the spool, the
// database or delivery of descriptors.
void fit_connections_to_descriptors(config& cfg) {
  rlimit nofile{};
  if (::getrlimit(RLIMIT_NOFILE, &nofile) != 0) return;
  if (nofile.rlim_cur < nofile.rlim_max) {
    rlimit raised = nofile;
    raised.rlim_cur = nofile.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) nofile = raised;
  }
  const size_t reserve = reserved_descriptors(cfg);
  const size_t available = nofile.rlim_cur == RLIM_INFINITY ? SIZE_MAX : static_cast<size_t>(nofile.rlim_cur);
  const size_t room = available > reserve + 16 ? available - reserve : 16;
  if (cfg.limits.connections > room) {
    log_warning("limits.connections " + std::to_string(cfg.limits.connections) + " lowered to " + std::to_string(room) +
                ": RLIMIT_NOFILE is " + std::to_string(available) + " and " + std::to_string(reserve) +
                " descriptors are kept for the spool, the database and delivery (raise LimitNOFILE or ulimit -n)");
    cfg.limits.connections = room;
  }
}

}  // namespace

int run_gateway(config cfg, std::string_view version) {
  set_log_format(cfg.log_format);
  fit_connections_to_descriptors(cfg);
  // The policy is validated before anything binds: a gateway that cannot
  // decide how to deliver must not accept mail it would then have to hold.
  std::unique_ptr<current_policy> policy;
  if (!cfg.policy_file.empty()) {
    try {
      policy = std::make_unique<current_policy>(cfg.policy_file);
    } catch (const sealgate::policy::policy_error& e) {
      std::cerr << e.what() << "\n";
      return 1;
    }
    log_info("policy " + cfg.policy_file.string() + ": " + policy::summary(*policy->get()));
  }
  try {
    unsigned threads = cfg.threads ? cfg.threads : std::max(1u, std::thread::hardware_concurrency());
    // One event loop per thread. The first (io) runs the listeners, the
    // delivery side and its share of the sessions; the others run only
    // sessions. Loops of their own, rather than threads sharing one: with a
    // shared loop the threads woke each other and fought over its lock for
    // every short handler (a third of the CPU of an accepted message went to
    // that), where a session never needs another thread. Declared before
    // everything that may post to them, so they outlive it; the session loops
    // before io, whose pending accept holds a strand of one of them.
    std::vector<std::unique_ptr<boost::asio::io_context>> session_loops;
    for (unsigned i = 1; i < threads; ++i) session_loops.push_back(std::make_unique<boost::asio::io_context>(1));
    boost::asio::io_context io(1);
    // Signals are caught from here on, before any listener exists: a SIGHUP or
    // SIGTERM that arrives while we start must not kill the process outright.
    boost::asio::signal_set hangup(io, SIGHUP);
    boost::asio::signal_set signals(io, SIGINT, SIGTERM);
    boost::asio::thread_pool workers(2);
    // Policy reloads (SIGHUP or a changed file) and content classification
    // run here, one at a time, never on the loop that accepts connections.
    boost::asio::thread_pool policy_pool(1);
    // Watching starts before any listener: an edit made once the gateway
    // answers must not be missed.
    std::unique_ptr<policy_watcher> watcher;
    if (policy) watcher = std::make_unique<policy_watcher>(io.get_executor(), policy_pool.get_executor(), *policy);
    spool spooler(cfg.spool, cfg.spool_sync);
    // Bind first (port 25 needs root), then drop root, then touch the spool and database.
    std::vector<boost::asio::io_context*> session_loop_pointers;
    for (auto& l : session_loops) session_loop_pointers.push_back(l.get());
    // The metrics' series, labelled by listener, exist before any session.
    {
      std::vector<std::string> names;
      for (const auto& l : cfg.listeners) names.push_back(l.name);
      metrics::init(names);
    }
    auto ready = std::make_shared<readiness>();
    ready->policy_loaded = cfg.policy_file.empty() || policy;
    // The status listener answers from here on: /readyz says what is not
    // done yet while the spool is recovered.
    std::unique_ptr<status_server> status;
    if (cfg.metrics.enabled) {
      status = std::make_unique<status_server>(io, cfg.metrics.listen, cfg.metrics.port, ready);
      status->start();
      log_info("status listener on " + cfg.metrics.listen + ":" + std::to_string(status->port()) +
               " (/metrics, /healthz, /readyz)");
    }
    server srv(io, cfg, spooler, workers, session_loop_pointers);
    drop_privileges(cfg.user);
    // The node's name, kept in the spool, before anything is accepted with it.
    const std::string node_id = spool_node_id(cfg.spool, cfg.node_id);
    auto waiting = spooler.recover();
    ready->spool_recovered = true;
    // After the drop (the file is the gateway user's) and the recovery (which
    // makes the spool), before the loop runs the first session that reads it.
    load_loop_secret(cfg.loop);
    log_info("spool " + cfg.spool.string() + ": " + std::to_string(waiting.size()) + " messages waiting for delivery");
    if (auto replayed = spooler.stats().replayed)
      log(log_level::warning, "", std::to_string(replayed) + " queue files restored from the spool journal (the machine restarted)");
    for (const auto& id : spooler.corrupt()) log(log_level::error, id, "damaged spool file moved to corrupt/");
    // Records the database cannot take wait in the spool (spool/records/),
    // which is this node's own disk, until it can.
    database db(cfg.database, cfg.spool / "records");
    ready->database_open = true;
    if (auto missing = db.unrecorded(waiting); !missing.empty()) {
      std::vector<spooled_envelope> restored;
      for (const auto& id : missing)
        if (auto e = spooler.read_envelope(id)) restored.push_back(std::move(*e));  // recover() set damaged files aside
      if (!restored.empty()) {
        db.record_accepted(restored);
        log_info("database: " + std::to_string(restored.size()) + " accepted-message records restored from the spool");
      }
    }
    // The policy history: the policy in force now, and each one a reload
    // brings (on the policy pool), under its hash.
    if (policy) {
      auto p = policy->get();
      db.record_policy(p->sha256, p->file.string(), p->source, static_cast<int64_t>(std::time(nullptr)), "start", "");
      policy->on_loaded([&db](const sealgate::policy::policy& loaded, const std::string& trigger) {
        db.record_policy(loaded.sha256, loaded.file.string(), loaded.source, static_cast<int64_t>(std::time(nullptr)),
                         trigger, "");
      });
    }
    struct policy_history_guard {
      current_policy* policy;
      ~policy_history_guard() {
        if (policy) policy->on_loaded({});
      }
    } policy_history{policy.get()};
    // Delivery: the resolver, the domain probe (and its caches), the SMTP
    // transport and the queue, all on the same io_context.
    sealgate::dns::resolver resolver(io.get_executor(), cfg.dns);
    prober probe(io.get_executor(), resolver, cfg.delivery);
    smtp_transport transport(io.get_executor(), resolver, probe, cfg.delivery);
    // Every session that tried TLS, counted per UTC day for the RFC 8460
    // reports (`sealgate tlsrpt`), by the database's writer thread.
    transport.on_tls_session([&db](const tls_session_event& e) {
      db.submit_tls_session({utc_day(static_cast<int64_t>(std::time(nullptr))), e.policy_domain, e.policy_type,
                             e.mx_host, e.address, e.result_type});
    });
    // GPGME and CMS work runs on a pool of its own, never on an io thread, and
    // apart from the AUTH checks on `workers`.
    boost::asio::thread_pool crypto_pool(2);
    sealgate::crypto::crypto_service crypto(cfg.crypto, &resolver, crypto_pool);
    delivery_services services;
    services.domain_facts = [&probe](std::string domain) { return probe_facts(&probe, std::move(domain)); };
    services.key_facts = [&crypto](std::string address) { return crypto.key_facts(std::move(address)); };
    services.encrypt = [&crypto](sealgate::policy::method m, std::string address,
                                 std::shared_ptr<const std::string> content, std::string* why, std::string* key_id) {
      return crypto.encrypt_for(m, std::move(address), std::move(content), why, key_id);
    };
    services.send = [&transport](outbound_transfer t) { return transport.send(std::move(t)); };
    services.content_executor = policy_pool.get_executor();
    // The portal: deposits, notifications, and the outbox of the portal
    // process. Its store work (SQLite, AES-GCM over whole messages) runs on
    // a pool of its own.
    // Eight threads, though the machine may have two: most of a deposit's
    // time is the wait for its group's disk flush, and the more deposits wait
    // together the fewer flushes (portal_service's group commit).
    boost::asio::thread_pool portal_pool(8);
    std::unique_ptr<portal_service> portal;
    if (cfg.portal.configured) {
      portal = std::make_unique<portal_service>(cfg.portal, cfg.hostname, portal_pool);
      services.deposit = [&portal](portal_deposit_request r, std::string* why) { return portal->deposit(std::move(r), why); };
      services.portal_available = [&portal] { return portal->available(); };
      services.portal_notified = [&portal](int64_t entry, std::string id, std::string rcpt, std::string notice) {
        portal->notified(entry, id, rcpt, notice);
      };
      services.portal_sender = cfg.portal.from;
      log_info("portal: store " + cfg.portal.store.describe() + ", links to " + cfg.portal.base_url);
    }
    // DKIM signing and the loop stamp: RSA signatures cost about a
    // millisecond each, on a pool of their own.
    boost::asio::thread_pool signing_pool(2);
    outgoing_finisher finisher(cfg.dkim, cfg.loop.secret, cfg.hostname);
    services.finish = [&finisher, &signing_pool](std::string id, std::shared_ptr<const message_content> original,
                                                 std::shared_ptr<const message_content> outgoing) {
      return finish_outgoing(&finisher, &signing_pool, std::move(id), std::move(original), std::move(outgoing));
    };
    for (const auto& k : cfg.dkim.keys)
      log_info("dkim: signing for " + k.domain + " with selector " + k.selector + " (" +
               std::string(sealgate::crypto::to_string(k.key->algorithm())) + ")");
    std::function<std::shared_ptr<const sealgate::policy::policy>()> policy_snapshot;
    if (policy) policy_snapshot = [&policy] { return policy->get(); };
    queue_manager queue(io.get_executor(), delivery_settings{cfg.hostname, cfg.spool, cfg.queue}, spooler, &db,
                        policy_snapshot, services);
    // The queue's gauges are read at each scrape, not kept up to date; the
    // reader goes before the queue does.
    // Portal events are counted from the store (the portal process records
    // there too): only those after the newest at start, a range of ids.
    int64_t portal_events_seen = portal ? portal->count_events(0).last_id : 0;
    metrics::get().on_scrape([&queue, &portal, &portal_events_seen] {
      if (portal) {
        auto tally = portal->count_events(portal_events_seen);
        for (const auto& [kind, n] : tally.by_kind) metrics::get().portal_event(kind, n);
        portal_events_seen = tally.last_id;
      }
      static constexpr const char* names[queue_manager::message_state_count] = {"queued", "active", "deferred", "held"};
      auto rows = queue.census();
      auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
      for (int i = 0; i < queue_manager::message_state_count; ++i)
        metrics::get().queue_state(names[i], rows[i].messages,
                                   rows[i].messages ? static_cast<double>(std::max<int64_t>(0, now - rows[i].oldest_received)) : 0.0);
    });
    struct scrape_reader_guard {
      ~scrape_reader_guard() { metrics::get().on_scrape({}); }
    } scrape_reader;
    spooler.on_committed([&db, &queue](std::vector<spooled_envelope> messages) {
      // The rows first: queued for the database's writer thread before the
      // queue can produce any delivery row for these messages.
      std::vector<std::string> ids;
      ids.reserve(messages.size());
      for (const auto& m : messages) ids.push_back(m.queue_id);
      db.submit_accepted(std::move(messages));
      for (auto& id : ids) queue.enqueue(std::move(id));
    });
    if (cfg.queue.paused)
      log_info("queue paused (queue.paused): accepted mail stays in the spool, nothing is delivered");
    else
      queue.start(waiting);
    std::unique_ptr<portal_tasks> portal_work;
    if (portal && !cfg.queue.paused) {
      portal_work = std::make_unique<portal_tasks>(io.get_executor(), *portal, queue);
      portal_work->start();
    }
    // The RFC 8460 reports: daily with tlsrpt.send, and on `sealgate tlsrpt send`.
    tlsrpt_task tlsrpt(io.get_executor(), cfg, resolver, db, queue);
    if (cfg.tlsrpt.send && !cfg.queue.paused) tlsrpt.start();
    // The audit chain's checkpoints, witnesses, portal events and retention.
    audit_task audit(io.get_executor(), workers, cfg, db, portal.get(), queue);
    audit.start();
    control_socket control(io.get_executor(), cfg.spool, [&queue](const std::string& id) { queue.flush(id); });
    control.on_tlsrpt([&tlsrpt](std::string day) { return tlsrpt.send(std::move(day)); });
    // `sealgate policy reload`: as SIGHUP, on the policy pool, but the
    // record knows who asked.
    control.on_reload([&policy, &policy_pool](const std::string& actor) -> std::string {
      if (!policy) return "error no policy_file configured";
      boost::asio::post(policy_pool, [&policy, actor] { reload_policy(*policy, "sealgate policy reload by " + actor); });
      return "ok";
    });
    // Every operator command on the control socket goes into the audit log
    // with the peer's credentials (off the event loop: it is a transaction).
    control.on_action([&db, &workers](const std::string& command, const std::string& actor) {
      boost::asio::post(workers, [&db, command, actor] {
        std::string queue_id = command.rfind("flush ", 0) == 0 ? command.substr(6) : "";
        try {
          db.record_events({audit::event("operator-command", static_cast<int64_t>(std::time(nullptr)), queue_id)
                                .add("command", command)
                                .add("actor", actor)});
        } catch (const std::exception& e) {
          log_error(std::string("audit: operator command not recorded: ") + e.what());
        }
      });
    });
    srv.start();
    // On SIGTERM/SIGINT: no new connections or deliveries; sessions waiting
    // for a command get 421 at once, a message being received or committed
    // is finished first; after shutdown_grace whatever is left is dropped
    // (nothing that got a 250 is lost either way).
    boost::asio::steady_timer drain(io);
    auto drain_deadline = std::chrono::steady_clock::time_point::max();
    bool aborted = false;
    std::function<void()> wait_for_sessions = [&] {
      if (srv.active_connections() > 0 && std::chrono::steady_clock::now() >= drain_deadline) {
        if (aborted) {
          io.stop();  // sessions that did not even notice their closed sockets
          return;
        }
        log_info(std::to_string(srv.active_connections()) + " connections dropped at shutdown");
        srv.abort_sessions();
        aborted = true;
        drain_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
      }
      if (srv.active_connections() == 0) {
        io.stop();
        return;
      }
      drain.expires_after(std::chrono::milliseconds(20));
      drain.async_wait([&](const boost::system::error_code&) { wait_for_sessions(); });
    };
    signals.async_wait([&](const boost::system::error_code& ec, int sig) {
      if (ec) return;
      log_info("signal " + std::to_string(sig) + ": stopping");
      ready->stopping = true;
      notify_stopping();
      if (status) status->stop();
      srv.stop();
      queue.stop();
      tlsrpt.stop();
      audit.stop();
      if (portal_work) portal_work->stop();
      drain_deadline = std::chrono::steady_clock::now() + shutdown_grace;
      wait_for_sessions();
    });
    std::function<void()> wait_hangup = [&] {
      hangup.async_wait([&](const boost::system::error_code& ec, int) {
        if (ec) return;
        if (!policy)
          log_info("SIGHUP: no policy_file configured, nothing to reload");
        else
          boost::asio::post(policy_pool, [&policy] {
            notify_reloading();
            reload_policy(*policy, "SIGHUP");
            notify_ready("policy reloaded");
          });
        wait_hangup();
      });
    };
    wait_hangup();
    log_info("sealgate " + std::string(version) + " started, hostname=" + cfg.hostname + ", node " + node_id);
    // Only now: the spool is recovered and every listener is bound.
    notify_ready(std::to_string(waiting.size()) + " messages waiting at start");
    std::vector<std::thread> pool;
    std::vector<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> keep_running;
    for (auto& l : session_loops) {
      keep_running.push_back(boost::asio::make_work_guard(*l));
      pool.emplace_back([&loop = *l] { loop.run(); });
    }
    io.run();
    // io stops once no session is left (or after shutdown_grace): so do the others.
    for (auto& l : session_loops) l->stop();
    for (auto& t : pool) t.join();
    if (watcher) watcher->stop();
    control.stop();
    spooler.stop();
    workers.join();
    policy_pool.join();
    portal_pool.join();
    // Every row written (the pools' too: operator commands, policy loads),
    // then the tail of the chain signed: a clean stop leaves nothing unsigned.
    db.flush();
    try {
      audit.checkpoint_now();
    } catch (const std::exception& e) {
      log_error(std::string("audit: checkpoint at stop not signed: ") + e.what());
    }
    auto st = spooler.stats();
    log_info("spool stats: commits=" + std::to_string(st.commits) + " fdatasync=" + std::to_string(st.file_syncs) +
             " dir_fsync=" + std::to_string(st.dir_syncs) + " syncfs=" + std::to_string(st.fs_syncs) +
             (st.checkpoint_failures ? " checkpoint_failures=" + std::to_string(st.checkpoint_failures) : ""));
    return 0;
  } catch (const std::exception& e) {
    log_error(e.what());
    return 1;
  }
}


}  // namespace sealgate::gateway
