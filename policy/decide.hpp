// The delivery decision: a pure function of (classes, envelope, domain facts,
// key facts, policy) giving a method, the rule, the TLS requirement and the
// reasons. No I/O here. A fact that is unknown because a lookup failed never
// counts as "no": only a proven absence lets a weaker method be chosen.
#pragma once
#include <string>
#include <vector>

#include "policy/classify.hpp"
#include "policy/policy.hpp"
#include "policy/tls_level.hpp"

namespace sealgate::policy {

// Every fact has three outcomes (as Postfix keeps a failed TLSA lookup apart
// from a proven absence of TLSA records).
enum class fact { found, absent, tempfail };
std::string_view to_string(fact f);

enum class dane_state {
  none,      // proven: no usable TLSA records (none published, or zone not DNSSEC-signed)
  secure,    // usable TLSA records, and the MX certificate matched them
  mismatch,  // usable TLSA records, and the MX certificate did not match
  unknown,   // lookup failed (SERVFAIL, timeout, bogus)
};
enum class mta_sts_state { none, testing, enforce, unknown };
std::string_view to_string(dane_state s);
std::string_view to_string(mta_sts_state s);

// What a probe of the recipient domain's MX found.
struct domain_facts {
  fact starttls = fact::absent;
  sealgate::policy::tls_version tls_version = sealgate::policy::tls_version::unknown;  // best offered, when starttls is found
  fact cert_verified = fact::absent;  // chain to the trust store and host name match (PKIX)
  dane_state dane = dane_state::none;
  mta_sts_state mta_sts = mta_sts_state::none;
};

// What key lookup found for the recipient.
struct key_facts {
  fact pgp = fact::absent;
  fact smime = fact::absent;
};

struct decide_input {
  envelope_facts envelope;
  std::vector<class_match> classes;
  domain_facts domain;
  key_facts keys;
  bool portal_configured = false;
  std::vector<method> failed;  // methods that already failed at delivery for this recipient
};

struct method_verdict {
  method m;
  enum class availability { available, unavailable, unknown, skipped } state;
  std::string why;
};
std::string_view to_string(method_verdict::availability a);

struct decision {
  method chosen = method::defer;
  std::string rule;
  int rule_line = 0;
  // The transport requirement the SMTP client must enforce for the chosen method.
  tls_level transport = tls_level::opportunistic;
  tls_version min_tls_version = tls_version::unknown;  // unknown when transport is below required
  enum on_failure on_failure = on_failure::next;
  std::string reject_text;
  std::vector<std::string> strip_subject_tags;  // tags to remove before sending
  int64_t portal_expire = 0;  // seconds, for portal: the rule's portal.expire (0: the configuration's)
  std::vector<method_verdict> considered;
  std::vector<std::string> reasons;
};

// The first rule whose match holds; nullptr only for a policy without a default.
const rule* select_rule(const policy& p, const envelope_facts& e, const std::vector<class_match>& classes);
decision decide(const policy& p, const decide_input& in);

// Which facts decide() can read for this input. The rule follows from the
// envelope and the classes alone, and the walk over its methods (minus those
// in `failed`) ends at the first method that always applies (reject, hold,
// portal when configured). Key facts matter only when pgp or smime can be
// reached, domain facts only when a method that travels by SMTP can. Reads
// envelope, classes, portal_configured and failed; ignores keys and domain.
// Lets the delivery side skip lookups (a DNS query, a keyring search) that
// cannot change the decision.
struct facts_needed {
  bool keys = false;
  bool domain = false;
};
facts_needed needed_facts(const policy& p, const decide_input& in);

// What to give decide() in place of a fact that was not looked up: unknown,
// so that a lookup skipped by mistake could only defer, never downgrade.
inline key_facts unknown_keys() { return {fact::tempfail, fact::tempfail}; }
inline domain_facts unknown_domain() {
  return {fact::tempfail, tls_version::unknown, fact::tempfail, dane_state::unknown, mta_sts_state::unknown};
}

}  // namespace sealgate::policy
