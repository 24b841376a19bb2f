// Every bad policy is refused with its exact FILE:LINE:COL message, and the
// shipped conf/policy.yaml loads.
#include <gtest/gtest.h>

#include "policy/policy.hpp"
#include "policy_test_util.hpp"

using namespace sealgate::policy;
using policy_test::temp_policy;

namespace {
const std::string default_rule = "  - name: default\n    methods: [tls, plain]\n";
}

TEST(PolicyLoad, ShippedPolicyLoads) {
  auto p = load_policy(std::filesystem::path(SEALGATE_SOURCE_DIR) / "conf/policy.yaml");
  ASSERT_EQ(p.rules.size(), 4u);
  EXPECT_EQ(p.rules.back().name, "default");
  EXPECT_TRUE(p.rules.back().match.unconditional());
  ASSERT_EQ(p.classes.size(), 4u);
  EXPECT_EQ(p.classes[0].name, "phi");
  EXPECT_EQ(p.sha256.size(), 64u);
  // The promise the shipped policy makes: nothing sensitive in clear text.
  for (const auto& r : p.rules)
    for (const auto& c : r.match.classes) {
      if (c == "phi" || c == "confidential") {
        EXPECT_EQ(std::find(r.methods.begin(), r.methods.end(), method::plain), r.methods.end()) << r.name;
      }
    }
}

TEST(PolicyLoad, ModelIsFilledIn) {
  temp_policy t;
  auto p = t.load(
      "classes:\n"
      "  - name: phi\n"
      "    when: {any: [{header: {name: X-Sensitivity, equals: phi}}, {dlp: ssn}]}\n"
      "rules:\n"
      "  - name: sensitive\n"
      "    match: {classes: phi, domains: ['*.example', example.org]}\n"
      "    methods: [pgp, tls, hold]\n"
      "    tls: {min_version: '1.3', verify: dane-or-mta-sts}\n"
      "    on_failure: bounce\n"
      "    strip_subject_tag: true\n" +
      default_rule);
  ASSERT_EQ(p.rules.size(), 2u);
  const auto& r = p.rules[0];
  EXPECT_EQ(r.line, 5);
  EXPECT_EQ(r.match.classes, std::vector<std::string>{"phi"});
  EXPECT_EQ(r.match.domains, (std::vector<std::string>{"*.example", "example.org"}));
  EXPECT_EQ(r.methods, (std::vector<method>{method::pgp, method::tls, method::hold}));
  EXPECT_EQ(r.tls.min_version, sealgate::policy::tls_version::v1_3);
  EXPECT_EQ(r.tls.verify, tls_verify::dane_or_mta_sts);
  EXPECT_EQ(r.on_failure, on_failure::bounce);
  EXPECT_TRUE(r.strip_subject_tag);
  EXPECT_EQ(p.rules[1].tls.min_version, sealgate::policy::tls_version::v1_2);
  EXPECT_EQ(p.rules[1].tls.verify, tls_verify::none);
  EXPECT_EQ(p.rules[1].on_failure, on_failure::next);
  ASSERT_EQ(p.classes[0].when.type, condition::kind::any);
  EXPECT_EQ(p.classes[0].when.children.size(), 2u);
}

TEST(PolicyLoad, SameBytesSameHash) {
  temp_policy a, b;
  auto pa = a.load("rules:\n" + default_rule);
  auto pb = b.load("rules:\n" + default_rule);
  auto pc = b.load("rules:\n" + default_rule + "# a comment changes the hash\n");
  EXPECT_EQ(pa.sha256, pb.sha256);
  EXPECT_NE(pa.sha256, pc.sha256);
}

TEST(PolicyLoad, UnknownKeySuggestsTheClosest) {
  temp_policy t;
  EXPECT_EQ(t.error_of("rules:\n  - name: d\n    metods: [tls]\n"),
            "policy.yaml:3:5: rules[0].metods: unknown key; did you mean 'methods'? (valid: name, description, match, "
            "methods, tls, on_failure, reject_text, strip_subject_tag, portal)\n"
            "policy.yaml:2:5: rules[0].methods: is required");
  EXPECT_EQ(t.error_of("rulez: []\n"),
            "policy.yaml:1:1: rulez: unknown key; did you mean 'rules'? (valid: classes, rules)\n"
            "policy.yaml:1:1: rules: must be a non-empty list of rules, the last one a default without match");
  EXPECT_EQ(t.error_of("rules:\n  - name: x\n    match: {clases: [phi]}\n    methods: [tls]\n" + default_rule),
            "policy.yaml:3:13: rules[0].match.clases: unknown key; did you mean 'classes'? (valid: recipients, domains, "
            "senders, listeners, classes)");
  EXPECT_EQ(t.error_of("classes:\n  - name: c\n    when: {hedaer: {name: X}}\nrules:\n" + default_rule),
            "policy.yaml:3:12: classes[0].when.hedaer: unknown key; did you mean 'header'? (valid: any, all, not, header, "
            "subject_tag, sender, recipient, auth_user, listener, body, attachment, dlp, size_over, size_under)");
  // Nothing close: no guess.
  EXPECT_EQ(t.error_of("rules:\n  - name: d\n    methods: [tls]\n    colour: blue\n"),
            "policy.yaml:4:5: rules[0].colour: unknown key (valid: name, description, match, methods, tls, on_failure, "
            "reject_text, strip_subject_tag, portal)");
}

TEST(PolicyLoad, UnknownMethod) {
  temp_policy t;
  EXPECT_EQ(t.error_of("rules:\n  - name: d\n    methods: [pgpp, tls]\n"),
            "policy.yaml:3:15: rules[0].methods[0]: unknown method 'pgpp'; did you mean 'pgp'? (valid: pgp, smime, tls, "
            "portal, plain, reject, hold)");
  // defer is an outcome, not something a rule may ask for.
  EXPECT_EQ(t.error_of("rules:\n  - name: d\n    methods: [defer]\n"),
            "policy.yaml:3:15: rules[0].methods[0]: unknown method 'defer' (valid: pgp, smime, tls, portal, plain, "
            "reject, hold)");
}

TEST(PolicyLoad, WrongTypes) {
  temp_policy t;
  EXPECT_EQ(t.error_of("rules:\n  - name: d\n    methods: tls\n"),
            "policy.yaml:3:14: rules[0].methods: must be a non-empty list of methods (valid: pgp, smime, tls, portal, "
            "plain, reject, hold)");
  EXPECT_EQ(t.error_of("rules: {default: [tls]}\n"),
            "policy.yaml:1:8: rules: must be a non-empty list of rules, the last one a default without match");
  EXPECT_EQ(t.error_of("rules:\n  - name: d\n    methods: [tls]\n    strip_subject_tag: yes\n"),
            "policy.yaml:4:24: rules[0].strip_subject_tag: must be true or false");
  EXPECT_EQ(t.error_of("rules:\n  - name: d\n    methods: [tls]\n    tls: 1.2\n"),
            "policy.yaml:4:10: rules[0].tls: must be a mapping");
  EXPECT_EQ(t.error_of("classes:\n  - name: c\n    when: {any: {dlp: ssn}}\nrules:\n" + default_rule),
            "policy.yaml:3:17: classes[0].when.any: must be a non-empty list of conditions");
  EXPECT_EQ(t.error_of("classes:\n  - name: c\n    when: {sender: [[a]]}\nrules:\n" + default_rule),
            "policy.yaml:3:21: classes[0].when.sender[0]: must be a string");
  EXPECT_EQ(t.error_of("classes:\n  - name: c\n    when: {size_over: 10 parsecs}\nrules:\n" + default_rule),
            "policy.yaml:3:23: classes[0].when.size_over: must be a size such as 10MiB, 5MB or 1048576 (valid units: B, "
            "KB, MB, GB, KiB, MiB, GiB)");
}

TEST(PolicyLoad, BadValues) {
  temp_policy t;
  EXPECT_EQ(t.error_of("rules:\n  - name: d\n    methods: [tls]\n    tls: {min_version: 1.1, verify: dane}\n"),
            "policy.yaml:4:24: rules[0].tls.min_version: unknown value '1.1' (valid: 1.2, 1.3)\n"
            "policy.yaml:4:37: rules[0].tls.verify: unknown value 'dane'; did you mean 'dane-or-mta-sts'? (valid: none, "
            "ca, dane-or-mta-sts)");
  EXPECT_EQ(t.error_of("rules:\n  - name: d\n    methods: [tls]\n    on_failure: retry\n"),
            "policy.yaml:4:17: rules[0].on_failure: unknown value 'retry' (valid: next, defer, bounce)");
  EXPECT_EQ(t.error_of("rules:\n  - name: d\n    methods: [tls]\n    on_failure: bouce\n"),
            "policy.yaml:4:17: rules[0].on_failure: unknown value 'bouce'; did you mean 'bounce'? (valid: next, defer, "
            "bounce)");
  EXPECT_EQ(t.error_of("rules:\n  - name: d\n    methods: [tls]\n    tls: {verify: CA}\n"),
            "policy.yaml:4:19: rules[0].tls.verify: unknown value 'CA'; did you mean 'ca'? (valid: none, ca, "
            "dane-or-mta-sts)");
  EXPECT_EQ(t.error_of("classes:\n  - name: c\n    when: {dlp: [ssn, ccn]}\nrules:\n" + default_rule),
            "policy.yaml:3:23: classes[0].when.dlp[1]: unknown pattern 'ccn' (valid: ssn, mrn, dob, card)");
  EXPECT_EQ(t.error_of("classes:\n  - name: c\n    when: {header: X, subject_tag: x}\nrules:\n" + default_rule),
            "policy.yaml:3:11: classes[0].when: a condition has exactly one test; combine several with all: or any:");
  EXPECT_EQ(t.error_of("classes:\n  - name: c\n    when: {header: {equals: x}}\nrules:\n" + default_rule),
            "policy.yaml:3:20: classes[0].when.header.name: is required");
}

TEST(PolicyLoad, BadRegexCarriesTheEnginesMessage) {
  temp_policy t;
  EXPECT_EQ(t.error_of("classes:\n  - name: c\n    when: {body: \"(unclosed\"}\nrules:\n" + default_rule),
            "policy.yaml:3:18: classes[0].when.body: bad regex '(unclosed': missing ): (unclosed");
  EXPECT_EQ(t.error_of("classes:\n  - name: c\n    when: {header: {name: X, matches: 'a[b'}}\nrules:\n" + default_rule),
            "policy.yaml:3:39: classes[0].when.header.matches: bad regex 'a[b': missing ]: [b");
  // Backreferences need backtracking: RE2 refuses them rather than risk it.
  EXPECT_EQ(t.error_of("classes:\n  - name: c\n    when: {body: '(a)\\1'}\nrules:\n" + default_rule),
            "policy.yaml:3:18: classes[0].when.body: bad regex '(a)\\1': invalid escape sequence: \\1");
}

TEST(PolicyLoad, RuleAfterAnUnconditionalOneCanNeverMatch) {
  temp_policy t;
  EXPECT_EQ(t.error_of("rules:\n  - name: all\n    methods: [tls]\n  - name: d\n    methods: [plain]\n"),
            "policy.yaml:4:5: rules[1]: rule 'd' can never match: rule 'all' (line 2) before it has no match and takes "
            "every recipient");
}

TEST(PolicyLoad, MissingDefault) {
  temp_policy t;
  EXPECT_EQ(t.error_of("rules:\n  - name: x\n    match: {domains: '*.org'}\n    methods: [tls]\n"),
            "policy.yaml:2:5: rules: no default rule: the last rule 'x' has a match; end with a rule without match so "
            "every recipient gets a decision");
  EXPECT_EQ(t.error_of(""), "policy.yaml:1:1: rules: must be a non-empty list of rules, the last one a default without match");
}

TEST(PolicyLoad, MethodsThatCanNeverBeChosen) {
  temp_policy t;
  EXPECT_EQ(t.error_of("rules:\n  - name: d\n    methods: [reject, tls]\n    reject_text: no\n"),
            "policy.yaml:3:23: rules[0].methods[1]: 'tls' can never be chosen: it comes after 'reject', which always applies");
  EXPECT_EQ(t.error_of("rules:\n  - name: d\n    methods: [tls, tls]\n"),
            "policy.yaml:3:20: rules[0].methods[1]: 'tls' is listed twice");
  EXPECT_EQ(t.error_of("rules:\n  - name: d\n    methods: [reject]\n"),
            "policy.yaml:2:5: rules[0].reject_text: is needed when methods lists reject (the text the sender's bounce carries)");
}

TEST(PolicyLoad, UnknownAndDuplicateNames) {
  temp_policy t;
  EXPECT_EQ(t.error_of("classes:\n  - name: phi\n    when: {dlp: ssn}\nrules:\n  - name: x\n    match: {classes: [ph]}\n"
                       "    methods: [tls]\n" + default_rule),
            "policy.yaml:6:23: rules[0].match.classes[0]: unknown class 'ph'; did you mean 'phi'? (valid: phi)");
  EXPECT_EQ(t.error_of("rules:\n  - name: x\n    match: {classes: [phi]}\n    methods: [tls]\n" + default_rule),
            "policy.yaml:3:23: rules[0].match.classes[0]: unknown class 'phi' (none are defined)");
  EXPECT_EQ(t.error_of("rules:\n  - name: x\n    match: {domains: a.org}\n    methods: [tls]\n  - name: x\n    methods: [tls]\n"),
            "policy.yaml:5:11: rules[1].name: duplicate rule name 'x'");
  EXPECT_EQ(t.error_of("rules:\n  - name: 'my rule'\n    methods: [tls]\n"),
            "policy.yaml:2:11: rules[0].name: 'my rule' is not a name (letters, digits, _ - .)");
}

TEST(PolicyLoad, AnEmptyNameIsQuotedAsWritten) {
  temp_policy t;
  EXPECT_EQ(t.error_of("rules:\n  - name: ''\n    methods: [tls]\n  - name: d\n    methods: [tls]\n"),
            "policy.yaml:2:11: rules[0].name: must not be empty\n"
            "policy.yaml:4:5: rules[1]: rule 'd' can never match: rule '' (line 2) before it has no match and takes "
            "every recipient");
}

TEST(PolicyLoad, AllErrorsAtOnce) {
  temp_policy t;
  auto msg = t.error_of("rules:\n  - name: x\n    methods: [pgpp]\n    colour: blue\n  - name: y\n    methods: [tls]\n");
  EXPECT_EQ(std::count(msg.begin(), msg.end(), '\n'), 2) << msg;
}

TEST(PolicyLoad, YamlSyntaxErrorAndMissingFile) {
  temp_policy t;
  EXPECT_EQ(t.error_of("rules: [\n"), "policy.yaml:2:1: YAML syntax: end of sequence flow not found");
  EXPECT_THROW(load_policy("/nonexistent/policy.yaml"), policy_error);
  // A directory reads as nothing: never a policy without rules.
  try {
    load_policy("/tmp");
    ADD_FAILURE() << "a directory loaded as a policy";
  } catch (const policy_error& e) {
    EXPECT_EQ(std::string(e.what()), "/tmp: cannot read file");
  }
}

TEST(PolicyLoad, Glob) {
  EXPECT_TRUE(glob_match("*.example.org", "mx.Example.ORG"));
  EXPECT_FALSE(glob_match("*.example.org", "example.org"));
  EXPECT_TRUE(glob_match("*@clinic.example", "dr.who@clinic.example"));
  EXPECT_TRUE(glob_match("a?c", "abc"));
  EXPECT_FALSE(glob_match("a?c", "ac"));
  EXPECT_TRUE(glob_match("*", ""));
  EXPECT_FALSE(glob_match("", "x"));
  EXPECT_TRUE(glob_match("*a*b*c", "xxaxxbxxc"));
  EXPECT_FALSE(glob_match("*a*b*c", "xxaxxcxxb"));
}

namespace {
// Nine levels of ten aliases each: 10^9 nodes when walked, 600 bytes on disk.
std::string billion_laughs() {
  std::string y = "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n";
  for (int i = 1; i <= 9; ++i) {
    std::string prev = "*a" + std::to_string(i - 1);
    y += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [";
    for (int k = 0; k < 10; ++k) y += (k ? ", " : "") + prev;
    y += "]\n";
  }
  return y;
}
}  // namespace

TEST(PolicyLoad, AliasExpansionIsBounded) {
  // Once an uncaught std::bad_alloc in `policy check`, and a 20 s, 2 GB
  // freeze of the listener as a hot reload.
  temp_policy t;
  auto msg = t.error_of(billion_laughs() + "rules:\n" + default_rule);
  EXPECT_NE(msg.find("aliases expand to more than 100000 nodes"), std::string::npos) << msg;
  EXPECT_EQ(msg.rfind("policy.yaml:", 0), 0u) << msg;
  // An anchor used the ordinary way still loads.
  auto p = t.load("rules:\n  - name: a\n    match: {domains: a.org}\n    methods: &m [tls, hold]\n"
                  "  - name: d\n    methods: *m\n");
  EXPECT_EQ(p.rules[1].methods, (std::vector<method>{method::tls, method::hold}));
}

TEST(PolicyLoad, DuplicateKeysAreRefusedWithBothPositions) {
  // yaml-cpp keeps the first of two equal keys: `methods: [hold]` then
  // `methods: [plain]` used to decide hold without a word.
  temp_policy t;
  EXPECT_EQ(t.error_of("rules:\n  - name: d\n    methods: [hold]\n    methods: [plain]\n"),
            "policy.yaml:4:5: duplicate key 'methods' (first at line 3, column 5)");
  EXPECT_EQ(t.error_of("rules:\n  - {name: d, methods: [tls], name: e}\n"),
            "policy.yaml:2:31: duplicate key 'name' (first at line 2, column 6)");
}
