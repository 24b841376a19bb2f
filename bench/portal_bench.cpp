// portal_bench: deposit rate of the portal method as the gateway runs it
// (portal_service::deposit: the hop to the portal's worker pool, the seal, the
// SQLite insert, the notification composed). For bench/portal_rate.sh; not a
// test and not installed. Never prints content, a token or a link.
//
// --breakdown replays the steps of one deposit one at a time on this thread,
// through the same library functions, to show where a deposit's time goes;
// it never touches the service's private state.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <cstdio>
#include <functional>
#include <iostream>
#include <vector>

#include "common/worker.hpp"
#include "gateway/mail/message_content.hpp"
#include "gateway/methods/portal_service.hpp"
#include "portal/store/portal_config.hpp"
#include "portal/store/store.hpp"
#include "portal/store/vault.hpp"

namespace asio = boost::asio;
using namespace sealgate;
using clock_type = std::chrono::steady_clock;

namespace {

double ms_since(clock_type::time_point t0) {
  return std::chrono::duration<double, std::milli>(clock_type::now() - t0).count();
}

struct job {
  gateway::portal_service* svc = nullptr;
  std::shared_ptr<const gateway::message_content> content;
  int remaining = 0;  // touched only on the io thread
  int next_id = 0;
  int failed = 0;
  size_t notification_bytes = 0;
  std::vector<double> latency_ms;
};

// As the queue calls it: one recipient, the message from its spool file.
[[gnu::noinline]] asio::awaitable<void> worker(job* j) {
  while (j->remaining > 0) {
    --j->remaining;
    gateway::portal_deposit_request r;
    r.queue_id = "BENCH" + std::to_string(++j->next_id);
    r.sender = "sender@example.org";
    r.recipient = "rcpt" + std::to_string(j->next_id) + "@example.test";
    r.content = j->content;
    std::string why;
    auto t0 = clock_type::now();
    auto out = co_await j->svc->deposit(std::move(r), &why);
    j->latency_ms.push_back(ms_since(t0));
    if (!out) {
      if (!j->failed++) std::cerr << "portal_bench: deposit failed: " << why << "\n";
      continue;
    }
    j->notification_bytes = out->notification.size();
  }
}

void log_exception(std::exception_ptr e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    std::cerr << "portal_bench: " << ex.what() << "\n";
  }
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p / 100.0 * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

// nothing: the cost of the hop to the pool and back alone.
[[gnu::noinline]] asio::awaitable<void> hop(asio::thread_pool* pool, int n, std::vector<double>* out) {
  for (int i = 0; i < n; ++i) {
    std::function<int()> work = [] { return 0; };
    auto t0 = clock_type::now();
    co_await on_pool<int>(*pool, work);
    out->push_back(ms_since(t0));
  }
}

// The steps of deposit_now, one at a time, timed (median of n each).
int breakdown(const portal::portal_config& cfg, const std::shared_ptr<const gateway::message_content>& content,
              int n, asio::thread_pool& pool) {
  std::vector<double> read_ms, token_ms, seal_ms, add_ms, compose_ms, hop_ms;
  // A store of its own beside the service's: same directory, same pragmas.
  auto store = portal::open_sqlite_store(cfg.store.file.string() + ".breakdown");
  for (int i = 0; i < n; ++i) {
    auto t0 = clock_type::now();
    std::string message;
    if (!content->read_all(message)) {
      std::cerr << "portal_bench: cannot read the message\n";
      return 1;
    }
    read_ms.push_back(ms_since(t0));
    t0 = clock_type::now();
    std::string token = portal::new_token();
    portal::deposit d;
    d.lookup = portal::lookup_key(token);
    token_ms.push_back(ms_since(t0));
    d.queue_id = "BREAK" + std::to_string(i);
    d.recipient = "rcpt@example.test";
    d.sender = "sender@example.org";
    d.created = 1;
    d.expires = 4102444800;
    d.size = message.size();
    t0 = clock_type::now();
    d.sealed = portal::seal_message(message, token, d.lookup, {});
    seal_ms.push_back(ms_since(t0));
    t0 = clock_type::now();
    store->add(d);
    add_ms.push_back(ms_since(t0));
    t0 = clock_type::now();
    gateway::notice_input in{"Sender", "sender@example.org", "rcpt@example.test",
                             cfg.base_url + "/m/" + token, "gw.example.test", 4102444800, 1, {}};
    auto notice = gateway::compose_notification(cfg, in);
    compose_ms.push_back(ms_since(t0));
  }
  asio::io_context io;
  asio::co_spawn(io, hop(&pool, n, &hop_ms), log_exception);
  io.run();
  auto line = [](const char* name, const std::vector<double>& v) {
    std::printf("breakdown %-8s p50 %.3f ms  p99 %.3f ms\n", name, percentile(v, 50), percentile(v, 99));
  };
  line("read", read_ms);
  line("token", token_ms);
  line("seal", seal_ms);
  line("add", add_ms);
  line("compose", compose_ms);
  line("hop", hop_ms);
  std::printf("breakdown_ms read=%.3f token=%.3f seal=%.3f add=%.3f compose=%.3f hop=%.3f\n", percentile(read_ms, 50),
              percentile(token_ms, 50), percentile(seal_ms, 50), percentile(add_ms, 50), percentile(compose_ms, 50),
              percentile(hop_ms, 50));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string store, outbox_key, message_file;
  int count = 1000, concurrency = 16, threads = 2, breakdown_count = 0;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    if (a == "--store") store = next();
    else if (a == "--outbox-key") outbox_key = next();
    else if (a == "--message") message_file = next();
    else if (a == "--count") count = std::stoi(next());
    else if (a == "--concurrency") concurrency = std::stoi(next());
    else if (a == "--threads") threads = std::stoi(next());
    else if (a == "--breakdown") breakdown_count = std::stoi(next());
    else {
      std::cerr << "usage: portal_bench --store FILE --outbox-key FILE --message FILE [--count N] "
                   "[--concurrency N] [--threads N] [--breakdown N]\n";
      return 2;
    }
  }
  if (store.empty() || outbox_key.empty() || message_file.empty() || count < 1 || concurrency < 1 || threads < 1) {
    std::cerr << "portal_bench: --store, --outbox-key and --message are needed; counts must be at least 1\n";
    return 2;
  }
  try {
    portal::portal_config cfg;
    cfg.configured = true;
    cfg.store = sql::location(std::filesystem::path(store));
    cfg.outbox_key = outbox_key;
    cfg.base_url = "https://portal.example.test";
    cfg.from = "secure@example.org";
    cfg.organisation = "Bench";
    // The message as the queue hands it over: a region of its spool file.
    int fd = ::open(message_file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw std::runtime_error(message_file + ": cannot open");
    auto file = std::make_shared<const gateway::shared_fd>(fd);
    off_t size = ::lseek(fd, 0, SEEK_END);
    auto content = gateway::message_content::from_file(file, 0, static_cast<uint64_t>(size));

    asio::thread_pool pool(static_cast<size_t>(threads));  // the gateway's portal_pool has 8
    if (breakdown_count > 0) {
      int rc = breakdown(cfg, content, breakdown_count, pool);
      pool.join();
      return rc;
    }
    gateway::portal_service svc(cfg, "gw.example.test", pool);
    asio::io_context io;
    job j;
    j.svc = &svc;
    j.content = content;
    j.remaining = count;
    j.latency_ms.reserve(static_cast<size_t>(count));
    auto start = clock_type::now();
    for (int i = 0; i < concurrency; ++i) asio::co_spawn(io, worker(&j), log_exception);
    io.run();
    double s = ms_since(start) / 1000.0;
    pool.join();
    std::printf("deposits=%d size=%lld concurrency=%d threads=%d seconds=%.3f rate=%.1f p50_ms=%.3f p99_ms=%.3f "
                "max_ms=%.3f failed=%d notification=%zu\n",
                count, static_cast<long long>(size), concurrency, threads, s, count / s, percentile(j.latency_ms, 50),
                percentile(j.latency_ms, 99), percentile(j.latency_ms, 100), j.failed, j.notification_bytes);
    return j.failed ? 1 : 0;
  } catch (const std::exception& e) {
    std::cerr << "portal_bench: " << e.what() << "\n";
    return 1;
  }
}
