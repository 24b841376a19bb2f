// Command-line options of the subcommands, one parser for all of them:
// "--name VALUE" and "--name=VALUE" for options that take a value, bare flags,
// "-c" for "--config", and positional arguments. An option not in the spec,
// or one missing its value, is a usage error (exit status 2 by the caller).
#pragma once
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace sealgate::gateway {

struct cli_usage_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct cli_spec {
  std::vector<std::string> values;  // options that take a value ("--config" is always one)
  std::vector<std::string> flags;   // options that do not ("--json")
  bool config_required = true;      // "--config FILE is required" otherwise
};

struct cli_args {
  std::multimap<std::string, std::string> values;  // in the order given; an option may repeat
  std::vector<std::string> flags;
  std::vector<std::string> positional;

  // The last value given for name, or fallback.
  std::string value(const std::string& name, const std::string& fallback = {}) const;
  // Every value given for name, in order (for options that may repeat).
  std::vector<std::string> all(const std::string& name) const;
  bool has(const std::string& name) const;  // a flag given, or an option given a value
};

// Parses args[first...]. Throws cli_usage_error.
cli_args parse_cli(const std::vector<std::string>& args, size_t first, const cli_spec& spec);

}  // namespace sealgate::gateway
