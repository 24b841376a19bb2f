// See tlsrpt_task.hpp.
#include "gateway/daemon/tlsrpt_task.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <ctime>
#include <random>
#include <set>

#include "common/log.hpp"
#include "crypto/https_get.hpp"
#include "crypto/tls_context.hpp"
#include "dns/resolver.hpp"
#include "gateway/queue/delivery.hpp"
#include "gateway/record/database.hpp"
#include "gateway/record/tlsrpt.hpp"

namespace sealgate::gateway {
namespace asio = boost::asio;

struct tlsrpt_task::state {
  state(asio::any_io_executor ex, const config& c, dns::resolver& r, database& d, queue_manager& q)
      : executor(ex), timer(ex), cfg(c), resolver(r), db(d), queue(q) {}
  asio::any_io_executor executor;
  asio::steady_timer timer;
  const config& cfg;
  dns::resolver& resolver;
  database& db;
  queue_manager& queue;
  // The trust store of delivery's HTTPS (MTA-STS) for report URLs too.
  // After cfg, which it is made from.
  std::shared_ptr<asio::ssl::context> https_context = crypto::make_client_context(cfg.delivery.ca_file);
  bool stopped = false;
};

namespace {

int64_t unix_now() { return static_cast<int64_t>(std::time(nullptr)); }

// RFC 8460 5.2: a POST of the gzip report; any 2xx is success.
asio::awaitable<std::string> post_report(std::shared_ptr<tlsrpt_task::state> s, std::string url, std::string gz) {
  auto where = parse_https_destination(url);
  if (!where) co_return "failed: not a usable https URL";
  auto addresses = co_await s->resolver.resolve_addresses(where->host);
  if (addresses.status != dns::outcome::found)
    co_return "failed: " + where->host + ": " + (addresses.error.empty() ? "no address" : addresses.error);
  crypto::https_request req;
  req.host = where->host;
  req.port = where->port;
  req.target = where->target;
  req.addresses = addresses.list;
  req.timeout = s->cfg.delivery.timeouts.https;
  req.max_body = 16 * 1024;
  req.context = s->https_context;
  req.post_body = std::move(gz);
  req.post_content_type = "application/tlsrpt+gzip";
  auto response = co_await crypto::https_post(std::move(req));
  if (!response.ok) co_return "failed: " + response.error;
  if (response.status < 200 || response.status > 299) co_return "failed: HTTP " + std::to_string(response.status);
  co_return "posted";
}

struct run_result {
  std::string summary;
  bool retry = false;  // a destination failed or a lookup did: worth another run
};

asio::awaitable<run_result> send_reports(std::shared_ptr<tlsrpt_task::state> s, std::string day) {
  if (utc_day_start(day) < 0) co_return run_result{"error: '" + day + "' is not a date (YYYY-MM-DD)"};
  std::vector<tls_report> reports;
  std::set<std::pair<std::string, std::string>> done;
  try {
    // The database's own connection is busy writing; reading through a
    // second one is what SQLite's WAL mode is for.
    reports = make_tls_reports(read_tls_sessions(s->cfg.database, day), day,
                               {s->cfg.tlsrpt.organization, s->cfg.tlsrpt.contact, s->cfg.hostname});
    for (auto& d : s->db.tls_reports_done(day)) done.insert(std::move(d));
  } catch (const std::exception& e) {
    co_return run_result{std::string("error: ") + e.what(), true};
  }
  size_t queued = 0, posted = 0, unasked = 0, skipped = 0, failed = 0, dns_failed = 0;
  for (const auto& rep : reports) {
    if (done.count({rep.policy_domain, ""})) {
      ++unasked;
      continue;
    }
    auto txt = co_await s->resolver.resolve_txt("_smtp._tls." + rep.policy_domain);
    if (txt.status == dns::outcome::temporary_failure) {
      ++dns_failed;
      log(log_level::warning, "", "tlsrpt: _smtp._tls." + rep.policy_domain + " TXT lookup failed (" + txt.error +
                                      "): its " + day + " report waits for the next run");
      continue;
    }
    // RFC 8460 3: exactly one record that starts with v=TLSRPTv1, or none.
    std::vector<std::string> candidates;
    if (txt.status == dns::outcome::found)
      for (const auto& r : txt.records)
        if (r.rfind("v=TLSRPTv1", 0) == 0) candidates.push_back(r);
    auto where = candidates.size() == 1 ? parse_tlsrpt_record(candidates.front()) : std::nullopt;
    if (!where) {
      ++unasked;
      s->db.record_tls_report(day, rep.policy_domain, "", "no-record", unix_now());
      continue;
    }
    std::string gz;
    try {
      gz = gzip_report(rep.json);
    } catch (const std::exception& e) {
      ++failed;
      log_error(std::string("tlsrpt: ") + e.what());
      continue;
    }
    const std::string from = s->cfg.tlsrpt.from;
    for (const auto& address : where->mailto) {
      std::string destination = "mailto:" + address;
      if (done.count({rep.policy_domain, destination})) {
        ++skipped;
        continue;
      }
      ++queued;
      s->queue.submit(from, address, tls_report_mail(rep, gz, from, address, unix_now()), "tlsrpt",
                      [db = &s->db, day, domain = rep.policy_domain, destination](std::string id) {
                        db->record_tls_report(day, domain, destination, id.empty() ? "failed: not spooled" : "queued " + id,
                                              unix_now());
                        if (!id.empty()) log(log_level::info, id, "tlsrpt: " + day + " report for " + domain + " to " + destination);
                      });
    }
    for (const auto& url : where->https) {
      if (done.count({rep.policy_domain, url})) {
        ++skipped;
        continue;
      }
      std::string result = co_await post_report(s, url, gz);
      s->db.record_tls_report(day, rep.policy_domain, url, result, unix_now());
      if (result == "posted") {
        ++posted;
        log_info("tlsrpt: " + day + " report for " + rep.policy_domain + " posted to " + url);
      } else {
        ++failed;
        log(log_level::warning, "", "tlsrpt: " + day + " report for " + rep.policy_domain + " to " + url + ": " + result);
      }
    }
  }
  co_return run_result{std::to_string(reports.size()) + " reports for " + day + ": " + std::to_string(queued) +
                           " queued, " + std::to_string(posted) + " posted, " + std::to_string(skipped) +
                           " sent before, " + std::to_string(unasked) + " domains ask for none, " +
                           std::to_string(dns_failed) + " DNS failures, " + std::to_string(failed) + " failed",
                       failed + dns_failed > 0};
}

// Waits; false when the task stopped meanwhile.
asio::awaitable<bool> sleep_for(std::shared_ptr<tlsrpt_task::state> s, std::chrono::seconds d) {
  s->timer.expires_after(d);
  co_await s->timer.async_wait(asio::as_tuple(asio::use_awaitable));
  co_return !s->stopped;
}

asio::awaitable<void> daily(std::shared_ptr<tlsrpt_task::state> s) {
  std::mt19937_64 rng(std::random_device{}());
  constexpr int retries = 6;  // hourly, for what failed; the next day's run tries no older day
  while (!s->stopped) {
    // The next 01:00 UTC, plus up to an hour: reporters should not all send at once.
    int64_t now = unix_now();
    int64_t next = now - now % 86400 + 3600;
    if (next <= now) next += 86400;
    next += static_cast<int64_t>(rng() % 3600);
    if (!co_await sleep_for(s, std::chrono::seconds(next - now))) co_return;
    std::string day = utc_day(unix_now() - 86400);
    for (int attempt = 0; attempt <= retries; ++attempt) {
      if (attempt > 0 && !co_await sleep_for(s, std::chrono::hours(1))) co_return;
      run_result r = co_await send_reports(s, day);
      log_info("tlsrpt: " + r.summary);
      if (!r.retry) break;
    }
  }
}

}  // namespace

tlsrpt_task::tlsrpt_task(asio::any_io_executor executor, const config& cfg, dns::resolver& resolver, database& db,
                         queue_manager& queue)
    : state_(std::make_shared<state>(executor, cfg, resolver, db, queue)) {}

tlsrpt_task::~tlsrpt_task() { stop(); }

void tlsrpt_task::start() {
  asio::co_spawn(state_->executor, daily(state_),
                 [](std::exception_ptr e) { log_failure("tlsrpt: the daily run stopped", e); });
}

void tlsrpt_task::stop() {
  asio::post(state_->executor, [s = state_] {
    s->stopped = true;
    s->timer.cancel();
  });
}

asio::awaitable<std::string> tlsrpt_task::send(std::string day) {
  run_result r = co_await asio::co_spawn(state_->executor, send_reports(state_, std::move(day)), asio::use_awaitable);
  log_info("tlsrpt: " + r.summary);
  co_return r.summary;
}

}  // namespace sealgate::gateway
