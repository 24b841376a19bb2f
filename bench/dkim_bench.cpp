// dkim_bench: what DKIM signing costs one message, single-threaded, beside
// the raw RSA signature it contains. For bench/dkim_relay.sh; not a test and
// not installed. Never prints content or keys.
//
//   dkim_bench --key FILE [--message FILE] [--seconds S]
//
// Times, each for about S seconds (default 3) on this thread only:
//   sign     crypto::dkim_private_key::sign() on a 600-byte input (the size of
//            a typical header hash input), the raw signature alone;
//   finish   gateway::outgoing_finisher::finish() on the message in memory
//            (message_content::in_memory), one key, no loop secret: the body
//            hash, the header block, the signature field, the new content.
// Prints one line each: "NAME: RATE/s (COUNT in SECONDS s of CPU, MICROS us
// each; wall clock: RATE/s)". The rate is per second of this thread's CPU
// time (user + system), as openssl speed divides by its CPU user time unless
// told -elapsed: on a busy machine, time spent waiting for a CPU counts for
// neither.
#include <time.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <string>

#include "crypto/dkim.hpp"
#include "gateway/config/intake_options.hpp"
#include "gateway/mail/message_content.hpp"
#include "gateway/methods/outgoing.hpp"

using namespace sealgate;
using clock_type = std::chrono::steady_clock;

namespace {

// A 4 KiB text message with ordinary headers, CRLF, as a relay receives it.
std::string default_message() {
  std::string m =
      "Received: from app.bench.test (app.bench.test [127.0.0.1])\r\n\tby gw.bench.test with ESMTP id 0123456789AB;\r\n"
      "\tSat, 6 Dec 2025 10:00:00 +0000\r\n"
      "From: Sender <sender@bench.test>\r\nTo: rcpt@example.org\r\nSubject: bench\r\n"
      "Date: Sat, 6 Dec 2025 10:00:00 +0000\r\nMessage-ID: <bench.1@bench.test>\r\n"
      "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n";
  const char* words[] = {"patient", "appointment", "results", "laboratory", "invoice", "reminder", "clinic", "report"};
  std::string line;
  for (unsigned i = 0; m.size() < 4096; ++i) {
    std::string w = words[(i * 7 + i / 3) % 8];
    if (line.size() + w.size() > 72) {
      m += line + "\r\n";
      line.clear();
    }
    line += w + " ";
  }
  return m.substr(0, 4094) + "\r\n";
}

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

// Runs f repeatedly for about `seconds` of this thread's CPU time (checking
// the clocks every 16 calls); prints and returns the rate per CPU second.
template <typename F>
double timed(const char* name, double seconds, F&& f) {
  for (int i = 0; i < 20; ++i) f();  // warm up: caches, OpenSSL's lazy init
  uint64_t count = 0;
  auto wall0 = clock_type::now();
  double cpu0 = thread_cpu_seconds(), cpu = 0;
  do {
    for (int i = 0; i < 16; ++i) f();
    count += 16;
    cpu = thread_cpu_seconds() - cpu0;
  } while (cpu < seconds);
  double wall = std::chrono::duration<double>(clock_type::now() - wall0).count();
  double rate = count / cpu;
  std::printf("%s: %.1f/s (%llu in %.3f s of CPU, %.1f us each; wall clock: %.1f/s)\n", name, rate,
              static_cast<unsigned long long>(count), cpu, 1e6 / rate, count / wall);
  std::fflush(stdout);
  return rate;
}

}  // namespace

int main(int argc, char** argv) {
  std::string key_file, message_file, only;
  double seconds = 3;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << "dkim_bench: " << a << " needs a value\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--key") key_file = next();
    else if (a == "--message") message_file = next();
    else if (a == "--seconds") seconds = std::stod(next());
    else if (a == "--only") only = next();  // sign or finish: one of them (for perf record)
    else {
      std::cerr << "usage: dkim_bench --key FILE [--message FILE] [--seconds S] [--only sign|finish]\n";
      return 2;
    }
  }
  if (key_file.empty()) {
    std::cerr << "dkim_bench: --key FILE is required\n";
    return 2;
  }
  std::string error;
  auto key = crypto::dkim_private_key::load(key_file, &error);
  if (!key) {
    std::cerr << "dkim_bench: " << key_file << ": " << error << "\n";
    return 1;
  }
  std::string message = default_message();
  if (!message_file.empty()) {
    std::ifstream in(message_file, std::ios::binary);
    if (!in) {
      std::cerr << "dkim_bench: cannot read " << message_file << "\n";
      return 1;
    }
    message.assign(std::istreambuf_iterator<char>(in), {});
  }

  gateway::dkim_options o;
  gateway::dkim_signing_key k;
  k.domain = "bench.test";
  k.selector = "s1";
  k.private_key = key_file;
  k.key = std::make_shared<const crypto::dkim_private_key>(*key);
  o.keys.push_back(k);
  gateway::outgoing_finisher finisher(o, "", "gw.bench.test");
  auto content = gateway::message_content::in_memory(message);

  // Once, to check that it signs at all (a From outside bench.test would not).
  auto r = finisher.finish(content, content, 1765015200);
  if (r.signed_by.empty() || r.content->size() <= content->size()) {
    std::cerr << "dkim_bench: finish() did not sign (the From domain must be bench.test)\n";
    return 1;
  }
  std::printf("key: RSA %d bits; message: %zu bytes, signed: %llu bytes (%s)\n", key->bits(), message.size(),
              static_cast<unsigned long long>(r.content->size()), r.signed_by.c_str());

  std::string input(600, 'x');
  for (size_t i = 0; i < input.size(); ++i) input[i] = static_cast<char>('a' + i % 26);
  size_t sink = 0;  // keeps the results alive
  if (only.empty() || only == "sign")
    timed("sign (dkim_private_key::sign, 600 bytes)", seconds, [&] { sink += key->sign(input).size(); });
  if (only.empty() || only == "finish")
    timed("finish (outgoing_finisher::finish, 4 KiB)", seconds,
          [&] { sink += finisher.finish(content, content, 1765015200).content->size(); });
  return sink == 0 ? 1 : 0;
}
