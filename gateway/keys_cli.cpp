// `sealgate keys lookup|encrypt`; see keys_cli.hpp. Reads the message from
// stdin and writes the encrypted one to stdout; never prints or logs content
// on stderr, and never changes the operator's keyring (discovered keys go to
// gnupg_home/discovered).
#include "gateway/keys_cli.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <iostream>
#include <iterator>
#include <memory>
#include <sstream>

#include "crypto/address.hpp"
#include "crypto/keys.hpp"
#include "dns/resolver.hpp"
#include "gateway/config.hpp"
#include "gateway/cli_text.hpp"

namespace sealgate::gateway {

const char* const keys_usage_line =
    "  keys lookup --config FILE ADDRESS [--json]\n"
    "                               what each key source has for ADDRESS, usable or why not;\n"
    "                               exit 0 when every source answered, 1 on a temporary failure\n"
    "  keys encrypt --config FILE --to ADDRESS [--to ...] [--method pgp|smime] [--sign] < MESSAGE\n"
    "                               encrypt MESSAGE as delivery would, print it on stdout\n";

namespace {
namespace asio = boost::asio;
using policy::fact;

int usage(const std::string& problem) {
  std::cerr << "sealgate: " << problem << "\nusage: sealgate COMMAND ...\n" << keys_usage_line;
  return 2;
}

// Everything a command needs, built from the config; owns the engines.
struct toolkit {
  config cfg;
  asio::io_context io;
  asio::thread_pool pool{2};
  std::unique_ptr<dns::resolver> resolver;
  std::unique_ptr<crypto::pgp_engine> pgp;
  std::unique_ptr<crypto::smime_engine> smime;
  std::unique_ptr<crypto::key_finder> finder;

  ~toolkit() {
    finder.reset();
    pool.join();
    resolver.reset();  // before the io_context (dns/resolver.hpp)
  }
};

// Throws std::runtime_error with the reason (a bad key file, gpg missing, ...).
void build(toolkit& t) {
  const auto& o = t.cfg.crypto;
  if (o.sources.dns_openpgpkey || o.sources.dns_smimea) t.resolver = std::make_unique<dns::resolver>(t.io.get_executor(), t.cfg.dns);
  if (!o.gnupg_home.empty()) t.pgp = std::make_unique<crypto::pgp_engine>(o);
  t.smime = std::make_unique<crypto::smime_engine>(o);
  t.finder = std::make_unique<crypto::key_finder>(o, t.pgp.get(), *t.smime, t.resolver.get(), t.pool);
}

std::string_view fact_name(fact f) { return policy::to_string(f); }

void print_sources(std::ostream& out, const std::vector<crypto::source_report>& sources) {
  for (auto& s : sources) {
    out << "  " << crypto::to_string(s.source) << ": ";
    if (!s.enabled) {
      out << "off (" << s.detail << ")\n";
      continue;
    }
    out << fact_name(s.outcome);
    if (s.dns) out << (s.secure ? " secure" : " insecure");
    if (!s.detail.empty()) out << ": " << s.detail;
    out << "\n";
    for (auto& c : s.candidates) {
      out << "    " << (c.usable ? "usable " : "refused ") << (c.id.empty() ? "-" : c.id) << " " << c.description;
      for (auto& a : c.addresses) out << " <" << a << ">";
      if (!c.usable) out << ": " << c.why;
      out << "\n";
    }
  }
}

std::string json_sources(const std::vector<crypto::source_report>& sources) {
  std::ostringstream o;
  o << "[";
  for (size_t i = 0; i < sources.size(); ++i) {
    auto& s = sources[i];
    o << (i ? ", " : "") << "{\"source\": " << json_string(crypto::to_string(s.source))
      << ", \"enabled\": " << (s.enabled ? "true" : "false") << ", \"outcome\": " << json_string(fact_name(s.outcome))
      << ", \"detail\": " << json_string(s.detail);
    if (s.dns) o << ", \"secure\": " << (s.secure ? "true" : "false");
    o << ", \"candidates\": [";
    for (size_t j = 0; j < s.candidates.size(); ++j) {
      auto& c = s.candidates[j];
      o << (j ? ", " : "") << "{\"id\": " << json_string(c.id) << ", \"description\": " << json_string(c.description)
        << ", \"usable\": " << (c.usable ? "true" : "false") << ", \"why\": " << json_string(c.why) << ", \"addresses\": [";
      for (size_t k = 0; k < c.addresses.size(); ++k) o << (k ? ", " : "") << json_string(c.addresses[k]);
      o << "]}";
    }
    o << "]}";
  }
  return o.str() + "]";
}

// Named coroutines taking inputs by value (DESIGN.md 2), not inlined (the
// g++ 12 false -Wmismatched-new-delete, see dns_cli.cpp).
[[gnu::noinline]] asio::awaitable<void> lookup(crypto::key_finder& finder, std::string address, bool json, int* exit_code) {
  auto pgp = co_await finder.find_pgp(address, true);
  auto smime = co_await finder.find_smime(address, true);
  auto facts = crypto::to_key_facts(pgp, smime);
  std::string pgp_key = pgp.key ? pgp.key->fingerprint : "";
  std::string smime_key = smime.cert ? crypto::sha256_fingerprint(smime.cert) : "";
  if (json) {
    std::cout << "{\"address\": " << json_string(address) << ", \"pgp\": {\"outcome\": " << json_string(fact_name(facts.pgp))
              << ", \"key\": " << json_string(pgp_key)
              << ", \"discovered\": " << (pgp.key && pgp.key->discovered ? "true" : "false")
              << ", \"sources\": " << json_sources(pgp.sources) << "}, \"smime\": {\"outcome\": "
              << json_string(fact_name(facts.smime)) << ", \"certificate\": " << json_string(smime_key)
              << ", \"sources\": " << json_sources(smime.sources) << "}}\n";
  } else {
    std::cout << address << "\n";
    std::cout << "pgp: " << fact_name(facts.pgp) << (pgp_key.empty() ? "" : " " + pgp_key) << "\n";
    print_sources(std::cout, pgp.sources);
    std::cout << "smime: " << fact_name(facts.smime) << (smime_key.empty() ? "" : " " + smime_key) << "\n";
    print_sources(std::cout, smime.sources);
  }
  // 1 when any source could not be asked: the report is then incomplete,
  // even if another source found a key.
  bool failed = false;
  for (auto* sources : {&pgp.sources, &smime.sources})
    for (auto& s : *sources) failed |= s.outcome == fact::tempfail;
  *exit_code = failed ? 1 : 0;
}

struct encrypt_job {
  std::vector<std::string> to;
  std::string method;  // "pgp", "smime" or "" (PGP when every recipient has a key, else S/MIME)
  bool sign = false;
  std::string message;
};

std::string why_not(std::string_view method, const std::string& address, const std::vector<crypto::source_report>& sources) {
  std::string out = std::string(method) + ": no usable key for " + address;
  for (auto& s : sources)
    if (s.enabled) out += "; " + std::string(crypto::to_string(s.source)) + ": " + std::string(fact_name(s.outcome)) +
                          (s.detail.empty() ? "" : " (" + s.detail + ")");
  return out;
}

[[gnu::noinline]] asio::awaitable<void> encrypt(toolkit& t, encrypt_job job, int* exit_code) {
  std::vector<crypto::pgp_recipient> pgp_keys;
  std::vector<crypto::certificate> certs;
  std::string pgp_problem, smime_problem;
  if (job.method != "smime") {
    for (auto& a : job.to) {
      auto r = co_await t.finder->find_pgp(a);
      if (r.key) pgp_keys.push_back(*r.key);
      else if (pgp_problem.empty()) pgp_problem = why_not("pgp", a, r.sources);
    }
  }
  bool use_pgp = job.method == "pgp" || (job.method.empty() && pgp_problem.empty());
  if (!use_pgp) {
    for (auto& a : job.to) {
      auto r = co_await t.finder->find_smime(a);
      if (r.cert) certs.push_back(r.cert);
      else if (smime_problem.empty()) smime_problem = why_not("smime", a, r.sources);
    }
  }
  std::string problem = use_pgp ? pgp_problem : smime_problem;
  if (!problem.empty()) {
    if (job.method.empty()) problem = pgp_problem + "\n" + smime_problem;
    std::cerr << "sealgate: keys encrypt: " << problem << "\n";
    *exit_code = 1;
    co_return;
  }
  // Two statements, not a conditional expression holding two co_awaits:
  // g++ 12 destroys such a result before it is used.
  crypto::encrypt_result r;
  if (use_pgp) r = co_await crypto::encrypt_async(t.pool, *t.pgp, job.message, pgp_keys, job.sign);
  else r = co_await crypto::encrypt_async(t.pool, *t.smime, job.message, certs, job.sign);
  if (r.state == crypto::encrypt_result::status::failed) {
    std::cerr << "sealgate: keys encrypt: " << r.error << "\n";
    *exit_code = 1;
    co_return;
  }
  if (r.state == crypto::encrypt_result::status::already_encrypted)
    std::cerr << "sealgate: keys encrypt: the message is already encrypted; unchanged\n";
  std::cout.write(r.message.data(), static_cast<std::streamsize>(r.message.size()));
  std::cout.flush();
  *exit_code = std::cout ? 0 : 1;
}

}  // namespace

int run_keys_command(const std::vector<std::string>& args) {
  if (args.empty() || (args[0] != "lookup" && args[0] != "encrypt")) return usage("keys: expected 'lookup' or 'encrypt'");
  bool is_lookup = args[0] == "lookup";
  std::string config_file;
  bool json = false;
  encrypt_job job;
  std::vector<std::string> positional;
  for (size_t i = 1; i < args.size(); ++i) {
    const auto& a = args[i];
    auto value = [&](std::string& out) {
      if (i + 1 >= args.size()) return false;
      out = args[++i];
      return true;
    };
    if (a == "--config" || a == "-c") {
      if (!value(config_file)) return usage(a + " needs a file");
    } else if (a.rfind("--config=", 0) == 0) {
      config_file = a.substr(9);
    } else if (is_lookup && a == "--json") {
      json = true;
    } else if (!is_lookup && a == "--to") {
      std::string to;
      if (!value(to)) return usage("--to needs an address");
      job.to.push_back(to);
    } else if (!is_lookup && a == "--method") {
      if (!value(job.method) || (job.method != "pgp" && job.method != "smime")) return usage("--method is pgp or smime");
    } else if (!is_lookup && a == "--sign") {
      job.sign = true;
    } else if (!a.empty() && a[0] == '-') {
      return usage("unknown option " + a);
    } else {
      positional.push_back(a);
    }
  }
  if (config_file.empty()) return usage("--config FILE is required");
  if (is_lookup && positional.size() != 1) return usage("keys lookup takes one ADDRESS");
  if (!is_lookup && (!positional.empty() || job.to.empty())) return usage("keys encrypt takes --to ADDRESS and the message on stdin");
  for (auto& a : is_lookup ? positional : job.to)
    if (!crypto::parse_address(a)) return usage("not an address: " + a);

  toolkit t;
  try {
    t.cfg = load_config(config_file);
  } catch (const config_error& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
  int exit_code = 1;
  try {
    build(t);
    auto report = [](std::exception_ptr e) {
      if (e) std::rethrow_exception(e);
    };
    if (is_lookup) {
      asio::co_spawn(t.io, lookup(*t.finder, positional[0], json, &exit_code), report);
    } else {
      if (job.method == "pgp" && !t.pgp) {
        std::cerr << "sealgate: keys encrypt: crypto.gnupg_home is not set\n";
        return 1;
      }
      job.message = crypto::to_crlf(std::string(std::istreambuf_iterator<char>(std::cin), {}));
      asio::co_spawn(t.io, encrypt(t, std::move(job), &exit_code), report);
    }
    t.io.run();
  } catch (const std::exception& e) {
    std::cerr << "sealgate: keys: " << e.what() << "\n";
    return 1;
  }
  return exit_code;
}

}  // namespace sealgate::gateway
