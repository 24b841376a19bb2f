// `sealgate tlsrpt show`; see tlsrpt_cli.hpp.
#include "gateway/cli/tlsrpt_cli.hpp"

#include <ctime>
#include <iostream>
#include <map>

#include "gateway/cli/bootstrap.hpp"
#include "gateway/cli/cli_args.hpp"
#include "gateway/daemon/control.hpp"
#include "gateway/record/tlsrpt.hpp"

namespace sealgate::gateway {

const char* const tlsrpt_usage_line =
    "  tlsrpt show --config FILE [--day YYYY-MM-DD] [--domain D] [--json]\n"
    "                               the day's SMTP TLS reports (RFC 8460) per recipient domain; default yesterday (UTC)\n"
    "  tlsrpt send --config FILE [--day YYYY-MM-DD]\n"
    "                               have the running gateway send that day's reports now (those not sent before)\n";

namespace {

int usage(const std::string& problem) { return usage_exit(problem, "usage: sealgate COMMAND ...\n", tlsrpt_usage_line); }

std::string yesterday() { return utc_day(static_cast<int64_t>(std::time(nullptr)) - 86400); }

int show(const cli_args& o) {
  auto cfg = load_config_or_report(o.value("--config"));
  if (!cfg) return exit_failure;
  std::string day = o.value("--day", yesterday());
  if (utc_day_start(day) < 0) return usage("--day '" + day + "' is not a date (YYYY-MM-DD)");
  std::vector<tls_report> reports;
  try {
    auto rows = read_tls_sessions(cfg->database, day, o.value("--domain"));
    reports = make_tls_reports(rows, day, {cfg->tlsrpt.organization, cfg->tlsrpt.contact, cfg->hostname});
  } catch (const std::exception& e) {
    std::cerr << "sealgate: tlsrpt: " << e.what() << "\n";
    return exit_failure;
  }
  if (o.has("--json")) {
    std::cout << "[";
    for (size_t i = 0; i < reports.size(); ++i) std::cout << (i ? ",\n" : "\n") << reports[i].json;
    std::cout << "]\n";
    return exit_ok;
  }
  if (reports.empty()) std::cout << "no TLS sessions recorded on " << day << "\n";
  for (const auto& r : reports)
    std::cout << r.policy_domain << "  " << r.successes << " successful, " << r.failures << " failed sessions  ("
              << r.file_name << ")\n";
  return exit_ok;
}

int send(const cli_args& o) {
  auto cfg = load_config_or_report(o.value("--config"));
  if (!cfg) return exit_failure;
  std::string day = o.value("--day", yesterday());
  if (utc_day_start(day) < 0) return usage("--day '" + day + "' is not a date (YYYY-MM-DD)");
  // The gateway sends (its queue, its resolver, its record of what went):
  // this only asks it to, and waits for its summary.
  std::string reply = control_request(cfg->spool, "tlsrpt " + day, std::chrono::seconds(300));
  if (reply.empty()) {
    std::cerr << "sealgate: tlsrpt send: no gateway answers on " << (cfg->spool / "control").string() << "\n";
    return exit_failure;
  }
  std::cout << reply << "\n";
  return reply.rfind("error", 0) == 0 ? exit_failure : exit_ok;
}

}  // namespace

int run_tlsrpt_command(const std::vector<std::string>& args) {
  if (args.empty() || (args[0] != "show" && args[0] != "send")) return usage("tlsrpt: expected 'show' or 'send'");
  try {
    if (args[0] == "send") return send(parse_cli(args, 1, {.values = {"--day"}, .flags = {}}));
    return show(parse_cli(args, 1, {.values = {"--day", "--domain"}, .flags = {"--json"}}));
  } catch (const cli_usage_error& e) {
    return usage(e.what());
  }
}

}  // namespace sealgate::gateway
