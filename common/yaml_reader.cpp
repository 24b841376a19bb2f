// See yaml_reader.hpp. Messages are part of the interface: operators and
// tests read them word for word, so both loaders get them from here only.
#include "common/yaml_reader.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdint>

#include "common/yaml_guard.hpp"

namespace sealgate {
namespace {

// Levenshtein distance, ignoring ASCII case (a key typed in capitals is still
// that key to the reader who typed it).
size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      size_t cost = std::tolower(static_cast<unsigned char>(a[i - 1])) == std::tolower(static_cast<unsigned char>(b[j - 1])) ? 0 : 1;
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + cost});
      diag = up;
    }
  }
  return row[b.size()];
}

// The closest valid word, if it is close enough to be a likely typo; a word
// that starts a valid one ("dane" for "dane-or-mta-sts") counts as close.
// The limit grows with the word so that a short word is not "corrected" into
// an unrelated one.
std::string closest(std::string_view word, const std::vector<std::string>& valid) {
  if (word.size() >= 3)
    for (const auto& v : valid)
      if (v.size() > word.size() && edit_distance(word, std::string_view(v).substr(0, word.size())) == 0) return v;
  std::string best;
  size_t best_d = SIZE_MAX;
  for (const auto& v : valid) {
    size_t d = edit_distance(word, v);
    if (d < best_d) best_d = d, best = v;
  }
  size_t limit = word.size() <= 4 ? 1 : word.size() <= 8 ? 2 : 3;
  return best_d <= limit && best_d < best.size() ? best : "";
}

// "; did you mean 'x'?" when word is a likely typo of a valid one, else "".
std::string suggestion(std::string_view word, const std::vector<std::string>& valid) {
  auto c = closest(word, valid);
  return c.empty() ? "" : "; did you mean '" + c + "'?";
}

}  // namespace

std::string word_list(const std::vector<std::string>& words) {
  std::string s;
  for (const auto& w : words) s += (s.empty() ? "" : ", ") + w;
  return s;
}

std::string unknown_message(std::string_view what, std::string_view word, const std::vector<std::string>& valid) {
  return std::string(what) + " '" + std::string(word) + "'" + suggestion(word, valid) +
         (valid.empty() ? " (none are defined)" : " (valid: " + word_list(valid) + ")");
}

yaml_reader::yaml_reader(std::filesystem::path file) : file_(std::move(file)) {
  std::error_code ec;
  base_ = std::filesystem::absolute(file_, ec).parent_path();
}

std::optional<YAML::Node> yaml_reader::parse(std::string_view text) {
  if (auto problem = check_yaml(text)) {
    errors_.push_back(describe(file_, *problem));
    return std::nullopt;
  }
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::ParserException& e) {
    error(e.mark, "", "YAML syntax: " + e.msg);
    return std::nullopt;
  }
  if (root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
  return root;
}

void yaml_reader::error(const YAML::Mark& mark, std::string_view key, std::string_view message) {
  std::string text = key.empty() ? std::string(message) : std::string(key) + ": " + std::string(message);
  errors_.push_back(describe(file_, yaml_problem{mark.line + 1, mark.column + 1, std::move(text)}));
}

std::string yaml_reader::report() const {
  std::string all;
  for (const auto& e : errors_) all += (all.empty() ? "" : "\n") + e;
  return all;
}

std::string yaml_reader::join(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}

bool yaml_reader::check_map(const YAML::Node& node, const std::string& path, const std::vector<std::string>& valid) {
  if (!node.IsMap()) {
    error(node.Mark(), path, "must be a mapping");
    return false;
  }
  for (auto it = node.begin(); it != node.end(); ++it) {
    std::string key = it->first.IsScalar() ? it->first.Scalar() : "?";
    if (std::find(valid.begin(), valid.end(), key) == valid.end())
      error(it->first.Mark(), join(path, key), "unknown key" + suggestion(key, valid) + " (valid: " + word_list(valid) + ")");
  }
  return true;
}

bool yaml_reader::scalar(const YAML::Node& n, const std::string& key, std::string& out) {
  if (!n.IsScalar()) {
    error(n.Mark(), key, "must be a string");
    return false;
  }
  out = n.Scalar();
  return true;
}

bool yaml_reader::nonempty(const YAML::Node& n, const std::string& key, std::string& out) {
  if (!scalar(n, key, out)) return false;
  if (out.empty()) {
    error(n.Mark(), key, "must not be empty");
    return false;
  }
  return true;
}

bool yaml_reader::boolean(const YAML::Node& n, const std::string& key, bool& out) {
  std::string v;
  if (n.IsScalar()) v = n.Scalar();
  if (v == "true") out = true;
  else if (v == "false") out = false;
  else {
    error(n.Mark(), key, "must be true or false");
    return false;
  }
  return true;
}

bool yaml_reader::strings(const YAML::Node& n, const std::string& key, std::vector<std::pair<std::string, YAML::Mark>>& out) {
  if (n.IsScalar()) {
    std::string v;
    if (!nonempty(n, key, v)) return false;
    out.emplace_back(v, n.Mark());
    return true;
  }
  if (!n.IsSequence() || n.size() == 0) {
    error(n.Mark(), key, "must be a string or a non-empty list of strings");
    return false;
  }
  bool ok = true;
  for (size_t i = 0; i < n.size(); ++i) {
    std::string v;
    if (nonempty(n[i], key + "[" + std::to_string(i) + "]", v)) out.emplace_back(v, n[i].Mark());
    else ok = false;
  }
  return ok;
}

bool yaml_reader::size(const YAML::Node& n, const std::string& key, uint64_t min, std::string_view examples,
                       uint64_t& out) {
  auto x = scaled(n, key,
                  {{"", 1}, {"B", 1}, {"KB", 1000}, {"MB", 1000000}, {"GB", 1000000000}, {"KiB", 1024},
                   {"MiB", 1024 * 1024}, {"GiB", 1024ull * 1024 * 1024}},
                  min, uint64_t{1} << 40,
                  "must be a size such as " + std::string(examples) +
                      " (valid units: B, KB, MB, GB, KiB, MiB, GiB)");
  if (!x) return false;
  out = *x;
  return true;
}

std::optional<size_t> yaml_reader::choice(const YAML::Node& n, const std::string& key,
                                          const std::vector<std::string>& names) {
  std::string v;
  if (!scalar(n, key, v)) return std::nullopt;
  if (auto it = std::find(names.begin(), names.end(), v); it != names.end()) return it - names.begin();
  error(n.Mark(), key, unknown_message("unknown value", v, names));
  return std::nullopt;
}

void yaml_reader::string_value(const YAML::Node& parent, std::string_view name, const std::string& path,
                               std::string& out) {
  std::string v;
  if (auto n = parent[std::string(name)]; n && nonempty(n, join(path, name), v)) out = std::move(v);
}

void yaml_reader::path_value(const YAML::Node& parent, std::string_view name, const std::string& path,
                             std::filesystem::path& out) {
  std::string v;
  string_value(parent, name, path, v);
  if (!v.empty()) out = resolve(v);
}

void yaml_reader::bool_value(const YAML::Node& parent, std::string_view name, const std::string& path, bool& out) {
  if (auto n = parent[std::string(name)]) boolean(n, join(path, name), out);
}

void yaml_reader::size_value(const YAML::Node& parent, std::string_view name, const std::string& path, uint64_t& out) {
  if (auto n = parent[std::string(name)]) size(n, join(path, name), 1, "25MiB, 10MB or 1048576", out);
}

void yaml_reader::duration_value(const YAML::Node& parent, std::string_view name, const std::string& path,
                                 std::chrono::seconds& out, unsigned max_days) {
  auto n = parent[std::string(name)];
  if (!n) return;
  if (auto x = scaled(n, join(path, name), {{"", 1}, {"s", 1}, {"m", 60}, {"h", 3600}, {"d", 86400}}, 1,
                      uint64_t{86400} * max_days,
                      "must be a duration such as 30s, 5m, 1h or 2d (at least 1s, at most " +
                          std::to_string(max_days) + " days)"))
    out = std::chrono::seconds(*x);
}

std::optional<uint64_t> yaml_reader::whole_number(const YAML::Node& parent, std::string_view name,
                                                  const std::string& path, uint64_t min, uint64_t max) {
  auto n = parent[std::string(name)];
  if (!n) return std::nullopt;
  return scaled(n, join(path, name), {{"", 1}}, min, max,
                "must be a whole number from " + std::to_string(min) + " to " + std::to_string(max));
}

std::optional<uint64_t> yaml_reader::scaled(const YAML::Node& n, const std::string& key,
                                            std::initializer_list<unit> units, uint64_t min, uint64_t max,
                                            const std::string& message) {
  std::string v;
  if (!scalar(n, key, v)) return std::nullopt;
  uint64_t x = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
  std::string_view suffix(end, v.data() + v.size() - end);
  if (ec == std::errc{} && end != v.data())
    for (const auto& u : units)
      if (suffix == u.suffix && x <= max / u.factor && x * u.factor >= min) return x * u.factor;
  error(n.Mark(), key, message);
  return std::nullopt;
}

std::filesystem::path yaml_reader::resolve(const std::string& p) const {
  std::filesystem::path fp(p);
  if (fp.is_relative()) fp = base_ / fp;
  return fp.lexically_normal();
}

}  // namespace sealgate
