// `sealgate portal run|list|retract`: the HTTPS process recipients open, and
// what operators do to deposits. list prints metadata only (the store holds
// nothing else it could print).
#pragma once
#include <string>
#include <vector>

namespace sealgate::gateway {

// args are what follows "portal". Exit codes: 0 ok, 1 failure, 2 usage.
int run_portal_command(const std::vector<std::string>& args);

}  // namespace sealgate::gateway
