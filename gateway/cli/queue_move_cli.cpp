// `sealgate queue export` and `queue import`; see queue_move_cli.hpp.
#include "gateway/cli/queue_move_cli.hpp"

#include <algorithm>
#include <chrono>
#include <iostream>
#include <optional>
#include <sstream>

#include "gateway/cli/bootstrap.hpp"
#include "gateway/cli/cli_args.hpp"
#include "gateway/cli/cli_text.hpp"
#include "gateway/daemon/control.hpp"
#include "gateway/record/database.hpp"
#include "gateway/spool/spool.hpp"
#include "gateway/spool/spool_move.hpp"

namespace sealgate::gateway {
namespace {

struct move_options {
  std::optional<config> cfg;  // with --config
  std::filesystem::path spool;
  bool spool_from_config = false;
  std::string out;
  std::vector<std::string> positional;
  bool json = false;
};

// --spool names the spool (a dead node's disk mounted here); else the
// configuration's. Throws cli_usage_error; nullopt when the configuration
// does not load (its errors printed).
std::optional<move_options> parse_move(const std::vector<std::string>& args) {
  auto a = parse_cli(args, 0, {.values = {"--spool", "--out"}, .flags = {"--json"}, .config_required = false});
  move_options o;
  o.out = a.value("--out");
  o.positional = a.positional;
  o.json = a.has("--json");
  if (a.has("--config")) {
    o.cfg = load_config_or_report(a.value("--config"));
    if (!o.cfg) return std::nullopt;
  }
  if (a.has("--spool")) {
    o.spool = a.value("--spool");
  } else if (o.cfg) {
    o.spool = o.cfg->spool;
    o.spool_from_config = true;
  } else {
    throw cli_usage_error("--config FILE or --spool DIR is required");
  }
  return o;
}

// The node the spool belongs to, read from DIR/node-id (never written here:
// a dead node's spool keeps its name), else the configured one, else "unknown".
std::string node_of(const move_options& o) {
  std::string configured = o.spool_from_config ? o.cfg->node_id : "";
  if (std::filesystem::exists(o.spool / "node-id")) return spool_node_id(o.spool, configured);
  return configured.empty() ? "unknown" : configured;
}

std::string json_list(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + json_string(items[i]);
  return out + "]";
}

std::string counted(size_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

int cmd_export(const move_options& o) {
  if (o.out.empty()) throw cli_usage_error("queue export needs --out FILE");
  if (!o.positional.empty()) throw cli_usage_error("queue export takes no arguments");
  // Only a spool nobody delivers from may be moved: a running gateway would
  // go on delivering what the file carries away.
  if (control_listening(o.spool)) {
    std::cerr << "sealgate: a gateway is running on " << o.spool.string() << " (it answers on "
              << (o.spool / "control").string() << "): queue export is for the spool of a node that is down\n";
    return exit_usage;
  }
  auto done = export_spool(o.spool, o.out, node_of(o));
  if (o.json) {
    std::cout << "{\"node\": " << json_string(done.node) << ", \"file\": " << json_string(o.out)
              << ", \"bytes\": " << done.bytes << ", \"messages\": " << done.ids.size()
              << ", \"ids\": " << json_list(done.ids) << ", \"corrupt\": " << json_list(done.corrupt) << "}\n";
  } else {
    std::cout << "exported " << counted(done.ids.size(), "message", "messages") << " of node " << done.node << " to "
              << o.out << " (" << done.bytes << " bytes); they are in " << (o.spool / "exported").string()
              << " now, and this spool will not deliver them\n";
    for (const auto& id : done.corrupt)
      std::cout << id << ": damaged, moved to " << (o.spool / "corrupt").string() << ", not exported\n";
  }
  return exit_ok;
}

// The record of the node that takes the messages over: their rows, unless
// the record is shared and has them already, and one "moved" entry each.
void record_import(const config& cfg, const import_summary& done, const std::string& to_node) {
  database db(cfg.database);
  auto missing = db.unrecorded(done.imported);
  std::vector<spooled_envelope> rows;
  for (const auto& e : done.envelopes)
    if (std::find(missing.begin(), missing.end(), e.queue_id) != missing.end()) rows.push_back(e);
  if (!rows.empty()) db.record_accepted(rows);
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch());
  std::vector<audit::event> events;
  for (const auto& id : done.imported)
    events.push_back(audit::event("moved", now.count(), id).add("from", done.node).add("to", to_node).add("actor", who_am_i()));
  db.record_events(events);
}

int cmd_import(const move_options& o) {
  if (!o.out.empty()) throw cli_usage_error("--out goes with queue export");
  if (o.positional.size() != 1) throw cli_usage_error("queue import takes one FILE");
  auto done = import_spool(o.spool, o.positional[0]);
  std::string problem;
  if (o.cfg && !done.imported.empty()) {
    try {
      record_import(*o.cfg, done, node_of(o));
    } catch (const std::exception& e) {
      problem = std::string("the record was not written: ") + e.what();
    }
  }
  // A running gateway loads its queue at start only: it is asked to take up
  // each new message (`queue flush ID`). One that is down finds them when it starts.
  bool running = false;
  for (const auto& id : done.imported) {
    running = !control_request(o.spool, "flush " + id).empty();
    if (!running) break;
  }
  if (o.json) {
    std::cout << "{\"from\": " << json_string(done.node) << ", \"imported\": " << json_list(done.imported)
              << ", \"refused\": [";
    for (size_t i = 0; i < done.refused.size(); ++i)
      std::cout << (i ? ", " : "") << "{\"id\": " << json_string(done.refused[i].first)
                << ", \"reason\": " << json_string(done.refused[i].second) << "}";
    std::cout << "], \"gateway_running\": " << (running ? "true" : "false") << "}\n";
  } else {
    for (const auto& [id, why] : done.refused) std::cout << id << ": refused: " << why << "\n";
    std::cout << "imported " << counted(done.imported.size(), "message", "messages") << " of node " << done.node
              << " into " << o.spool.string();
    if (!done.refused.empty()) std::cout << ", " << done.refused.size() << " refused";
    if (!done.imported.empty())
      std::cout << (running ? "; the gateway is delivering them" : "; the gateway delivers them when it starts");
    std::cout << "\n";
  }
  if (!problem.empty()) std::cerr << "sealgate: " << problem << "\n";
  return done.refused.empty() && problem.empty() ? exit_ok : exit_failure;
}

}  // namespace

int run_queue_move_command(const std::string& sub, const std::vector<std::string>& args,
                           std::string_view usage_lines) {
  try {
    auto o = parse_move(args);
    if (!o) return exit_failure;
    return sub == "export" ? cmd_export(*o) : cmd_import(*o);
  } catch (const cli_usage_error& e) {
    return usage_exit(e.what(), "usage:\n", usage_lines);
  } catch (const std::exception& e) {
    std::cerr << "sealgate: " << e.what() << "\n";
    return exit_failure;
  }
}

}  // namespace sealgate::gateway
