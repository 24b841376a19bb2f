// `sealgate keys ...`: key discovery and encryption by hand, with the
// gateway's crypto: and dns: settings. lookup shows what every source found
// and why a key is or is not usable; encrypt turns a message on stdin into
// what delivery would send. Exit 0 success, 1 failure or temporary failure, 2 usage.
#pragma once
#include <string>
#include <vector>

namespace sealgate::gateway {

extern const char* const keys_usage_line;
int run_keys_command(const std::vector<std::string>& args);

}  // namespace sealgate::gateway
