// A check of YAML text before it is loaded, shared by the configuration and the
// policy loaders: duplicate mapping keys (yaml-cpp keeps the first silently)
// and alias expansion beyond a bound (a "billion laughs" document is a few
// hundred bytes that expand to billions of nodes when walked). Reads events
// only; never builds the tree.
#pragma once
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace sealgate {

struct yaml_problem {
  int line = 0, column = 0;  // 1-based
  std::string message;
};

// Nodes a document may hold once every alias is expanded; far more than any
// real configuration or policy, far fewer than an attack needs.
constexpr size_t yaml_max_expanded_nodes = 100000;

// The first problem, or nothing. Syntax errors are left to the loader, which
// reports them with their own position.
std::optional<yaml_problem> check_yaml(std::string_view text, size_t max_expanded_nodes = yaml_max_expanded_nodes);

// "FILE:LINE:COL: message", as every loader reports a problem.
std::string describe(const std::filesystem::path& file, const yaml_problem& problem);

}  // namespace sealgate
