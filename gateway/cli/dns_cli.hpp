// `sealgate dns ...`: DNS lookups by hand through the gateway's own resolver,
// with the gateway's dns: settings. Exit 0 when the lookup ran (found or
// proven absent), 1 on a temporary failure or a bad config, 2 on usage errors.
#pragma once
#include <string>
#include <vector>

namespace sealgate::gateway {

extern const char* const dns_usage_line;
int run_dns_command(const std::vector<std::string>& args);

}  // namespace sealgate::gateway
