// `sealgate queue export` and `queue import`: a node that does not come back
// keeps its spool; export takes its messages out (only while no gateway runs
// on it) and import gives them to another node, each delivered once
// (gateway/spool/spool_move.hpp). Never prints message content.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace sealgate::gateway {

// sub: "export" or "import"; args: what follows it. Exit codes: 0 ok, 1
// failure (a message refused, a file that does not verify), 2 usage (and
// export while a gateway runs on the spool).
int run_queue_move_command(const std::string& sub, const std::vector<std::string>& args,
                           std::string_view usage_lines);

}  // namespace sealgate::gateway
