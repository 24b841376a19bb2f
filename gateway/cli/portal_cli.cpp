// `sealgate portal ...`; see portal_cli.hpp.
#include "gateway/cli/portal_cli.hpp"

#include <pwd.h>
#include <unistd.h>

#include <chrono>
#include <iostream>

#include "gateway/cli/bootstrap.hpp"
#include "gateway/cli/cli_args.hpp"
#include "gateway/cli/cli_text.hpp"
#include "portal/store/store.hpp"
#include "portal/web/server.hpp"

namespace sealgate::gateway {
namespace {

constexpr const char* portal_usage =
    "usage:\n"
    "  portal run --config FILE                       serve the portal over HTTPS (portal.listen, portal.port)\n"
    "  portal list --config FILE [--recipient ADDR] [--message ID] [--active] [--json]\n"
    "                                                 deposits: message, recipient, state, dates (no content)\n"
    "  portal retract --config FILE ID [--recipient ADDR]\n"
    "                                                 delete the message's deposits (one recipient's) at once\n";

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string who_am_i() {
  passwd* pw = ::getpwuid(::getuid());
  return pw ? pw->pw_name : "uid " + std::to_string(::getuid());
}

std::string date_text(int64_t t) {
  if (t <= 0) return "-";
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

int run_portal_command(const std::vector<std::string>& args) {
  if (args.empty()) return usage_exit("portal needs a subcommand", portal_usage);
  const std::string& sub = args[0];
  if (sub == "help" || sub == "--help") {
    std::cout << portal_usage;
    return exit_ok;
  }
  cli_args o;
  try {
    o = parse_cli(args, 1, {{"--recipient", "--message"}, {"--json", "--active"}});
  } catch (const cli_usage_error& e) {
    return usage_exit(e.what(), portal_usage);
  }
  auto cfg = load_config_or_report(o.value("--config"));
  if (!cfg) return exit_failure;
  if (!cfg->portal.configured) {
    std::cerr << "sealgate: " << cfg->file.string() << ": no portal: section, the portal is not configured\n";
    return exit_failure;
  }
  try {
    if (sub == "run") {
      if (!o.positional.empty()) return usage_exit("portal run takes no arguments", portal_usage);
      return portal::run_portal(cfg->portal);
    }
    auto store = portal::open_sqlite_store(cfg->portal.store);
    if (sub == "list") {
      if (!o.positional.empty()) return usage_exit("portal list takes no arguments", portal_usage);
      portal::list_filter f;
      f.recipient = o.value("--recipient");
      f.queue_id = o.value("--message");
      f.active_only = o.has("--active");
      auto entries = store->list(f);
      if (o.has("--json")) {
        std::cout << "[";
        for (size_t i = 0; i < entries.size(); ++i) {
          const auto& e = entries[i];
          std::cout << (i ? ",\n " : "") << "{\"entry\": " << e.id << ", \"message\": " << json_string(e.queue_id)
                    << ", \"recipient\": " << json_string(e.recipient) << ", \"sender\": " << json_string(e.sender)
                    << ", \"state\": " << json_string(std::string(portal::to_string(e.state)))
                    << ", \"created\": " << e.created << ", \"expires\": " << e.expires << ", \"size\": " << e.size
                    << ", \"notification\": " << json_string(e.notice_queue_id) << "}";
        }
        std::cout << "]\n";
        return exit_ok;
      }
      std::cout << "ENTRY  MESSAGE           RECIPIENT                        STATE      CREATED               EXPIRES\n";
      for (const auto& e : entries) {
        std::string rcpt = e.recipient;
        if (rcpt.size() > 32) {
          rcpt.resize(31);
          rcpt.push_back('~');
        }
        std::printf("%-6lld %-17s %-32s %-10s %-21s %s\n", static_cast<long long>(e.id), e.queue_id.c_str(),
                    rcpt.c_str(), std::string(portal::to_string(e.state)).c_str(), date_text(e.created).c_str(),
                    date_text(e.expires).c_str());
      }
      return exit_ok;
    }
    if (sub == "retract") {
      if (o.positional.size() != 1) return usage_exit("portal retract takes one message ID", portal_usage);
      size_t n = store->retract(o.positional[0], o.value("--recipient"), unix_now(), who_am_i());
      if (n == 0) {
        std::cerr << "sealgate: no readable deposit of message " << o.positional[0]
                  << (o.has("--recipient") ? " for " + o.value("--recipient") : "") << "\n";
        return exit_failure;
      }
      std::cout << "retracted " << n << " deposit" << (n == 1 ? "" : "s") << " of message " << o.positional[0]
                << ": the ciphertext is deleted\n";
      return exit_ok;
    }
  } catch (const std::exception& e) {
    std::cerr << "sealgate: " << e.what() << "\n";
    return exit_failure;
  }
  return usage_exit("unknown portal subcommand " + sub, portal_usage);
}

}  // namespace sealgate::gateway
