// `sealgate queue list|show|flush|delete` and `sealgate report` (export and
// import are in queue_move_cli.hpp): what is waiting and why, and what
// happened to what was sent. They read the spool and the database; flush
// asks the running gateway over its control socket; delete takes the
// message's lock so it never races a delivery. None of them ever prints
// message content.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace sealgate::gateway {

// args are what follows "queue" / "report". Exit codes: 0 ok, 1 failure, 2 usage.
int run_queue_command(const std::vector<std::string>& args);
// version: this sealgate's, for the compliance report's heading.
int run_report_command(const std::vector<std::string>& args, std::string_view version);

extern const char* const queue_usage_lines;

}  // namespace sealgate::gateway
