// decide() over every method, every precondition outcome (found, absent,
// tempfail) and fallback, and DANE/MTA-STS raising the transport. One row per
// case; each row also asserts the reason that explains the outcome.
#include <gtest/gtest.h>

#include "policy/decide.hpp"
#include "policy_test_util.hpp"

using namespace sealgate::policy;
using policy_test::temp_policy;

namespace {

const char* test_policy = R"(classes:
  - name: phi
    when: {any: [{header: {name: X-Sensitivity, equals: phi}}, {subject_tag: '[secure]'}]}
rules:
  - name: e2e
    match: {recipients: '*@e2e.example'}
    methods: [pgp, smime, hold]
  - name: strict
    match: {domains: strict.example}
    methods: [tls]
    tls: {min_version: '1.3', verify: ca}
    on_failure: defer
  - name: authenticated-only
    match: {domains: [dane.example, '*.dane.example']}
    methods: [tls, reject]
    tls: {verify: dane-or-mta-sts}
    reject_text: no authenticated route
  - name: sensitive
    match: {classes: phi}
    methods: [pgp, smime, tls, portal, hold]
    tls: {min_version: '1.2', verify: ca}
    strip_subject_tag: true
  - name: default
    methods: [pgp, smime, tls, portal, plain]
)";

constexpr auto F = fact::found;
constexpr auto A = fact::absent;
constexpr auto T = fact::tempfail;

domain_facts mx(fact starttls, int version = 12, fact verified = A, dane_state dane = dane_state::none,
                mta_sts_state sts = mta_sts_state::none) {
  return {starttls, static_cast<tls_version>(starttls == F ? version : 0), verified, dane, sts};
}

struct row {
  const char* name;
  const char* recipient;
  bool phi;
  domain_facts domain;
  key_facts keys;
  bool portal;
  std::vector<method> failed;
  method expected;
  const char* rule;
  tls_level transport;
  int min_version;
  const char* reason;  // a substring of one of decision.reasons or of a considered method's why
};

const row rows[] = {
    // default rule: the best method available, in order
    {"pgp key found", "a@x.example", false, mx(F), {F, A}, false, {}, method::pgp, "default", tls_level::opportunistic, 0,
     "method: pgp, transport opportunistic"},
    {"pgp lookup failed defers, never falls to smime", "a@x.example", false, mx(F), {T, F}, true, {}, method::defer,
     "default", tls_level::opportunistic, 0,
     "defer: pgp is preferred and its precondition is unknown: the PGP key lookup failed temporarily"},
    {"no pgp key, smime found", "a@x.example", false, mx(F), {A, F}, false, {}, method::smime, "default",
     tls_level::opportunistic, 0, "no usable PGP key for the recipient"},
    {"smime lookup failed defers", "a@x.example", false, mx(F), {A, T}, true, {}, method::defer, "default",
     tls_level::opportunistic, 0, "the S/MIME certificate lookup failed temporarily"},
    {"no keys, STARTTLS 1.2", "a@x.example", false, mx(F, 12), {A, A}, true, {}, method::tls, "default",
     tls_level::required, 12, "STARTTLS with TLS 1.2; certificate not checked (verify: none)"},
    {"STARTTLS probe failed defers, never falls to portal or plain", "a@x.example", false, mx(T), {A, A}, true, {},
     method::defer, "default", tls_level::opportunistic, 0, "the STARTTLS probe of the MX failed temporarily"},
    {"no STARTTLS, portal configured", "a@x.example", false, mx(A), {A, A}, true, {}, method::portal, "default",
     tls_level::none, 0, "the MX does not offer STARTTLS"},
    {"no STARTTLS, no portal: plain", "a@x.example", false, mx(A), {A, A}, false, {}, method::plain, "default",
     tls_level::opportunistic, 0, "the portal is not configured"},
    {"TLS 1.1 only is below the rule's 1.2", "a@x.example", false, mx(F, 11), {A, A}, false, {}, method::plain,
     "default", tls_level::opportunistic, 0, "the MX offers TLS 1.1 at most; the rule requires 1.2"},
    {"tls already failed at delivery: next method", "a@x.example", false, mx(F), {A, A}, true, {method::tls},
     method::portal, "default", tls_level::none, 0, "already failed at delivery for this recipient"},

    // the domain's own DANE / MTA-STS: stricter, never weaker
    {"DANE raises tls from required to verified", "a@x.example", false, mx(F, 12, A, dane_state::secure), {A, A}, false,
     {}, method::tls, "default", tls_level::verified, 12, "the domain publishes DANE TLSA records: transport raised from required to verified"},
    {"DANE raises pgp's transport too", "a@x.example", false, mx(F, 13, A, dane_state::secure), {F, A}, false, {},
     method::pgp, "default", tls_level::verified, 12, "transport raised from opportunistic to verified"},
    {"DANE lookup failed defers tls", "a@x.example", false, mx(F, 12, F, dane_state::unknown), {A, A}, true, {},
     method::defer, "default", tls_level::opportunistic, 0, "defer: tls is preferred and its precondition is unknown: the DANE TLSA lookup failed temporarily"},
    {"DANE lookup failed defers even an available pgp", "a@x.example", false, mx(F, 12, F, dane_state::unknown),
     {F, A}, false, {}, method::defer, "default", tls_level::opportunistic, 0,
     "defer: pgp is available but the DANE TLSA lookup failed temporarily, so the transport the domain demands is unknown"},
    // The deposit travels by no SMTP; its notification, a message of its own,
    // meets the domain's demands when it is sent.
    {"DANE mismatch: tls not available, portal", "a@x.example", false,
     mx(F, 13, F, dane_state::mismatch), {A, A}, true, {}, method::portal, "default", tls_level::none, 0,
     "DANE: the domain publishes TLSA records and the MX certificate does not match them"},
    {"MTA-STS enforce raises pgp's transport", "a@x.example", false, mx(F, 12, F, dane_state::none, mta_sts_state::enforce),
     {F, A}, false, {}, method::pgp, "default", tls_level::verified, 12,
     "the domain publishes an MTA-STS policy in enforce mode: transport raised from opportunistic to verified"},
    {"MTA-STS enforce with a bad certificate forbids tls and plain alike", "a@x.example", false,
     mx(F, 12, A, dane_state::none, mta_sts_state::enforce), {A, A}, false, {}, method::defer, "default",
     tls_level::opportunistic, 0, "defer: no method of rule 'default' is available"},
    {"MTA-STS testing does not raise", "a@x.example", false, mx(F, 12, A, dane_state::none, mta_sts_state::testing),
     {A, A}, false, {}, method::tls, "default", tls_level::required, 12, "certificate not checked (verify: none)"},
    {"MTA-STS lookup failed defers", "a@x.example", false, mx(F, 12, F, dane_state::none, mta_sts_state::unknown),
     {A, A}, true, {}, method::defer, "default", tls_level::opportunistic, 0, "the MTA-STS policy lookup failed temporarily"},
    {"DANE takes precedence over MTA-STS", "a@x.example", false,
     mx(F, 12, A, dane_state::secure, mta_sts_state::enforce), {A, A}, false, {}, method::tls, "default",
     tls_level::verified, 12, "DANE: the MX certificate matches the domain's TLSA records"},

    // sensitive mail: never plain; verified TLS; hold when nothing fits
    {"phi with nothing available is held", "a@x.example", true, mx(A), {A, A}, false, {}, method::hold, "sensitive",
     tls_level::none, 0, "always applies: the message is held for an operator"},
    {"phi over verified TLS", "a@x.example", true, mx(F, 12, F), {A, A}, false, {}, method::tls, "sensitive",
     tls_level::verified, 12, "certificate verified (verify: ca)"},
    {"phi: verification unknown defers", "a@x.example", true, mx(F, 12, T), {A, A}, true, {}, method::defer, "sensitive",
     tls_level::opportunistic, 0, "certificate verification could not be completed (verify: ca)"},
    {"phi: certificate does not verify, portal", "a@x.example", true, mx(F, 13, A), {A, A}, true, {}, method::portal,
     "sensitive", tls_level::none, 0, "the MX certificate does not verify (verify: ca)"},

    // rule-specific requirements
    {"strict rule needs TLS 1.3", "a@strict.example", false, mx(F, 12, F), {F, F}, true, {}, method::defer, "strict",
     tls_level::opportunistic, 0, "the MX offers TLS 1.2 at most; the rule requires 1.3"},
    {"strict rule with TLS 1.3 and a verified certificate", "a@strict.example", false, mx(F, 13, F), {A, A}, false, {},
     method::tls, "strict", tls_level::verified, 13, "method: tls, transport verified (TLS >= 1.3)"},
    {"dane-or-mta-sts without either: reject", "a@dane.example", false, mx(F, 13, F), {A, A}, false, {},
     method::reject, "authenticated-only", tls_level::none, 0, "the rule requires DANE or MTA-STS and the domain publishes neither"},
    {"dane-or-mta-sts satisfied by MTA-STS", "a@mx.dane.example", false,
     mx(F, 12, F, dane_state::none, mta_sts_state::enforce), {A, A}, false, {}, method::tls, "authenticated-only",
     tls_level::verified, 12, "certificate verified (MTA-STS enforce requires it)"},
    {"dane-or-mta-sts satisfied by DANE", "a@dane.example", false, mx(F, 12, A, dane_state::secure), {A, A}, false, {},
     method::tls, "authenticated-only", tls_level::verified, 12, "DANE: the MX certificate matches"},
    {"e2e only: neither key, hold", "b@e2e.example", false, mx(F, 13, F), {A, A}, true, {}, method::hold, "e2e",
     tls_level::none, 0, "no usable S/MIME certificate for the recipient"},
    {"e2e only: smime", "B@E2E.example", false, mx(F, 13, F), {A, F}, true, {}, method::smime, "e2e",
     tls_level::opportunistic, 0, "a usable S/MIME certificate was found"},
};

class DecideTable : public ::testing::TestWithParam<row> {
 protected:
  static void SetUpTestSuite() {
    file_ = new temp_policy;
    policy_ = new policy(file_->load(test_policy));
  }
  static void TearDownTestSuite() {
    delete policy_;
    delete file_;
  }
  static temp_policy* file_;
  static policy* policy_;
};
temp_policy* DecideTable::file_ = nullptr;
policy* DecideTable::policy_ = nullptr;

std::string all_text(const decision& d) {
  std::string s;
  for (const auto& r : d.reasons) s += r + "\n";
  for (const auto& v : d.considered) s += std::string(to_string(v.m)) + ": " + v.why + "\n";
  return s;
}

}  // namespace

TEST_P(DecideTable, Row) {
  const row& r = GetParam();
  decide_input in;
  in.envelope = {"sender@ours.example", r.recipient, "smarthost", ""};
  if (r.phi) in.classes.push_back({"phi", "header X-Sensitivity equals 'phi'"});
  in.domain = r.domain;
  in.keys = r.keys;
  in.portal_configured = r.portal;
  in.failed = r.failed;
  auto d = decide(*policy_, in);
  EXPECT_EQ(to_string(d.chosen), to_string(r.expected)) << all_text(d);
  EXPECT_EQ(d.rule, r.rule);
  if (r.expected != method::defer) {
    EXPECT_EQ(to_string(d.transport), to_string(r.transport)) << all_text(d);
    EXPECT_EQ(static_cast<int>(d.min_tls_version), r.min_version);
  }
  EXPECT_NE(all_text(d).find(r.reason), std::string::npos) << "expected '" << r.reason << "' in:\n" << all_text(d);
}

INSTANTIATE_TEST_SUITE_P(Policy, DecideTable, ::testing::ValuesIn(rows), [](const auto& info) {
  std::string n;
  for (const char* p = info.param.name; *p; ++p) n += std::isalnum(static_cast<unsigned char>(*p)) ? *p : '_';
  return n;
});

TEST(Decide, ConsideredListsEveryMethodInOrder) {
  temp_policy t;
  auto p = t.load(test_policy);
  decide_input in;
  in.envelope = {"s@ours.example", "a@x.example", "smarthost", ""};
  in.domain = mx(F, 13);
  auto d = decide(p, in);
  ASSERT_EQ(d.considered.size(), 5u);
  EXPECT_EQ(d.considered[0].state, method_verdict::availability::unavailable);
  EXPECT_EQ(d.considered[1].state, method_verdict::availability::unavailable);
  EXPECT_EQ(d.considered[2].state, method_verdict::availability::available);
  EXPECT_EQ(d.considered[3].state, method_verdict::availability::skipped);
  EXPECT_EQ(d.considered[4].m, method::plain);
  EXPECT_EQ(d.reasons.front(), "classes: none");
  EXPECT_EQ(d.reasons[1], "rule 'default' (line 23): default rule (no match)");
}

TEST(Decide, RejectCarriesItsTextAndSubjectTagsAreListedForStripping) {
  temp_policy t;
  auto p = t.load(test_policy);
  decide_input in;
  in.envelope = {"s@ours.example", "a@dane.example", "smarthost", ""};
  in.domain = mx(A);
  auto d = decide(p, in);
  EXPECT_EQ(d.chosen, method::reject);
  EXPECT_EQ(d.reject_text, "no authenticated route");

  in.envelope.recipient = "a@x.example";
  in.classes = {{"phi", "subject tag '[secure]'"}};
  in.keys.pgp = F;
  d = decide(p, in);
  EXPECT_EQ(d.chosen, method::pgp);
  EXPECT_EQ(d.strip_subject_tags, std::vector<std::string>{"[secure]"});
  EXPECT_EQ(d.reasons[1], "rule 'sensitive' (line 18): matched on class phi");
}

TEST(Decide, IsAPureFunction) {
  temp_policy t;
  auto p = t.load(test_policy);
  decide_input in;
  in.envelope = {"s@ours.example", "a@x.example", "smarthost", ""};
  in.domain = mx(F, 12, F, dane_state::secure);
  auto a = decide(p, in), b = decide(p, in);
  EXPECT_EQ(a.chosen, b.chosen);
  EXPECT_EQ(a.reasons, b.reasons);
}

// needed_facts() may only leave out a fact that cannot change the decision:
// for every rule, class, portal setting and failed set, a fact it calls
// unneeded is varied over all its values, and decide() must not notice.
namespace {

const char* needs_policy = R"(rules:
  - name: hold-only
    match: {domains: held.example}
    methods: [hold]
  - name: reject-only
    match: {domains: refused.example}
    methods: [reject]
    reject_text: not here
  - name: tls-only
    match: {domains: tls.example}
    methods: [tls]
    on_failure: defer
  - name: portal-first
    match: {domains: portal.example}
    methods: [portal, pgp, tls]
  - name: pgp-then-hold
    match: {domains: late.example}
    methods: [pgp, hold]
  - name: default
    methods: [plain]
)";

struct decision_key {
  method chosen;
  std::string rule;
  tls_level transport;
  int min_tls_version;
  on_failure fail;
  std::vector<std::string> tags;
  bool operator==(const decision_key&) const = default;
};

decision_key key_of(const decision& d) {
  return {d.chosen, d.rule, d.transport, static_cast<int>(d.min_tls_version), d.on_failure, d.strip_subject_tags};
}

std::vector<domain_facts> every_domain() {
  std::vector<domain_facts> out;
  for (fact starttls : {F, A, T})
    for (int version : {11, 12, 13})
      for (fact verified : {F, A, T})
        for (auto dane : {dane_state::none, dane_state::secure, dane_state::mismatch, dane_state::unknown})
          for (auto sts : {mta_sts_state::none, mta_sts_state::testing, mta_sts_state::enforce, mta_sts_state::unknown})
            out.push_back({starttls, static_cast<tls_version>(starttls == F ? version : 0), verified, dane, sts});
  return out;
}

std::vector<key_facts> every_keys() {
  std::vector<key_facts> out;
  for (fact pgp : {F, A, T})
    for (fact smime : {F, A, T}) out.push_back({pgp, smime});
  return out;
}

}  // namespace

TEST(NeededFacts, AnUnneededFactNeverChangesTheDecision) {
  temp_policy t1, t2;
  std::vector<policy> policies{t1.load(test_policy), t2.load(needs_policy)};
  const char* recipients[] = {"a@x.example",    "b@e2e.example",  "a@strict.example", "a@dane.example",
                              "a@held.example", "a@refused.example", "a@tls.example", "a@portal.example",
                              "a@late.example", "a@other.example"};
  const std::vector<std::vector<method>> failed_sets{
      {}, {method::pgp}, {method::tls}, {method::pgp, method::smime}, {method::pgp, method::smime, method::tls},
      {method::portal}, {method::hold}};
  auto domains = every_domain();
  auto keys = every_keys();
  size_t skipped_keys = 0, skipped_domain = 0;
  for (const auto& p : policies)
    for (const char* rcpt : recipients)
      for (bool phi : {false, true})
        for (bool portal : {false, true})
          for (const auto& failed : failed_sets) {
            decide_input in;
            in.envelope = {"s@ours.example", rcpt, "smarthost", ""};
            if (phi) in.classes.push_back({"phi", "header X-Sensitivity equals 'phi'"});
            in.portal_configured = portal;
            in.failed = failed;
            auto need = needed_facts(p, in);
            std::string where = std::string(rcpt) + (phi ? " phi" : "") + (portal ? " portal" : "") + " failed=" +
                                std::to_string(failed.size());
            // Every value of the unneeded fact (member), under every value of the other.
            auto invariant = [&](auto member, const auto& values, auto unknown, auto other, const auto& others) {
              for (const auto& o : others) {
                in.*other = o;
                in.*member = unknown;
                auto expected = key_of(decide(p, in));
                for (const auto& v : values) {
                  in.*member = v;
                  ASSERT_TRUE(key_of(decide(p, in)) == expected) << where << ": an unneeded fact changed the decision";
                }
              }
            };
            if (!need.keys) {
              ++skipped_keys;
              invariant(&decide_input::keys, keys, unknown_keys(), &decide_input::domain, domains);
            }
            if (!need.domain) {
              ++skipped_domain;
              invariant(&decide_input::domain, domains, unknown_domain(), &decide_input::keys, keys);
            }
          }
  // The table above must exercise both skips, or it proves nothing.
  EXPECT_GT(skipped_keys, 50u);
  EXPECT_GT(skipped_domain, 20u);
}

TEST(NeededFacts, FollowTheRuleAndItsWalk) {
  temp_policy t1, t2;
  auto base = t1.load(test_policy);
  auto needs = t2.load(needs_policy);
  auto need = [](const policy& p, const char* rcpt, bool portal = false, std::vector<method> failed = {}) {
    decide_input in;
    in.envelope = {"s@ours.example", rcpt, "smarthost", ""};
    in.portal_configured = portal;
    in.failed = std::move(failed);
    auto n = needed_facts(p, in);
    return std::string(n.keys ? "keys" : "-") + "," + (n.domain ? "domain" : "-");
  };
  EXPECT_EQ(need(needs, "a@held.example"), "-,-");        // hold only: nothing to look up
  EXPECT_EQ(need(needs, "a@refused.example"), "-,-");     // reject only
  EXPECT_EQ(need(needs, "a@tls.example"), "-,domain");    // tls only: no key lookup
  EXPECT_EQ(need(needs, "a@late.example"), "keys,domain");
  EXPECT_EQ(need(needs, "a@late.example", false, {method::pgp}), "-,-");  // only hold is left
  EXPECT_EQ(need(needs, "a@other.example"), "-,domain");                  // the default: plain
  EXPECT_EQ(need(needs, "a@portal.example", true), "-,-");  // portal configured ends the walk, and sends no SMTP
  EXPECT_EQ(need(needs, "a@portal.example", false), "keys,domain");
  EXPECT_EQ(need(base, "a@x.example"), "keys,domain");
  EXPECT_EQ(need(base, "a@x.example", false, {method::pgp, method::smime}), "-,domain");
  EXPECT_EQ(need(base, "b@e2e.example"), "keys,domain");
  EXPECT_EQ(need(base, "b@e2e.example", false, {method::pgp, method::smime}), "-,-");  // only hold is left
}
