// The queue and report commands; see queue_cli.hpp.
#include "gateway/cli/queue_cli.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <ctime>
#include <iomanip>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>

#include "gateway/config/config.hpp"
#include "gateway/daemon/control.hpp"
#include "gateway/queue/operator_actions.hpp"
#include "gateway/record/compliance.hpp"
#include "gateway/record/report.hpp"
#include "gateway/spool/queue_state.hpp"
#include "gateway/cli/bootstrap.hpp"
#include "gateway/cli/cli_args.hpp"
#include "gateway/cli/cli_text.hpp"
#include "gateway/cli/queue_move_cli.hpp"
#include "gateway/cli/evidence.hpp"
#include "gateway/cli/compliance_report.hpp"
#include "portal/store/store.hpp"

namespace sealgate::gateway {

const char* const queue_usage_lines =
    "  queue list --config FILE [--json]      messages waiting, with each recipient's state and last reply\n"
    "  queue show --config FILE ID [--json]   one message: envelope, recipients and every attempt\n"
    "  queue flush --config FILE [ID]         ask the running gateway to try again now\n"
    "  queue delete --config FILE ID          remove a message; its waiting recipients are recorded as deleted\n"
    "  queue export [--config FILE] [--spool DIR] --out FILE [--json]\n"
    "                               a stopped node's messages into FILE, with each recipient's state; they leave\n"
    "                               its queue/ for exported/ (refused while a gateway runs on the spool)\n"
    "  queue import [--config FILE] [--spool DIR] FILE [--json]\n"
    "                               the messages of an export into this node's spool, each once; a running\n"
    "                               gateway is asked to deliver them\n"
    "  report --config FILE [--since T] [--by method|recipient-domain|sender|day] [--format table|csv|json|html]\n"
    "  report --config FILE --message ID [--format text|json|html]\n"
    "  report --config FILE --find [--message-id ID] [--sender A] [--recipient A] [--since T] [--until T] [--json]\n"
    "                               delivery counts per method and status (and portal deposits and opens);\n"
    "                               html: the compliance report, one self-contained page (--by is ignored);\n"
    "                               or one message's evidence (its portal events, its audit entries and their\n"
    "                               proof), or the messages that match a search\n";

namespace {

struct usage_error {
  std::string what;
};

struct options {
  std::string config_file;
  std::vector<std::string> positional;
  bool json = false;
  std::string since, by = "method", format = "table", message;
  bool find = false;
  std::string until, message_id, sender, recipient;
};

options parse(const std::vector<std::string>& args, bool report) {
  cli_args a;
  try {
    a = report ? parse_cli(args, 0, {.values = {"--since", "--by", "--format", "--message", "--until", "--message-id",
                                                "--sender", "--recipient"},
                                     .flags = {"--json", "--find"}})
               : parse_cli(args, 0, {.values = {}, .flags = {"--json"}});
  } catch (const cli_usage_error& e) {
    throw usage_error{e.what()};
  }
  options o;
  o.config_file = a.value("--config");
  o.positional = a.positional;
  o.json = a.has("--json");
  o.since = a.value("--since");
  o.by = a.value("--by", o.by);
  o.format = o.json ? "json" : a.value("--format", o.format);
  o.message = a.value("--message");
  o.find = a.has("--find");
  o.until = a.value("--until");
  o.message_id = a.value("--message-id");
  o.sender = a.value("--sender");
  o.recipient = a.value("--recipient");
  if (!o.find && (!o.until.empty() || !o.message_id.empty() || !o.sender.empty() || !o.recipient.empty()))
    throw usage_error{"--until, --message-id, --sender and --recipient go with --find"};
  return o;
}

int usage(const std::string& problem) {
  return usage_exit(problem, "usage:\n", queue_usage_lines);
}

std::string recipient_json(const std::string& address, const rcpt_status& s) {
  std::ostringstream o;
  o << "{\"address\": " << json_string(address) << ", \"state\": " << json_string(state_text(s))
    << ", \"attempts\": " << s.attempts;
  if (s.state == rcpt_state::pending && s.next_try > 0 && s.next_try != std::numeric_limits<int64_t>::max())
    o << ", \"next_try\": " << json_string(time_text(s.next_try));
  o << ", \"method\": " << json_string(s.method) << ", \"last_reply\": " << json_string(s.detail) << "}";
  return o.str();
}

int cmd_list(const config& cfg, const options& o) {
  auto ids = list_queue(cfg.spool);
  std::ostringstream out;
  size_t messages = 0, recipients = 0;
  uint64_t bytes = 0;
  if (o.json) out << "{\"messages\": [";
  for (const auto& id : ids) {
    auto m = load_queued(cfg.spool, id);
    if (!m) continue;  // delivered meanwhile
    if (o.json && messages) out << ", ";
    ++messages;
    bytes += m->envelope.content_size;
    const auto& e = m->envelope;
    if (o.json) {
      out << "{\"id\": " << json_string(id) << ", \"size\": " << e.content_size << ", \"arrival\": "
          << json_string(time_text(e.received)) << ", \"sender\": " << json_string(e.sender) << ", \"recipients\": [";
    } else {
      out << std::left << std::setw(18) << id << std::right << std::setw(9) << e.content_size << "  "
          << time_text(e.received) << "  <" << e.sender << ">\n";
    }
    bool first = true;
    for (size_t i = 0; i < e.recipients.size(); ++i) {
      const auto& s = m->status[i];
      if (is_final(s.state)) continue;
      ++recipients;
      if (o.json) {
        out << (first ? "" : ", ") << recipient_json(e.recipients[i].recipient, s);
      } else {
        out << "    <" << e.recipients[i].recipient << "> " << state_text(s);
        if (s.attempts) out << ", " << s.attempts << (s.attempts == 1 ? " attempt" : " attempts");
        if (s.state == rcpt_state::pending && s.next_try > 0 && s.next_try != std::numeric_limits<int64_t>::max())
          out << ", next " << time_text(s.next_try);
        if (!s.detail.empty()) out << ": " << s.detail;
        out << "\n";
      }
      first = false;
    }
    if (o.json) out << "]}";
  }
  if (o.json)
    out << "], \"total\": {\"messages\": " << messages << ", \"recipients\": " << recipients << ", \"bytes\": " << bytes
        << "}}\n";
  else if (messages == 0)
    out << "Mail queue is empty\n";
  else
    out << "-- " << messages << (messages == 1 ? " message, " : " messages, ") << recipients
        << (recipients == 1 ? " recipient" : " recipients") << " waiting, " << (bytes + 1023) / 1024 << " KiB\n";
  std::cout << out.str();
  return 0;
}

int cmd_delete(const config& cfg, const std::string& id) {
  auto done = delete_queued_message(cfg.spool, cfg.database, id, who_am_i());
  switch (done.outcome) {
    case deletion::result::no_such_message:
      std::cerr << "sealgate: " << id << ": no such message in the queue\n";
      return 1;
    case deletion::result::being_delivered:
      std::cerr << "sealgate: " << id << ": being delivered right now; try again in a moment\n";
      return 1;
    case deletion::result::deleted:
      break;
  }
  size_t n = done.recipients_deleted;
  std::cout << id << ": deleted (" << n << (n == 1 ? " recipient" : " recipients") << " recorded as deleted)\n";
  return 0;
}

int cmd_flush(const config& cfg, const std::vector<std::string>& ids) {
  std::string command = ids.empty() ? "flush" : "flush " + ids[0];
  std::string reply = control_request(cfg.spool, command);
  if (reply.empty()) {
    std::cerr << "sealgate: the gateway is not running (no answer on " << (cfg.spool / "control").string() << ")\n";
    return 1;
  }
  if (reply != "ok") {
    std::cerr << "sealgate: " << reply << "\n";
    return 1;
  }
  std::cout << (ids.empty() ? "flush requested for every waiting message\n" : "flush requested for " + ids[0] + "\n");
  return 0;
}

int64_t now_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}


// --find: the messages that match, newest first, each with its recipients'
// states; `report --message ID` then tells one's whole story.
int cmd_find(const config& cfg, const options& o) {
  message_search q;
  q.message_id = o.message_id;
  q.sender = o.sender;
  q.recipient = o.recipient;
  auto since = parse_since(o.since);
  auto until = o.until.empty() ? std::optional<int64_t>(0) : parse_since(o.until);
  if (!since || !until) return usage("--since and --until take a date (2026-11-01), a date-time or a duration (24h, 7d)");
  q.since = *since;
  q.until = *until;
  if (!cfg.database.present()) {
    std::cerr << "sealgate: " << cfg.database.describe() << ": no database yet\n";
    return 1;
  }
  auto found = find_messages(cfg.database, q);
  std::ostringstream out;
  if (o.format == "json") {
    out << "{\"messages\": [";
    for (size_t i = 0; i < found.size(); ++i) {
      const auto& m = found[i];
      out << (i ? ", " : "") << "{\"id\": " << json_string(m.queue_id) << ", \"received\": "
          << json_string(time_text(m.received_at)) << ", \"sender\": " << json_string(m.sender)
          << ", \"message_id\": " << json_string(m.message_id) << ", \"recipients\": [";
      for (size_t k = 0; k < m.recipients.size(); ++k)
        out << (k ? ", " : "") << "{\"address\": " << json_string(m.recipients[k].first)
            << ", \"status\": " << json_string(m.recipients[k].second) << "}";
      out << "]}";
    }
    out << "]}\n";
  } else {
    if (found.empty()) out << "no message matches\n";
    for (const auto& m : found) {
      out << m.queue_id << "  " << time_text(m.received_at) << "  <" << m.sender << ">";
      if (!m.message_id.empty()) out << "  " << m.message_id;
      out << "\n";
      for (const auto& [address, status] : m.recipients) out << "    <" << address << "> " << status << "\n";
    }
  }
  std::cout << out.str();
  return 0;
}

int cmd_report(const config& cfg, const options& o, std::string_view version) {
  if (o.find) return cmd_find(cfg, o);
  if (!o.message.empty()) {
    if (o.format != "table" && o.format != "text" && o.format != "json" && o.format != "html")
      return usage("--format must be text, json or html with --message");
    return show_message(cfg, o.message, o.format, true);
  }
  if (o.format != "table" && o.format != "csv" && o.format != "json" && o.format != "html")
    return usage("--format must be table, csv, json or html");
  auto by = report_grouping_from(o.by);
  if (!by) return usage("--by must be method, recipient-domain, sender or day");
  auto since = parse_since(o.since);
  if (!since) return usage("--since must be a date (2026-11-01), a date-time (2026-11-01T08:00:00) or a duration (24h, 7d)");
  if (!cfg.database.present()) {
    std::cerr << "sealgate: " << cfg.database.describe() << ": no database yet\n";
    return 1;
  }
  // The compliance report (html, and the json's "compliance" member) covers
  // everything received from since until now, whatever --by says.
  bool compliance = o.format == "html" || o.format == "json";
  int64_t until = now_seconds() + 1;  // what arrived this second is in
  // By method, the portal's line, and the compliance report's: deposits made
  // in the window and what became of them. None when the portal is not
  // configured; zeros before its store exists.
  std::optional<portal::deposit_counts> deposits;
  std::string portal_problem;  // the counts are shown without it, and the command fails
  if ((*by == report_grouping::method || compliance) && cfg.portal.configured) {
    try {
      auto store = open_portal_store_for_report(cfg);
      deposits = store ? store->counts(*since) : portal::deposit_counts{};
    } catch (const portal::store_error& e) {
      portal_problem = e.what();
    }
  }
  auto portal_failed = [&] {
    if (portal_problem.empty()) return false;
    std::cerr << "sealgate: " << portal_problem << " (the portal's counts are not shown)\n";
    return true;
  };
  std::optional<compliance_summary> summary;
  compliance_heading heading{cfg.tlsrpt.organization, std::string(version), now_seconds()};
  if (compliance) {
    summary = summarize_compliance(cfg.database, *since, until);
    summary->portal_deposits = deposits;
  }
  if (o.format == "html") {
    std::cout << compliance_html(*summary, heading);
    return portal_failed() ? 1 : 0;
  }
  auto groups = count_deliveries(cfg.database, *by, *since);
  int64_t total = 0;
  for (const auto& g : groups) total += g.recipients;
  auto pct = percent_text;
  // The columns in the order every format prints them.
  auto counts = [](const delivery_counts& g) {
    return std::array<std::pair<const char*, int64_t>, 7>{{{"recipients", g.recipients}, {"delivered", g.delivered},
                                                           {"secured", g.secured}, {"queued", g.queued},
                                                           {"deferred", g.deferred}, {"bounced", g.bounced},
                                                           {"deleted", g.deleted}}};
  };
  std::ostringstream out;
  if (o.format == "json") {
    out << "{\"by\": " << json_string(o.by) << ", \"since\": " << json_string(*since ? time_text(*since) : "")
        << ", \"total\": " << total << ", \"groups\": [";
    for (size_t i = 0; i < groups.size(); ++i) {
      const auto& g = groups[i];
      out << (i ? ", " : "") << "{\"key\": " << json_string(g.key);
      for (const auto& [name, n] : counts(g)) out << ", " << json_string(name) << ": " << n;
      out << ", \"share_percent\": " << pct(g.recipients, total)
          << ", \"secured_percent\": " << pct(g.secured, g.recipients) << "}";
    }
    out << "]";
    if (deposits && *by == report_grouping::method)
      out << ", \"portal\": {\"deposits\": " << deposits->deposits << ", \"opened\": " << deposits->opened
          << ", \"opened_percent\": " << pct(deposits->opened, deposits->deposits)
          << ", \"downloads\": " << deposits->downloads << ", \"replies\": " << deposits->replies << "}";
    out << ", \"compliance\": " << compliance_json(*summary, heading) << "}\n";
  } else if (o.format == "csv") {
    out << o.by;
    for (const auto& [name, n] : counts(delivery_counts{})) out << "," << name;
    out << ",share_percent,secured_percent\n";
    for (const auto& g : groups) {
      std::string k = g.key;
      if (k.find_first_of(",\"\n") != std::string::npos) {  // RFC 4180 quoting
        std::string q = "\"";
        for (char c : k) q += c == '"' ? std::string("\"\"") : std::string(1, c);
        k = q + "\"";
      }
      out << k;
      for (const auto& [name, n] : counts(g)) out << "," << n;
      out << "," << pct(g.recipients, total) << "," << pct(g.secured, g.recipients) << "\n";
    }
  } else {
    out << std::left << std::setw(28) << o.by << std::right;
    for (const auto& [name, n] : counts(delivery_counts{})) out << std::setw(11) << name;
    out << std::setw(8) << "share" << std::setw(10) << "secured" << "\n";
    delivery_counts sums;
    for (const auto& g : groups) {
      out << std::left << std::setw(28) << g.key << std::right;
      for (const auto& [name, n] : counts(g)) out << std::setw(11) << n;
      out << std::setw(7) << pct(g.recipients, total) << "%" << std::setw(9) << pct(g.secured, g.recipients) << "%\n";
      sums.recipients += g.recipients;
      sums.delivered += g.delivered;
      sums.secured += g.secured;
      sums.queued += g.queued;
      sums.deferred += g.deferred;
      sums.bounced += g.bounced;
      sums.deleted += g.deleted;
    }
    out << std::left << std::setw(28) << "total" << std::right;
    for (const auto& [name, n] : counts(sums)) out << std::setw(11) << n;
    out << std::setw(7) << (total ? "100.0" : "0.0") << "%" << std::setw(9) << pct(sums.secured, total) << "%\n";
    if (deposits) {
      auto counted = [](int64_t n, const char* one, const char* many) {
        return std::to_string(n) + " " + (n == 1 ? one : many);
      };
      out << "\nportal: " << counted(deposits->deposits, "deposit", "deposits") << ", " << deposits->opened
          << " opened (" << pct(deposits->opened, deposits->deposits) << "%), "
          << counted(deposits->downloads, "download", "downloads") << ", "
          << counted(deposits->replies, "reply", "replies") << "\n";
    }
  }
  std::cout << out.str();
  return portal_failed() ? 1 : 0;
}

}  // namespace

int run_queue_command(const std::vector<std::string>& args) {
  if (args.empty()) return usage("queue needs list, show, flush, delete, export or import");
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (args[0] == "export" || args[0] == "import") return run_queue_move_command(args[0], rest, queue_usage_lines);
  try {
    options o = parse(rest, false);
    auto loaded = load_config_or_report(o.config_file);
    if (!loaded) return exit_failure;
    config& cfg = *loaded;
    const std::string& sub = args[0];
    if (sub == "list") {
      if (!o.positional.empty()) return usage("queue list takes no arguments");
      return cmd_list(cfg, o);
    }
    if (sub == "show") {
      if (o.positional.size() != 1) return usage("queue show takes one ID");
      return show_message(cfg, o.positional[0], o.json ? "json" : "text", false);
    }
    if (sub == "flush") {
      if (o.positional.size() > 1) return usage("queue flush takes at most one ID");
      return cmd_flush(cfg, o.positional);
    }
    if (sub == "delete") {
      if (o.positional.size() != 1) return usage("queue delete takes one ID");
      return cmd_delete(cfg, o.positional[0]);
    }
    return usage("unknown queue command " + sub);
  } catch (const usage_error& e) {
    return usage(e.what);
  } catch (const std::exception& e) {
    std::cerr << "sealgate: " << e.what() << "\n";
    return 1;
  }
}

int run_report_command(const std::vector<std::string>& args, std::string_view version) {
  try {
    options o = parse(args, true);
    if (!o.positional.empty()) return usage("report takes no arguments");
    auto loaded = load_config_or_report(o.config_file);
    if (!loaded) return exit_failure;
    config& cfg = *loaded;
    return cmd_report(cfg, o, version);
  } catch (const usage_error& e) {
    return usage(e.what);
  } catch (const std::exception& e) {
    std::cerr << "sealgate: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace sealgate::gateway
