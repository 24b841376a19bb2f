// `sealgate audit verify|checkpoint|purge`; see audit_cli.hpp.
#include "gateway/cli/audit_cli.hpp"

#include <ctime>
#include <fstream>
#include <iostream>
#include <sstream>

#include "gateway/cli/bootstrap.hpp"
#include "gateway/cli/cli_args.hpp"
#include "gateway/cli/cli_text.hpp"
#include "gateway/daemon/audit_task.hpp"
#include "gateway/record/audit_log.hpp"
#include "gateway/record/database.hpp"

namespace sealgate::gateway {

const char* const audit_usage_line =
    "  audit verify --config FILE [--since T] [--public-key PEM] [--witness FILE] [--json]\n"
    "                               check the record's hash chain and signed checkpoints; exit 1 names what\n"
    "                               was altered, inserted or deleted\n"
    "  audit checkpoint --config FILE  sign the chain's head now (the gateway does so hourly and when it stops)\n"
    "  audit purge --config FILE [--before T]  remove records older than records.retention (or T), keeping\n"
    "                               the rest verifiable\n";

namespace {

int usage(const std::string& problem) { return usage_exit(problem, "usage: sealgate COMMAND ...\n", audit_usage_line); }

int64_t unix_now() { return static_cast<int64_t>(std::time(nullptr)); }

int verify(const cli_args& o) {
  auto cfg = load_config_or_report(o.value("--config"));
  if (!cfg) return exit_failure;
  audit::verify_options opts;
  if (o.has("--since")) {
    auto t = parse_since(o.value("--since"));
    if (!t) return usage("--since takes a date (2026-11-01), a date-time (2026-11-01T08:00:00) or a duration (24h, 7d)");
    opts.since = *t;
  }
  try {
    // The auditor's own copy of the public key is the one to trust; the
    // configured file otherwise (the public half beside the signing key).
    std::filesystem::path key_file = o.value("--public-key", cfg->audit.public_key.string());
    auto key = audit::ed25519_key::load(key_file);
    for (const auto& file : o.all("--witness")) {
      std::ifstream in(file);
      if (!in) {
        std::cerr << "sealgate: audit verify: cannot read the witness file " << file << "\n";
        return exit_failure;
      }
      std::string line;
      size_t n = 0;
      while (std::getline(in, line)) {
        ++n;
        if (line.empty()) continue;
        auto c = audit::parse_witness_line(line);
        if (!c) {
          std::cerr << "sealgate: audit verify: " << file << ":" << n << ": not a checkpoint line\n";
          return exit_failure;
        }
        opts.witness.push_back(std::move(*c));
      }
    }
    auto r = audit::verify_chain(cfg->database, key, opts);
    if (o.has("--json")) {
      std::ostringstream out;
      out << "{\"intact\": " << (r.intact() ? "true" : "false") << ", \"entries\": " << r.entries
          << ", \"first_seq\": " << r.first_seq << ", \"last_seq\": " << r.last_seq
          << ", \"checkpoints\": " << r.checkpoints << ", \"witnessed\": " << r.witnessed
          << ", \"unsigned_entries\": " << r.unsigned_entries << ", \"purged_up_to\": " << r.purged_up_to
          << ", \"key_id\": " << json_string(key.key_id());
      if (r.last_signed)
        out << ", \"last_checkpoint\": {\"seq\": " << r.last_signed->seq << ", \"at\": " << json_string(time_text(r.last_signed->at))
            << ", \"head\": " << json_string(r.last_signed->head) << "}";
      out << ", \"problems\": [";
      for (size_t i = 0; i < r.problems.size(); ++i)
        out << (i ? ", " : "") << "{\"seq\": " << r.problems[i].seq << ", \"what\": " << json_string(r.problems[i].what) << "}";
      out << "]}\n";
      std::cout << out.str();
    } else {
      for (const auto& p : r.problems) std::cout << "entry " << p.seq << ": " << p.what << "\n";
      std::cout << (r.intact() ? "intact: " : "NOT INTACT: ") << r.entries << " entries";
      if (r.entries) std::cout << " (" << r.first_seq << " to " << r.last_seq << ")";
      std::cout << ", " << r.checkpoints << " signed checkpoints verified";
      if (r.last_signed) std::cout << ", the newest of " << time_text(r.last_signed->at) << " at entry " << r.last_signed->seq;
      if (r.unsigned_entries) std::cout << "; " << r.unsigned_entries << " entries after it chained but not yet signed";
      if (r.purged_up_to) std::cout << "; entries up to " << r.purged_up_to << " purged (retention)";
      if (!opts.witness.empty()) std::cout << "; " << r.witnessed << " of " << opts.witness.size() << " witness lines matched";
      std::cout << "\n";
    }
    return r.intact() ? exit_ok : exit_failure;
  } catch (const std::exception& e) {
    std::cerr << "sealgate: audit verify: " << e.what() << "\n";
    return exit_failure;
  }
}

int checkpoint(const cli_args& o) {
  auto cfg = load_config_or_report(o.value("--config"));
  if (!cfg) return exit_failure;
  try {
    auto key = audit::ed25519_key::load_or_create(cfg->audit.signing_key, cfg->audit.public_key);
    database db(cfg->database);
    auto c = db.make_checkpoint(key, unix_now());
    if (!c) {
      std::cout << "the chain's head is signed already\n";
      return exit_ok;
    }
    witness_checkpoint(cfg->audit, *c);
    std::cout << "checkpoint signed at entry " << c->seq << "\n" << audit::witness_line(*c) << "\n";
    return exit_ok;
  } catch (const std::exception& e) {
    std::cerr << "sealgate: audit checkpoint: " << e.what() << "\n";
    return exit_failure;
  }
}

int purge(const cli_args& o) {
  auto cfg = load_config_or_report(o.value("--config"));
  if (!cfg) return exit_failure;
  int64_t now = unix_now();
  int64_t cutoff = now - cfg->audit.retention.count();
  if (o.has("--before")) {
    auto t = parse_since(o.value("--before"));
    if (!t) return usage("--before takes a date (2026-11-01), a date-time or a duration back from now (2190d)");
    cutoff = *t;
  }
  try {
    auto key = audit::ed25519_key::load_or_create(cfg->audit.signing_key, cfg->audit.public_key);
    database db(cfg->database);
    auto r = db.purge(cutoff, key, now, who_am_i());
    std::cout << "purged " << r.messages << " messages and " << r.entries << " chain entries from before "
              << time_text(cutoff);
    if (r.entries) std::cout << "; the chain now starts after entry " << r.up_to << " (a signed checkpoint anchors it)";
    std::cout << "\n";
    return exit_ok;
  } catch (const std::exception& e) {
    std::cerr << "sealgate: audit purge: " << e.what() << "\n";
    return exit_failure;
  }
}

}  // namespace

int run_audit_command(const std::vector<std::string>& args) {
  if (args.empty()) return usage("audit: expected verify, checkpoint or purge");
  try {
    if (args[0] == "verify")
      return verify(parse_cli(args, 1, {.values = {"--since", "--public-key", "--witness"}, .flags = {"--json"}}));
    if (args[0] == "checkpoint") return checkpoint(parse_cli(args, 1, {.values = {}, .flags = {}}));
    if (args[0] == "purge") return purge(parse_cli(args, 1, {.values = {"--before"}, .flags = {}}));
  } catch (const cli_usage_error& e) {
    return usage(e.what());
  }
  return usage("audit: unknown command " + args[0]);
}

}  // namespace sealgate::gateway
