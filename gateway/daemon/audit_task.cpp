// See audit_task.hpp. The loops are coroutines on the gateway's io loop;
// each round's database work runs on the pool (on_pool).
#include "gateway/daemon/audit_task.hpp"

#include <fcntl.h>
#include <syslog.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <ctime>
#include <mutex>

#include "common/file_io.hpp"
#include "common/log.hpp"
#include "common/text.hpp"
#include "common/unique_fd.hpp"
#include "common/worker.hpp"
#include "gateway/methods/portal_service.hpp"
#include "gateway/queue/delivery.hpp"
#include "gateway/record/database.hpp"

namespace sealgate::gateway {
namespace asio = boost::asio;

namespace {

int64_t unix_now() { return static_cast<int64_t>(std::time(nullptr)); }

constexpr const char* portal_cursor = "portal_events";

}  // namespace

size_t import_portal_events(database& db, portal_service& portal) {
  size_t total = 0;
  for (;;) {
    int64_t after = db.cursor(portal_cursor);
    auto events = portal.events_after(after, 500);
    if (events.empty()) return total;
    std::vector<audit::event> entries;
    for (const auto& e : events) {
      audit::event entry("portal-" + e.kind, e.at, e.queue_id);
      entry.add("recipient", e.recipient).add_known("detail", e.detail).add("portal_event", e.id);
      entries.push_back(std::move(entry));
    }
    db.record_events(entries, portal_cursor, events.back().id);
    total += events.size();
  }
}

void witness_checkpoint(const audit_config& cfg, const audit::checkpoint& c) {
  std::string line = audit::witness_line(c);
  if (!cfg.witness_file.empty()) {
    // O_APPEND: a witness file is a log, never rewritten (chattr +a suits it).
    unique_fd fd(::open(cfg.witness_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
    if (!fd || !write_all(fd.get(), line + "\n") || ::fsync(fd.get()) != 0)
      log_error("audit: cannot append the checkpoint to the witness file " + cfg.witness_file.string());
  }
  if (cfg.witness_syslog) {
    ::openlog("sealgate-audit", LOG_PID, LOG_AUTHPRIV);
    ::syslog(LOG_AUTHPRIV | LOG_NOTICE, "%s", line.c_str());
    ::closelog();
  }
}

std::string checkpoint_mail(const audit::checkpoint& c, const std::string& from, const std::string& to,
                            const std::string& hostname, int64_t now) {
  std::string m;
  m += "From: <" + from + ">\r\n";
  m += "To: <" + to + ">\r\n";
  m += "Date: " + utc_time(now, "%a, %d %b %Y %H:%M:%S +0000") + "\r\n";
  m += "Subject: sealgate audit checkpoint " + hostname + " entry " + std::to_string(c.seq) + "\r\n";
  m += "Message-ID: <audit." + std::to_string(c.seq) + "." + std::to_string(c.at) + "@" + hostname + ">\r\n";
  m += "Auto-Submitted: auto-generated\r\n";
  m += "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n";
  m += "A signed checkpoint of the audit log of " + hostname + ". Keep this mail: with\r\n";
  m += "`sealgate audit verify --witness FILE` (one line per checkpoint, as below)\r\n";
  m += "it shows that the log was not rewritten since.\r\n\r\n";
  // The line is longer than 78 characters but under RFC 5322's 998.
  m += audit::witness_line(c) + "\r\n";
  return m;
}

struct audit_task::state {
  state(asio::any_io_executor ex, asio::thread_pool& p, const config& c, database& d, portal_service* portal_,
        queue_manager& q)
      : import_timer(ex), checkpoint_timer(ex), purge_timer(ex), pool(p), cfg(c), db(d), portal(portal_), queue(q),
        key(audit::ed25519_key::load_or_create(c.audit.signing_key, c.audit.public_key)) {}
  asio::steady_timer import_timer, checkpoint_timer, purge_timer;
  asio::thread_pool& pool;
  const config& cfg;
  database& db;
  portal_service* portal;
  queue_manager& queue;
  audit::ed25519_key key;
  bool stopped = false;
  std::mutex work;  // one round of database work at a time

  void import() {
    if (!portal) return;
    try {
      import_portal_events(db, *portal);
    } catch (const std::exception& e) {
      log_error(std::string("audit: portal events not copied into the chain: ") + e.what());
    }
  }

  std::optional<audit::checkpoint> checkpoint(bool send_mail) {
    std::lock_guard lock(work);
    import();
    auto c = db.make_checkpoint(key, unix_now());
    if (!c) return c;
    log_info("audit: checkpoint signed at entry " + std::to_string(c->seq) + " (" + c->head.substr(0, 16) + "...)");
    witness_checkpoint(cfg.audit, *c);
    if (send_mail && !cfg.audit.witness_mail.empty()) {
      std::string from = "audit-noreply@" + cfg.hostname;
      queue.submit(from, cfg.audit.witness_mail, checkpoint_mail(*c, from, cfg.audit.witness_mail, cfg.hostname, unix_now()),
                   "audit", [seq = c->seq](std::string id) {
                     if (id.empty())
                       log_error("audit: the witness mail of checkpoint " + std::to_string(seq) + " was not spooled");
                   });
    }
    return c;
  }

  void purge() {
    std::lock_guard lock(work);
    int64_t now = unix_now();
    auto r = db.purge(now - cfg.audit.retention.count(), key, now, "retention");
    if (r.entries || r.messages)
      log_info("audit: retention purge: " + std::to_string(r.messages) + " messages and " + std::to_string(r.entries) +
               " chain entries older than " + std::to_string(cfg.audit.retention.count() / 86400) +
               " days removed; the chain now starts after entry " + std::to_string(r.up_to));
  }
};

namespace {

using state_ptr = std::shared_ptr<audit_task::state>;

asio::awaitable<void> wait(asio::steady_timer& t, std::chrono::steady_clock::duration d) {
  t.expires_after(d);
  co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
}

asio::awaitable<void> import_loop(state_ptr s) {
  while (!s->stopped) {
    std::function<bool()> work = [s] {
      std::lock_guard lock(s->work);
      s->import();
      return true;
    };
    co_await on_pool<bool>(s->pool, work);
    co_await wait(s->import_timer, audit_task::import_interval);
  }
}

asio::awaitable<void> checkpoint_loop(state_ptr s) {
  for (;;) {
    co_await wait(s->checkpoint_timer, s->cfg.audit.checkpoint_interval);
    if (s->stopped) co_return;
    std::function<bool()> work = [s] {
      try {
        s->checkpoint(true);
      } catch (const std::exception& e) {
        log_error(std::string("audit: checkpoint not signed: ") + e.what());
      }
      return true;
    };
    co_await on_pool<bool>(s->pool, work);
  }
}

asio::awaitable<void> purge_loop(state_ptr s) {
  // A minute after start, then daily: a restart loop does not purge each time.
  co_await wait(s->purge_timer, std::chrono::minutes(1));
  while (!s->stopped) {
    std::function<bool()> work = [s] {
      try {
        s->purge();
      } catch (const std::exception& e) {
        log_error(std::string("audit: retention purge failed: ") + e.what());
      }
      return true;
    };
    co_await on_pool<bool>(s->pool, work);
    co_await wait(s->purge_timer, audit_task::purge_interval);
  }
}

void log_failure(std::exception_ptr e) { sealgate::log_failure("audit", e); }

}  // namespace

audit_task::audit_task(asio::any_io_executor executor, asio::thread_pool& pool, const config& cfg, database& db,
                       portal_service* portal, queue_manager& queue)
    : state_(std::make_shared<state>(executor, pool, cfg, db, portal, queue)) {
  log_info("audit: checkpoints signed with " + cfg.audit.signing_key.string() + " (key " +
           state_->key.key_id().substr(0, 16) + "...), every " + std::to_string(cfg.audit.checkpoint_interval.count()) +
           "s");
}

audit_task::~audit_task() = default;

void audit_task::start() {
  auto ex = state_->import_timer.get_executor();
  asio::co_spawn(ex, import_loop(state_), log_failure);
  asio::co_spawn(ex, checkpoint_loop(state_), log_failure);
  asio::co_spawn(ex, purge_loop(state_), log_failure);
}

void audit_task::stop() {
  state_->stopped = true;
  state_->import_timer.cancel();
  state_->checkpoint_timer.cancel();
  state_->purge_timer.cancel();
}

std::optional<audit::checkpoint> audit_task::checkpoint_now() { return state_->checkpoint(false); }

}  // namespace sealgate::gateway
