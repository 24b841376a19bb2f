// `sealgate probe --config FILE DOMAIN [--json] [--burst N]`: probes a
// recipient domain as delivery would see it (docs/probe.md). Exit 0 when the
// probe ran, whatever it found; 1 when it could not (temporary DNS failure,
// bad config); 2 on usage errors. Sends no mail.
#pragma once
#include <string>
#include <vector>

namespace sealgate::gateway {

extern const char* const probe_usage_line;
int run_probe_command(const std::vector<std::string>& args);

}  // namespace sealgate::gateway
