// `sealgate keys lookup|encrypt`; see keys_cli.hpp. Reads the message from
// stdin and writes the encrypted one to stdout; never prints or logs content
// on stderr, and never changes the operator's keyring (discovered keys go to
// gnupg_home/discovered).
#include "gateway/cli/keys_cli.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <iostream>
#include <iterator>
#include <memory>
#include <sstream>

#include "crypto/address.hpp"
#include "crypto/keys.hpp"
#include "crypto/service.hpp"
#include "dns/resolver.hpp"
#include "gateway/config/config.hpp"
#include "gateway/cli/bootstrap.hpp"
#include "gateway/cli/cli_args.hpp"
#include "gateway/cli/cli_text.hpp"

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
  return usage_exit(problem, "usage: sealgate COMMAND ...\n", keys_usage_line);
}

// Everything a command needs, built from the config; owns the service.
struct toolkit {
  config cfg;
  asio::io_context io;
  asio::thread_pool pool{2};
  std::unique_ptr<dns::resolver> resolver;
  std::unique_ptr<crypto::crypto_service> crypto;

  ~toolkit() {
    crypto.reset();
    pool.join();
    resolver.reset();  // before the io_context (dns/resolver.hpp)
  }
};

// Throws std::runtime_error with the reason (a bad key file, gpg missing, ...).
void build(toolkit& t) {
  const auto& o = t.cfg.crypto;
  if (o.sources.dns_openpgpkey || o.sources.dns_smimea || o.sources.wkd) t.resolver = std::make_unique<dns::resolver>(t.io.get_executor(), t.cfg.dns);
  t.crypto = std::make_unique<crypto::crypto_service>(o, t.resolver.get(), t.pool);
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
    if (!s.wkd_method.empty()) out << " (" << s.wkd_method << " method, " << s.wkd_host << ")";
    else if (!s.wkd_host.empty()) out << " (" << s.wkd_host << ")";
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
    if (s.source == crypto::key_source::wkd && s.enabled)
      o << ", \"method\": " << json_string(s.wkd_method) << ", \"host\": " << json_string(s.wkd_host);
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

// Named coroutines taking inputs by value (DESIGN.md 2).
asio::awaitable<void> lookup(crypto::key_finder& finder, std::string address, bool json, int* exit_code) {
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

[[gnu::noinline]] asio::awaitable<void> encrypt(crypto::crypto_service& svc, encrypt_job job, int* exit_code) {
  using policy::method;
  crypto::crypto_service::outcome o;
  if (job.method != "smime") o = co_await svc.encrypt(method::pgp, job.to, job.message, job.sign);
  // Without --method: S/MIME when some recipient has no PGP key.
  if (job.method == "smime" || (job.method.empty() && !o.message && o.no_key)) {
    std::string pgp_why = o.why;
    o = co_await svc.encrypt(method::smime, job.to, job.message, job.sign);
    if (!o.message && job.method.empty()) o.why = pgp_why + "\n" + o.why;
  }
  if (!o.message) {
    std::cerr << "sealgate: keys encrypt: " << o.why << "\n";
    *exit_code = 1;
    co_return;
  }
  if (o.already_encrypted) std::cerr << "sealgate: keys encrypt: the message is already encrypted; unchanged\n";
  std::cout.write(o.message->data(), static_cast<std::streamsize>(o.message->size()));
  std::cout.flush();
  *exit_code = std::cout ? 0 : 1;
}

}  // namespace

int run_keys_command(const std::vector<std::string>& args) {
  if (args.empty() || (args[0] != "lookup" && args[0] != "encrypt")) return usage("keys: expected 'lookup' or 'encrypt'");
  bool is_lookup = args[0] == "lookup";
  cli_args o;
  try {
    o = is_lookup ? parse_cli(args, 1, {.values = {}, .flags = {"--json"}})
                  : parse_cli(args, 1, {.values = {"--to", "--method"}, .flags = {"--sign"}});
  } catch (const cli_usage_error& e) {
    return usage(e.what());
  }
  const std::string config_file = o.value("--config");
  const bool json = o.has("--json");
  const auto& positional = o.positional;
  encrypt_job job;
  job.to = o.all("--to");
  job.method = o.value("--method", job.method);
  job.sign = o.has("--sign");
  if (o.has("--method") && job.method != "pgp" && job.method != "smime") return usage("--method is pgp or smime");
  if (is_lookup && positional.size() != 1) return usage("keys lookup takes one ADDRESS");
  if (!is_lookup && (!positional.empty() || job.to.empty())) return usage("keys encrypt takes --to ADDRESS and the message on stdin");
  for (auto& a : is_lookup ? positional : job.to)
    if (!crypto::parse_address(a)) return usage("not an address: " + a);

  toolkit t;
  auto loaded = load_config_or_report(config_file);
  if (!loaded) return exit_failure;
  t.cfg = std::move(*loaded);
  int exit_code = 1;
  try {
    build(t);
    auto report = [](std::exception_ptr e) {
      if (e) std::rethrow_exception(e);
    };
    if (is_lookup) {
      asio::co_spawn(t.io, lookup(t.crypto->finder(), positional[0], json, &exit_code), report);
    } else {
      job.message = crypto::to_crlf(std::string(std::istreambuf_iterator<char>(std::cin), {}));
      asio::co_spawn(t.io, encrypt(*t.crypto, std::move(job), &exit_code), report);
    }
    t.io.run();
  } catch (const std::exception& e) {
    std::cerr << "sealgate: keys: " << e.what() << "\n";
    return 1;
  }
  return exit_code;
}

}  // namespace sealgate::gateway
