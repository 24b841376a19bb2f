// `sealgate tlsrpt show --config FILE [--day YYYY-MM-DD] [--domain D] [--json]`:
// the SMTP TLS reports (RFC 8460) of one UTC day (default: yesterday) from the
// sessions the record counted, one per recipient domain, as they would be
// sent. Text: a summary line per policy and a line per failure; --json: the
// reports themselves, as a JSON array. Exit 0, 1 on a failure, 2 on usage.
#pragma once
#include <string>
#include <vector>

namespace sealgate::gateway {

extern const char* const tlsrpt_usage_line;
int run_tlsrpt_command(const std::vector<std::string>& args);

}  // namespace sealgate::gateway
