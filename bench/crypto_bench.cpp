// crypto_bench: encryption throughput of crypto/ as delivery would use it
// (encrypt_async on a worker pool, one key looked up once). For
// bench/crypto_rate.sh; not a test and not installed. Never prints content.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <iterator>

#include "crypto/keys.hpp"
#include "gateway/config.hpp"

namespace asio = boost::asio;
using namespace sealgate;

namespace {

struct job {
  const crypto::pgp_engine* pgp = nullptr;
  const crypto::smime_engine* smime = nullptr;
  std::vector<crypto::pgp_recipient> pgp_to;
  std::vector<crypto::certificate> smime_to;
  bool sign = false;
  std::string message;
  int remaining = 0;  // touched only on the io thread
  int failed = 0;
  size_t output_bytes = 0;
};

[[gnu::noinline]] asio::awaitable<void> worker(asio::thread_pool& pool, job* j) {
  while (j->remaining > 0) {
    --j->remaining;
    crypto::encrypt_result r;
    if (j->pgp) r = co_await crypto::encrypt_async(pool, *j->pgp, j->message, j->pgp_to, j->sign);
    else r = co_await crypto::encrypt_async(pool, *j->smime, j->message, j->smime_to, j->sign);
    if (r.state != crypto::encrypt_result::status::encrypted) {
      if (!j->failed++) std::cerr << "crypto_bench: " << r.error << "\n";
    }
    j->output_bytes = r.message.size();
  }
}

[[gnu::noinline]] asio::awaitable<void> find(crypto::key_finder& finder, std::string method, std::string to, job* j) {
  if (method == "pgp") {
    auto r = co_await finder.find_pgp(to);
    if (r.key) j->pgp_to.push_back(*r.key);
  } else {
    auto r = co_await finder.find_smime(to);
    if (r.cert) j->smime_to.push_back(r.cert);
  }
}

void log_exception(std::exception_ptr e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    std::cerr << "crypto_bench: " << ex.what() << "\n";
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_file, method = "pgp", to;
  int count = 100, concurrency = 2;
  bool sign = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    if (a == "--config") config_file = next();
    else if (a == "--method") method = next();
    else if (a == "--to") to = next();
    else if (a == "--count") count = std::stoi(next());
    else if (a == "--concurrency") concurrency = std::stoi(next());
    else if (a == "--sign") sign = true;
    else {
      std::cerr << "usage: crypto_bench --config FILE --to ADDRESS [--method pgp|smime] [--count N] "
                   "[--concurrency N] [--sign] < MESSAGE\n";
      return 2;
    }
  }
  try {
    auto cfg = gateway::load_config(config_file);
    cfg.crypto.sources.dns_openpgpkey = cfg.crypto.sources.dns_smimea = false;
    asio::io_context io;
    asio::thread_pool pool(static_cast<size_t>(concurrency));
    std::unique_ptr<crypto::pgp_engine> pgp;
    if (method == "pgp") pgp = std::make_unique<crypto::pgp_engine>(cfg.crypto);
    crypto::smime_engine smime(cfg.crypto);
    crypto::key_finder finder(cfg.crypto, pgp.get(), smime, nullptr, pool);
    job j;
    j.pgp = pgp.get();
    j.smime = method == "pgp" ? nullptr : &smime;
    j.sign = sign;
    j.message = crypto::to_crlf(std::string(std::istreambuf_iterator<char>(std::cin), {}));
    asio::co_spawn(io, find(finder, method, to, &j), log_exception);
    io.run();
    if (j.pgp_to.empty() && j.smime_to.empty()) {
      std::cerr << "crypto_bench: no usable " << method << " key for " << to << " (sealgate keys lookup says why)\n";
      return 1;
    }
    j.remaining = count;
    auto start = std::chrono::steady_clock::now();
    io.restart();
    for (int i = 0; i < concurrency; ++i) asio::co_spawn(io, worker(pool, &j), log_exception);
    io.run();
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    pool.join();
    std::printf("%s %d messages of %zu octets in %.3f s: %.1f msg/s (output %zu octets, %d failed)\n", method.c_str(),
                count, j.message.size(), s, count / s, j.output_bytes, j.failed);
    return j.failed ? 1 : 0;
  } catch (const std::exception& e) {
    std::cerr << "crypto_bench: " << e.what() << "\n";
    return 1;
  }
}
