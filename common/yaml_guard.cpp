// See yaml_guard.hpp. Every node is counted as it would be when walked: an
// alias adds the expanded size of the node it names, so nested aliases are
// counted at their true cost without ever being expanded here.
#include "common/yaml_guard.hpp"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/exceptions.h>
#include <yaml-cpp/parser.h>

#include <map>
#include <sstream>
#include <vector>

namespace sealgate {
namespace {

struct stop_scan {};  // thrown out of the parser once a problem is found

class guard : public YAML::EventHandler {
 public:
  explicit guard(size_t max_nodes) : max_nodes_(max_nodes) {}
  std::optional<yaml_problem> problem;

  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override { leaf(mark, anchor, nullptr); }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor, const std::string& value) override {
    leaf(mark, anchor, &value);
  }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    auto it = sizes_.find(anchor);
    size_t n = it == sizes_.end() ? 1 : it->second;
    key_or_value(mark, nullptr);
    add(mark, n);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    open(mark, anchor, false);
  }
  void OnSequenceEnd() override { close(); }
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor, YAML::EmitterStyle::value) override {
    open(mark, anchor, true);
  }
  void OnMapEnd() override { close(); }

 private:
  struct frame {
    bool is_map;
    YAML::anchor_t anchor;
    size_t start_count;              // total_ when the collection opened
    bool next_is_key = true;         // maps alternate key, value
    std::map<std::string, YAML::Mark> keys;
  };

  void leaf(const YAML::Mark& mark, YAML::anchor_t anchor, const std::string* value) {
    key_or_value(mark, value);
    add(mark, 1);
    if (anchor) sizes_[anchor] = 1;
  }

  // In a map, every other node is a key: a scalar key seen before is refused
  // with both positions. A complex key (a list or map) is not compared.
  void key_or_value(const YAML::Mark& mark, const std::string* scalar) {
    if (stack_.empty() || !stack_.back().is_map) return;
    auto& f = stack_.back();
    bool is_key = f.next_is_key;
    f.next_is_key = !f.next_is_key;
    if (!is_key || !scalar) return;
    auto [it, fresh] = f.keys.emplace(*scalar, mark);
    if (!fresh) {
      fail(mark, "duplicate key '" + *scalar + "' (first at line " + std::to_string(it->second.line + 1) + ", column " +
                     std::to_string(it->second.column + 1) + ")");
    }
  }

  void open(const YAML::Mark& mark, YAML::anchor_t anchor, bool is_map) {
    key_or_value(mark, nullptr);
    add(mark, 1);
    stack_.push_back(frame{is_map, anchor, total_, true, {}});
  }

  void close() {
    if (stack_.empty()) return;
    auto f = std::move(stack_.back());
    stack_.pop_back();
    if (f.anchor) sizes_[f.anchor] = total_ - f.start_count + 1;
  }

  void add(const YAML::Mark& mark, size_t n) {
    total_ += n;
    if (total_ > max_nodes_ || n > max_nodes_)
      fail(mark, "aliases expand to more than " + std::to_string(max_nodes_) + " nodes");
  }

  void fail(const YAML::Mark& mark, std::string message) {
    problem = yaml_problem{mark.line + 1, mark.column + 1, std::move(message)};
    throw stop_scan{};
  }

  size_t max_nodes_;
  size_t total_ = 0;
  std::vector<frame> stack_;
  std::map<YAML::anchor_t, size_t> sizes_;
};

}  // namespace

std::optional<yaml_problem> check_yaml(std::string_view text, size_t max_expanded_nodes) {
  std::istringstream in{std::string(text)};
  guard g(max_expanded_nodes);
  try {
    YAML::Parser parser(in);
    while (parser.HandleNextDocument(g)) {
    }
  } catch (const stop_scan&) {
  } catch (const YAML::Exception&) {
    // A syntax error: the loader reports it with its own position.
  }
  return g.problem;
}

std::string describe(const std::filesystem::path& file, const yaml_problem& problem) {
  return file.string() + ":" + std::to_string(problem.line) + ":" + std::to_string(problem.column) + ": " + problem.message;
}

}  // namespace sealgate
