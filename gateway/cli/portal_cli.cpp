// `sealgate portal ...`; see portal_cli.hpp.
#include "gateway/cli/portal_cli.hpp"

#include <pwd.h>
#include <unistd.h>

#include <chrono>
#include <iostream>

#include "gateway/cli/bootstrap.hpp"
#include "gateway/cli/cli_args.hpp"
#include "gateway/cli/cli_text.hpp"
#include "gateway/methods/portal_service.hpp"
#include "common/file_io.hpp"
#include "common/text.hpp"
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
    "                                                 delete the message's deposits (one recipient's) at once\n"
    "  portal resend --config FILE ID --recipient ADDR\n"
    "                                                 a new link for a lost one (needs portal.master_key); the old\n"
    "                                                 link stops working, the gateway sends the new notification\n";

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

// Master-key mode: seal the deposit again for a new token, and hand the new
// notification to the gateway through the outbox (sealed to its key, as the
// portal process does with codes).
int resend(const config& cfg, portal::store& store, const std::string& queue_id, const std::string& recipient) {
  if (cfg.portal.master_key.empty()) {
    std::cerr << "sealgate: portal.master_key is not set: a lost link cannot be replaced (the store cannot open the "
                 "deposit without it, by design)\n";
    return exit_failure;
  }
  auto key_text = read_file(cfg.portal.master_key);
  bool ok = false;
  std::string master = key_text ? base64_decode(trim(*key_text), ok) : "";
  auto outbox_key = store.setting("outbox_public_key");
  std::string outbox = outbox_key ? base64_decode(*outbox_key, ok) : "";
  if (master.size() != 32 || outbox.size() != 32) {
    std::cerr << "sealgate: " << (master.size() != 32 ? cfg.portal.master_key.string() + ": not a 32-byte key in base64"
                                                       : std::string("the gateway has not published its outbox key"))
              << "\n";
    return exit_failure;
  }
  portal::list_filter f;
  f.queue_id = queue_id;
  f.recipient = recipient;
  f.active_only = true;
  auto entries = store.list(f);
  if (entries.empty()) {
    std::cerr << "sealgate: no readable deposit of message " << queue_id << " for " << recipient << "\n";
    return exit_failure;
  }
  const auto& e = entries.front();
  auto sealed = store.sealed(e.id);
  std::string token = portal::new_token(), lookup = portal::lookup_key(token);
  auto resealed = sealed ? portal::reissue(*sealed, master, e.lookup, token, lookup) : std::nullopt;
  if (!resealed) {
    std::cerr << "sealgate: deposit " << e.id << " was not sealed under this master key (made before it was set?)\n";
    return exit_failure;
  }
  notice_input n;
  n.sender_name = e.sender;
  n.sender_address = e.sender;
  n.recipient = e.recipient;
  n.link = cfg.portal.base_url + "/m/" + token;
  n.hostname = cfg.hostname;
  n.now = unix_now();
  n.expires = e.expires;
  std::string logo;
  if (!cfg.portal.logo.empty()) logo = read_file(cfg.portal.logo).value_or("");
  n.logo = logo;
  std::string notice = compose_notification(cfg.portal, n);
  if (!store.reissue(e.id, lookup, *resealed, portal::box_seal(outbox, notice), n.now, who_am_i())) {
    std::cerr << "sealgate: deposit " << e.id << " is no longer readable\n";
    return exit_failure;
  }
  std::cout << "deposit " << e.id << " of message " << queue_id << " for " << recipient
            << ": new link made, the old one no longer works; the gateway sends the notification\n";
  return exit_ok;
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
      set_log_format(cfg->log_format);
      return portal::run_portal(cfg->portal);
    }
    // list only reads: it never creates the store or changes it.
    auto store = portal::open_store(
        cfg->portal.store, sub == "list" ? portal::store_access::read_only : portal::store_access::read_write);
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
        auto when = [](int64_t t) { return t > 0 ? utc_time(t, iso_utc) : std::string("-"); };
        std::printf("%-6lld %-17s %-32s %-10s %-21s %s\n", static_cast<long long>(e.id), e.queue_id.c_str(),
                    rcpt.c_str(), std::string(portal::to_string(e.state)).c_str(), when(e.created).c_str(),
                    when(e.expires).c_str());
      }
      return exit_ok;
    }
    if (sub == "resend") {
      if (o.positional.size() != 1 || !o.has("--recipient"))
        return usage_exit("portal resend takes one message ID and --recipient ADDR", portal_usage);
      return resend(*cfg, *store, o.positional[0], o.value("--recipient"));
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
