// What every verb of the command line shares, written once: its exit codes
// (Postfix's tools: 0 success, 1 failure, 2 usage), how a usage error is told,
// and how the configuration named by --config is loaded or its errors shown.
#pragma once
#include <optional>
#include <string>
#include <string_view>

#include "gateway/config/config.hpp"

namespace sealgate::gateway {

inline constexpr int exit_ok = 0;
inline constexpr int exit_failure = 1;
inline constexpr int exit_usage = 2;

// "sealgate: PROBLEM", then the verb's usage text, on stderr; returns exit_usage.
int usage_exit(std::string_view problem, std::string_view usage_text);
// The same with the usage text in two parts ("usage: sealgate COMMAND ...\n", the verb's lines).
int usage_exit(std::string_view problem, std::string_view usage_head, std::string_view usage_text);

// The configuration in file; nullopt after printing its errors (one
// "FILE:LINE:COL: key: message" line each) on stderr: the verb exits with
// exit_failure, and nothing has started.
std::optional<config> load_config_or_report(const std::string& file);

}  // namespace sealgate::gateway
