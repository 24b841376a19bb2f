// The `sealgate policy` commands (check, explain). They only read files and
// print (explain may probe, as the gateway would); they never send mail.
#pragma once
#include <string>
#include <vector>

namespace sealgate::gateway {

// args are what follows "policy" on the command line. Exit codes: 0 ok,
// 1 failure (policy errors, unreadable files), 2 usage.
int run_policy_command(const std::vector<std::string>& args);

}  // namespace sealgate::gateway
