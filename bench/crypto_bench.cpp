// crypto_bench: encryption throughput of crypto/ as delivery uses it
// (crypto_service: the key from discovery's cache, the work on a worker pool). For
// bench/crypto_rate.sh; not a test and not installed. Never prints content.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <iterator>

#include "crypto/service.hpp"
#include "gateway/config/config.hpp"

namespace asio = boost::asio;
using namespace sealgate;

namespace {

struct job {
  crypto::crypto_service* svc = nullptr;
  policy::method method = policy::method::pgp;
  std::string to;
  bool sign = false;
  std::string message;
  int remaining = 0;  // touched only on the io thread
  int failed = 0;
  size_t output_bytes = 0;
};

// As delivery calls it: the key from discovery's cache, the work on the pool.
[[gnu::noinline]] asio::awaitable<void> worker(job* j) {
  while (j->remaining > 0) {
    --j->remaining;
    std::vector<std::string> to{j->to};  // a named vector: g++ 12 cannot take a braced list in co_await
    auto o = co_await j->svc->encrypt(j->method, to, j->message, j->sign);
    if (!o.message || o.already_encrypted) {
      if (!j->failed++) std::cerr << "crypto_bench: " << (o.message ? "already encrypted" : o.why) << "\n";
      continue;
    }
    j->output_bytes = o.message->size();
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
    crypto::crypto_service svc(cfg.crypto, nullptr, pool);
    job j;
    j.svc = &svc;
    j.method = method == "pgp" ? policy::method::pgp : policy::method::smime;
    j.to = to;
    j.sign = sign;
    j.message = crypto::to_crlf(std::string(std::istreambuf_iterator<char>(std::cin), {}));
    j.remaining = count;
    auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < concurrency; ++i) asio::co_spawn(io, worker(&j), log_exception);
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
