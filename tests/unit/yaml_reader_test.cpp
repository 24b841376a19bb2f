// The YAML reader both loaders share: its messages word for word, the
// "did you mean" guesses it makes and the ones it must not make.
#include <gtest/gtest.h>

#include "common/yaml_reader.hpp"

using sealgate::unknown_message;
using sealgate::yaml_reader;

namespace {

// The reader's errors for text after check_map(root, "", valid).
std::string unknown_keys(const std::string& text, const std::vector<std::string>& valid) {
  yaml_reader r("f.yaml");
  auto root = r.parse(text);
  if (root) r.check_map(*root, "", valid);
  return r.report();
}

}  // namespace

TEST(YamlReader, UnknownKeyNamesTheClosestValidOne) {
  const std::vector<std::string> valid{"spool", "listeners", "timeouts"};
  EXPECT_EQ(unknown_keys("spoool: x\n", valid),
            "f.yaml:1:1: spoool: unknown key; did you mean 'spool'? (valid: spool, listeners, timeouts)");
  // A key that starts a valid one is a likely slip too.
  EXPECT_EQ(unknown_keys("listener: []\n", valid),
            "f.yaml:1:1: listener: unknown key; did you mean 'listeners'? (valid: spool, listeners, timeouts)");
  // Case is not what makes two keys different to the person who typed them.
  EXPECT_EQ(unknown_keys("Spool: x\n", valid),
            "f.yaml:1:1: Spool: unknown key; did you mean 'spool'? (valid: spool, listeners, timeouts)");
}

TEST(YamlReader, NoGuessWhenNothingIsClose) {
  EXPECT_EQ(unknown_keys("colour: blue\n", {"spool", "listeners"}),
            "f.yaml:1:1: colour: unknown key (valid: spool, listeners)");
  // Every letter replaced is not a typo, however short the word.
  EXPECT_EQ(unknown_keys("x: 1\n", {"a", "tls"}), "f.yaml:1:1: x: unknown key (valid: a, tls)");
  // Levenshtein counts a swap of two letters as two edits, too many for a
  // four-letter word.
  EXPECT_EQ(unknown_keys("prot: 1\n", {"port", "tls"}), "f.yaml:1:1: prot: unknown key (valid: port, tls)");
}

TEST(YamlReader, UnknownWordMessage) {
  EXPECT_EQ(unknown_message("unknown method", "plian", {"pgp", "plain"}),
            "unknown method 'plian'; did you mean 'plain'? (valid: pgp, plain)");
  EXPECT_EQ(unknown_message("unknown class", "phi", {}), "unknown class 'phi' (none are defined)");
}

TEST(YamlReader, DocumentProblemsComeFirstAndAlone) {
  yaml_reader r("f.yaml");
  EXPECT_FALSE(r.parse("a: 1\na: 2\n"));
  EXPECT_EQ(r.report(), "f.yaml:2:1: duplicate key 'a' (first at line 1, column 1)");
  yaml_reader syntax("f.yaml");
  EXPECT_FALSE(syntax.parse("a: [\n"));
  EXPECT_EQ(syntax.report(), "f.yaml:2:1: YAML syntax: end of sequence flow not found");
  // An empty file is an empty mapping: every key keeps its default.
  yaml_reader empty("f.yaml");
  auto root = empty.parse("");
  ASSERT_TRUE(root);
  EXPECT_TRUE(root->IsMap());
  EXPECT_TRUE(empty.errors().empty());
}

TEST(YamlReader, TypedValues) {
  yaml_reader r("f.yaml");
  auto root = *r.parse("n: 70000\nd: 5m\ns: 2MiB\nb: yes\ne: startls\nlist: [a, '']\n");
  int n = 7;
  r.integer_value(root, "n", "", n, 1, 65535);
  EXPECT_EQ(n, 7);  // refused: the default stays
  std::chrono::seconds d{0};
  r.duration_value(root, "d", "", d);
  EXPECT_EQ(d, std::chrono::minutes(5));
  uint64_t s = 0;
  r.size_value(root, "s", "", s);
  EXPECT_EQ(s, 2u * 1024 * 1024);
  bool b = false;
  r.bool_value(root, "b", "", b);
  enum class tls { none, starttls } e = tls::none;
  r.enum_value(root, "e", "", e, {{"none", tls::none}, {"starttls", tls::starttls}});
  std::vector<std::pair<std::string, YAML::Mark>> items;
  EXPECT_FALSE(r.strings(root["list"], "list", items));
  EXPECT_EQ(r.report(),
            "f.yaml:1:4: n: must be a whole number from 1 to 65535\n"
            "f.yaml:4:4: b: must be true or false\n"
            "f.yaml:5:4: e: unknown value 'startls'; did you mean 'starttls'? (valid: none, starttls)\n"
            "f.yaml:6:11: list[1]: must not be empty");
}
