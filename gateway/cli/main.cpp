// The sealgate command line: run (inbound relay, queue and delivery), passwd,
// policy, dns, probe, queue, report, help, --version. Exit codes follow
// Postfix's tools and the sysexits spirit: 0 success, 1 failure, 2 usage.
#include <termios.h>
#include <unistd.h>

#include <iostream>
#include <string>
#include <vector>

#include "crypto/password.hpp"
#include "gateway/cli/bootstrap.hpp"
#include "gateway/cli/cli_args.hpp"
#include "gateway/cli/dns_cli.hpp"
#include "gateway/cli/dkim_cli.hpp"
#include "gateway/cli/audit_cli.hpp"
#include "gateway/cli/tlsrpt_cli.hpp"
#include "gateway/cli/keys_cli.hpp"
#include "gateway/cli/policy_cli.hpp"
#include "gateway/cli/probe_cli.hpp"
#include "gateway/cli/portal_cli.hpp"
#include "gateway/cli/queue_cli.hpp"
#include "gateway/config/config.hpp"
#include "gateway/daemon/run.hpp"
#include "gateway/inbound/users.hpp"

#ifndef SEALGATE_VERSION
#define SEALGATE_VERSION "0.0.0"
#endif

namespace {
using namespace sealgate::gateway;
constexpr const char* usage_text =
    "usage: sealgate COMMAND [OPTIONS]\n"
    "\n"
    "commands:\n"
    "  run --config FILE            run the gateway\n"
    "  passwd --config FILE USER    read a password on stdin and store its hash in relay.users_file\n"
    "  policy check|explain ...     validate the delivery policy, or explain its decisions (sealgate policy help)\n"
    "  dns lookup --config FILE TYPE NAME [--json]   look NAME up as the gateway would\n"
    "  queue list|show|flush|delete|export|import ...  the messages waiting for delivery, and moving them\n"
    "                               to another node (sealgate queue help)\n"
    "  report --config FILE [...]   delivery counts per method and status, or one message's story\n"
    "  probe --config FILE DOMAIN [--json]           probe DOMAIN's MX hosts: STARTTLS, TLS, DANE, MTA-STS\n"
    "  keys lookup --config FILE ADDRESS [--json]    what every key source has for ADDRESS\n"
    "  keys encrypt --config FILE --to ADDRESS [--method pgp|smime] [--sign] < MESSAGE\n"
    "  portal run|list|retract ...  the secure portal, and its deposits (sealgate portal help)\n"
    "  dkim keygen|check ...        DKIM signing keys: make one and print its record, or compare the published one\n"
    "  tlsrpt show|send --config FILE [--day D]  the day's SMTP TLS reports (RFC 8460): print them, or send them now\n"
    "  audit verify|checkpoint|purge --config FILE  the record's tamper evidence: check the chain, sign it, purge\n"
    "  help                         this text\n"
    "  --version                    print the version\n";

int usage(const std::string& problem) {
  return usage_exit(problem, usage_text);
}

// Parses "--config FILE" and positional arguments; false on anything unknown.
bool parse_args(const std::vector<std::string>& args, std::string& config_file, std::vector<std::string>& positional,
                std::string& problem) {
  try {
    auto o = parse_cli(args, 0, {});
    config_file = o.value("--config");
    positional = o.positional;
    return true;
  } catch (const cli_usage_error& e) {
    problem = e.what();
    return false;
  }
}

std::string read_password() {
  bool tty = ::isatty(STDIN_FILENO);
  termios old{};
  if (tty) {
    std::cerr << "Password: " << std::flush;
    ::tcgetattr(STDIN_FILENO, &old);
    termios quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    ::tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
  }
  std::string pw;
  std::getline(std::cin, pw);
  if (tty) {
    ::tcsetattr(STDIN_FILENO, TCSANOW, &old);
    std::cerr << "\n";
  }
  if (!pw.empty() && pw.back() == '\r') pw.pop_back();
  return pw;
}

int cmd_passwd(const std::vector<std::string>& args) {
  std::string file, problem;
  std::vector<std::string> positional;
  if (!parse_args(args, file, positional, problem)) return usage(problem);
  if (positional.size() != 1) return usage("passwd takes one USER");
  auto loaded = load_config_or_report(file);
  if (!loaded) return exit_failure;
  const config& cfg = *loaded;
  if (cfg.users_file.empty()) {
    std::cerr << "sealgate: " << file << ": relay.users_file is not set\n";
    return 1;
  }
  if (!valid_user_name(positional[0])) {
    std::cerr << "sealgate: invalid user name (no ':' or control characters, 1-256 octets)\n";
    return 1;
  }
  std::string pw = read_password();
  if (pw.empty()) {
    std::cerr << "sealgate: empty password refused\n";
    return 1;
  }
  try {
    set_user_hash(cfg.users_file, positional[0], sealgate::crypto::hash_password(pw));
  } catch (const std::exception& e) {
    std::cerr << "sealgate: " << e.what() << "\n";
    return 1;
  }
  std::fill(pw.begin(), pw.end(), '\0');
  std::cerr << "sealgate: password for " << positional[0] << " stored in " << cfg.users_file.string() << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) return usage("no command given");
  std::string cmd = args.front();
  args.erase(args.begin());
  if (cmd == "--version" || cmd == "version") {
    std::cout << "sealgate " << SEALGATE_VERSION << "\n";
    return 0;
  }
  if (cmd == "help" || cmd == "--help" || cmd == "-h") {
    std::cout << usage_text;
    return 0;
  }
  if (cmd == "run") {
    std::string file, problem;
    std::vector<std::string> positional;
    if (!parse_args(args, file, positional, problem)) return usage(problem);
    if (!positional.empty()) return usage("run takes no arguments");
    auto cfg = load_config_or_report(file);
    if (!cfg) return exit_failure;
    return run_gateway(std::move(*cfg), SEALGATE_VERSION);
  }
  if (cmd == "passwd") return cmd_passwd(args);
  if (cmd == "policy") return run_policy_command(args);
  if (cmd == "dns") return run_dns_command(args);
  if (cmd == "queue") {
    if (!args.empty() && (args[0] == "help" || args[0] == "--help")) {
      std::cout << "usage:\n" << queue_usage_lines;
      return 0;
    }
    return run_queue_command(args);
  }
  if (cmd == "report") return run_report_command(args, SEALGATE_VERSION);
  if (cmd == "probe") return run_probe_command(args);
  if (cmd == "keys") return run_keys_command(args);
  if (cmd == "portal") return run_portal_command(args);
  if (cmd == "dkim") return run_dkim_command(args);
  if (cmd == "tlsrpt") return run_tlsrpt_command(args);
  if (cmd == "audit") return run_audit_command(args);
  return usage("unknown command " + cmd);
}
