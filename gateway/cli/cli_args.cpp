// One parser for the subcommands' options; see cli_args.hpp.
#include "gateway/cli/cli_args.hpp"

#include <algorithm>

namespace sealgate::gateway {

std::string cli_args::value(const std::string& name, const std::string& fallback) const {
  auto range = values.equal_range(name);
  return range.first == range.second ? fallback : std::prev(range.second)->second;
}

std::vector<std::string> cli_args::all(const std::string& name) const {
  std::vector<std::string> out;
  auto range = values.equal_range(name);
  for (auto it = range.first; it != range.second; ++it) out.push_back(it->second);
  return out;
}

bool cli_args::has(const std::string& name) const {
  return values.count(name) > 0 || std::find(flags.begin(), flags.end(), name) != flags.end();
}

cli_args parse_cli(const std::vector<std::string>& args, size_t first, const cli_spec& spec) {
  auto takes_value = [&](const std::string& name) {
    return name == "--config" || std::find(spec.values.begin(), spec.values.end(), name) != spec.values.end();
  };
  cli_args out;
  for (size_t i = first; i < args.size(); ++i) {
    std::string a = args[i] == "-c" ? "--config" : args[i];
    if (a.empty() || a[0] != '-' || a == "-") {
      out.positional.push_back(a);
      continue;
    }
    auto eq = a.find('=');
    std::string name = a.substr(0, eq);
    if (takes_value(name)) {
      if (eq != std::string::npos) {
        out.values.emplace(name, a.substr(eq + 1));
      } else {
        if (i + 1 >= args.size()) throw cli_usage_error(name + " needs a value");
        out.values.emplace(name, args[++i]);
      }
    } else if (eq == std::string::npos && std::find(spec.flags.begin(), spec.flags.end(), a) != spec.flags.end()) {
      out.flags.push_back(a);
    } else {
      throw cli_usage_error("unknown option " + args[i]);
    }
  }
  if (spec.config_required && out.value("--config").empty()) throw cli_usage_error("--config FILE is required");
  return out;
}

}  // namespace sealgate::gateway
