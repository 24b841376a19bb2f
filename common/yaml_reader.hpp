// The one reader of the YAML files an operator writes (the configuration and
// the policy): the text is checked before it is loaded (common/yaml_guard),
// then typed values are read and every problem is collected as
// "FILE:LINE:COL: key: message", with a "did you mean" when a word is close
// to a valid one, so that both files answer a mistake in the same words.
// It never throws for a bad file: the loader decides how to refuse it.
#pragma once
#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sealgate {

// "a, b, c": how every message lists the valid words.
std::string word_list(const std::vector<std::string>& words);

// "WHAT 'word'; did you mean 'x'? (valid: a, b, x)": the suggestion only when
// one valid word is a likely typo of word; "(none are defined)" when valid is empty.
std::string unknown_message(std::string_view what, std::string_view word, const std::vector<std::string>& valid);

class yaml_reader {
 public:
  // Errors name file as given; relative paths in it resolve against its directory.
  explicit yaml_reader(std::filesystem::path file);

  // The document: nullopt after recording why not (a duplicate key, an alias
  // bomb, a syntax error). An empty document is an empty mapping, so that
  // every key takes its default.
  std::optional<YAML::Node> parse(std::string_view text);

  // Records "FILE:LINE:COL: key: message" ("FILE:LINE:COL: message" without a key).
  void error(const YAML::Mark& mark, std::string_view key, std::string_view message);
  const std::vector<std::string>& errors() const { return errors_; }
  // Every error, one line each, in the order found.
  std::string report() const;

  // "path.key", or "key" at the top.
  static std::string join(const std::string& path, std::string_view key);

  // Reports every key of node not in valid (with a suggestion for a likely
  // typo); false, after reporting it, when node is not a mapping.
  bool check_map(const YAML::Node& node, const std::string& path, const std::vector<std::string>& valid);

  // Readers of one node, named key in errors. Each returns false after
  // recording the problem, and leaves out alone then, but for nonempty():
  // out is the scalar, empty or not, so that later messages quote what was
  // written ("rule '' can never match").
  bool scalar(const YAML::Node& n, const std::string& key, std::string& out);
  bool nonempty(const YAML::Node& n, const std::string& key, std::string& out);
  // true or false, nothing else (YAML 1.1's yes/no/on/off are refused as ambiguous).
  bool boolean(const YAML::Node& n, const std::string& key, bool& out);
  // A string or a non-empty list of strings, each non-empty, with its position.
  bool strings(const YAML::Node& n, const std::string& key, std::vector<std::pair<std::string, YAML::Mark>>& out);
  // Bytes: a whole number, or one with a unit (B, KB, MB, GB, KiB, MiB, GiB),
  // from min to 2^40; examples go into the message ("25MiB, 10MB or 1048576").
  bool size(const YAML::Node& n, const std::string& key, uint64_t min, std::string_view examples, uint64_t& out);
  // One of the names in table; an unknown one is reported with unknown_message.
  template <typename E>
  bool one_of(const YAML::Node& n, const std::string& key, std::initializer_list<std::pair<std::string_view, E>> table,
              E& out) {
    std::vector<std::string> names;
    for (const auto& entry : table) names.emplace_back(entry.first);
    auto index = choice(n, key, names);
    if (!index) return false;
    out = table.begin()[*index].second;
    return true;
  }

  // Readers of an optional key of a mapping: nothing happens when parent has
  // no name; otherwise the value is read as above, named path.name in errors,
  // and out is left alone when it is refused (it keeps its default).
  void string_value(const YAML::Node& parent, std::string_view name, const std::string& path, std::string& out);
  void path_value(const YAML::Node& parent, std::string_view name, const std::string& path, std::filesystem::path& out);
  void bool_value(const YAML::Node& parent, std::string_view name, const std::string& path, bool& out);
  // 25MiB, 10MB, 512KiB, 1048576; at least one byte.
  void size_value(const YAML::Node& parent, std::string_view name, const std::string& path, uint64_t& out);
  // 300, 30s, 5m, 1h, 2d; from one second to max_days days.
  void duration_value(const YAML::Node& parent, std::string_view name, const std::string& path,
                      std::chrono::seconds& out, unsigned max_days = 7);
  template <typename Int>
  void integer_value(const YAML::Node& parent, std::string_view name, const std::string& path, Int& out, uint64_t min,
                     uint64_t max) {
    if (auto x = whole_number(parent, name, path, min, max)) out = static_cast<Int>(*x);
  }
  template <typename E>
  void enum_value(const YAML::Node& parent, std::string_view name, const std::string& path, E& out,
                  std::initializer_list<std::pair<std::string_view, E>> table) {
    if (auto n = parent[std::string(name)]) one_of(n, join(path, name), table, out);
  }

  // p, relative to the directory of the file when it is relative.
  std::filesystem::path resolve(const std::string& p) const;

 private:
  struct unit {
    std::string_view suffix;
    uint64_t factor;
  };
  // A whole number with one of units' suffixes, scaled, within [min, max];
  // message is the error otherwise.
  std::optional<uint64_t> scaled(const YAML::Node& n, const std::string& key, std::initializer_list<unit> units,
                                 uint64_t min, uint64_t max, const std::string& message);
  std::optional<uint64_t> whole_number(const YAML::Node& parent, std::string_view name, const std::string& path,
                                       uint64_t min, uint64_t max);
  // The index of n's value in names.
  std::optional<size_t> choice(const YAML::Node& n, const std::string& key, const std::vector<std::string>& names);

  std::filesystem::path file_, base_;
  std::vector<std::string> errors_;
};

}  // namespace sealgate
