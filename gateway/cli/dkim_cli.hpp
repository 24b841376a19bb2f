// `sealgate dkim ...`: DKIM signing keys. keygen writes a private key (0600,
// never over an existing file) and prints the TXT record to publish; check
// compares what the DNS publishes with the key dkim.keys configures. Exit 0,
// 1 on a difference or a failure, 2 on usage errors.
#pragma once
#include <string>
#include <vector>

namespace sealgate::gateway {

extern const char* const dkim_usage_line;
int run_dkim_command(const std::vector<std::string>& args);

}  // namespace sealgate::gateway
