// The running gateway (`sealgate run`).
#pragma once
#include <string_view>

#include "gateway/config/config.hpp"

namespace sealgate::gateway {

// Runs the gateway with a loaded configuration until SIGTERM or SIGINT.
// Returns the process's exit code: 0 after a clean stop, 1 when it could not
// start (the reason is logged or printed).
int run_gateway(config cfg, std::string_view version);

}  // namespace sealgate::gateway
