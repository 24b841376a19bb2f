#include "gateway/cli/bootstrap.hpp"

#include <iostream>

namespace sealgate::gateway {

int usage_exit(std::string_view problem, std::string_view usage_text) {
  std::cerr << "sealgate: " << problem << "\n" << usage_text;
  return exit_usage;
}

int usage_exit(std::string_view problem, std::string_view usage_head, std::string_view usage_text) {
  std::cerr << "sealgate: " << problem << "\n" << usage_head << usage_text;
  return exit_usage;
}

std::optional<config> load_config_or_report(const std::string& file) {
  try {
    return load_config(file);
  } catch (const config_error& e) {
    std::cerr << e.what() << "\n";
    return std::nullopt;
  }
}

}  // namespace sealgate::gateway
