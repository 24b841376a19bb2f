// `sealgate dkim keygen` and `sealgate dkim check`; see dkim_cli.hpp.
#include "gateway/cli/dkim_cli.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <iostream>

#include "common/file_io.hpp"
#include "common/text.hpp"
#include "common/unique_fd.hpp"
#include "crypto/dkim.hpp"
#include "dns/domain_name.hpp"
#include "dns/resolver.hpp"
#include "gateway/cli/bootstrap.hpp"
#include "gateway/cli/cli_args.hpp"
#include "gateway/config/config.hpp"

namespace sealgate::gateway {

const char* const dkim_usage_line =
    "  dkim keygen --domain D --selector S [--algorithm rsa|ed25519] [--out FILE]\n"
    "                               write a signing key (0600; RSA is 2048 bits) and print its DNS TXT record\n"
    "  dkim check --config FILE DOMAIN SELECTOR\n"
    "                               compare the published record with the configured key; exit 0 same,\n"
    "                               1 different, absent or the lookup failed\n";

namespace {
namespace asio = boost::asio;

int usage(const std::string& problem) { return usage_exit(problem, "usage: sealgate COMMAND ...\n", dkim_usage_line); }

// The record as a zone file line: character-strings of at most 255 octets
// (RFC 1035 3.3.14), which a 2048-bit RSA key needs more than one of.
std::string zone_line(const std::string& name, const std::string& record) {
  std::string line = name + " IN TXT (";
  for (size_t at = 0; at < record.size(); at += 250) line += " \"" + record.substr(at, 250) + "\"";
  return line + " )";
}

int keygen(const cli_args& o) {
  std::string domain = o.value("--domain"), selector = o.value("--selector"), algorithm = o.value("--algorithm", "rsa");
  if (domain.empty() || selector.empty()) return usage("dkim keygen needs --domain and --selector");
  auto ascii = dns::to_ascii_domain(domain);
  if (!ascii) return usage("'" + domain + "' is not a domain name");
  auto sel = dns::to_ascii_domain(selector);
  if (!sel) return usage("'" + selector + "' is not a selector (DNS labels)");
  if (algorithm != "rsa" && algorithm != "ed25519") return usage("--algorithm is rsa or ed25519");
  auto key = crypto::dkim_private_key::generate(algorithm == "rsa" ? crypto::dkim_algorithm::rsa_sha256
                                                                  : crypto::dkim_algorithm::ed25519_sha256);
  std::string out = o.value("--out", *ascii + "." + *sel + "." + algorithm + ".pem");
  // O_EXCL: a key already published must never be overwritten by mistake.
  unique_fd fd(::open(out.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd) {
    std::cerr << "sealgate: dkim keygen: cannot create " << out << ": " << std::strerror(errno) << "\n";
    return exit_failure;
  }
  if (!write_all(fd.get(), key.private_pem()) || ::fsync(fd.get()) != 0) {
    std::cerr << "sealgate: dkim keygen: cannot write " << out << "\n";
    return exit_failure;
  }
  std::cerr << "sealgate: wrote " << out << " (" << (algorithm == "rsa" ? "RSA 2048" : "Ed25519")
            << "); configure it under dkim.keys and publish:\n";
  std::cout << zone_line(*sel + "._domainkey." + *ascii + ".", key.dns_record()) << "\n";
  return exit_ok;
}

// The p= of a key record; nullopt when the text is no DKIM key record.
std::optional<std::string> published_key(const std::string& txt) {
  auto tags = crypto::dkim_tags(txt);
  if (!tags) return std::nullopt;
  std::optional<std::string> p;
  for (const auto& [k, v] : *tags) {
    if (k == "v" && v != "DKIM1") return std::nullopt;
    if (k == "p") {
      std::string compact;
      for (char c : v)
        if (c != ' ' && c != '\t') compact += c;
      p = compact;
    }
  }
  return p;
}

asio::awaitable<void> check(dns::resolver& res, std::string name, std::string expected, int* exit_code) {
  auto r = co_await res.resolve_txt(name);
  if (r.status == dns::outcome::temporary_failure) {
    std::cout << name << ": lookup failed: " << r.error << "\n";
    co_return;
  }
  if (r.status != dns::outcome::found) {
    std::cout << name << ": no record published; publish:\n  v=DKIM1; k=...; p=" << expected << "\n";
    co_return;
  }
  for (const auto& txt : r.records) {
    auto p = published_key(txt);
    if (!p) continue;
    if (*p == expected) {
      std::cout << name << ": the published key is the configured key" << (r.secure ? " (DNSSEC-signed)" : "") << "\n";
      *exit_code = exit_ok;
      co_return;
    }
    std::cout << name << ": the published key differs from the configured one"
              << (p->empty() ? " (it is revoked: p= is empty)" : "") << "\n  published:  p=" << *p
              << "\n  configured: p=" << expected << "\n";
    co_return;
  }
  std::cout << name << ": no DKIM key record among " << r.records.size() << " TXT record(s)\n";
}

int check_command(const cli_args& o) {
  if (o.positional.size() != 2) return usage("dkim check takes DOMAIN and SELECTOR");
  auto loaded = load_config_or_report(o.value("--config"));
  if (!loaded) return exit_failure;
  auto domain = dns::to_ascii_domain(o.positional[0]);
  std::string selector = lower_ascii(o.positional[1]);
  const dkim_signing_key* key = nullptr;
  for (const auto& k : loaded->dkim.keys)
    if (domain && k.domain == *domain && k.selector == selector) key = &k;
  if (!key) {
    std::cerr << "sealgate: dkim check: no key for selector " << selector << " of " << o.positional[0]
              << " in dkim.keys of " << loaded->file.string() << "\n";
    return exit_failure;
  }
  int exit_code = exit_failure;
  try {
    asio::io_context io;
    dns::resolver res(io.get_executor(), loaded->dns);
    asio::co_spawn(io, check(res, selector + "._domainkey." + *domain, key->key->public_key_base64(), &exit_code),
                   [](std::exception_ptr e) {
                     if (e) std::rethrow_exception(e);
                   });
    io.run();
  } catch (const std::exception& e) {
    std::cerr << "sealgate: dkim check: " << e.what() << "\n";
    return exit_failure;
  }
  return exit_code;
}

}  // namespace

int run_dkim_command(const std::vector<std::string>& args) {
  if (args.empty() || (args[0] != "keygen" && args[0] != "check")) return usage("dkim: expected 'keygen' or 'check'");
  cli_args o;
  try {
    if (args[0] == "keygen")
      o = parse_cli(args, 1, {.values = {"--domain", "--selector", "--algorithm", "--out"}, .flags = {},
                              .config_required = false});
    else
      o = parse_cli(args, 1, {.values = {}, .flags = {}});
  } catch (const cli_usage_error& e) {
    return usage(e.what());
  }
  if (args[0] == "keygen") {
    if (!o.positional.empty()) return usage("dkim keygen takes no arguments besides its options");
    return keygen(o);
  }
  return check_command(o);
}

}  // namespace sealgate::gateway
