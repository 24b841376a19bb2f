// The delivery decision; see decide.hpp. Pure: every input is a value, the
// output is a value. Methods are tried in the rule's order of preference; an
// unknown precondition stops the walk with defer instead of falling through.
#include "policy/decide.hpp"

#include "common/text.hpp"

#include <algorithm>

namespace sealgate::policy {
namespace {

using avail = method_verdict::availability;

struct verdict {
  avail state;
  std::string why;
};


bool any_glob(const std::vector<std::string>& patterns, const std::string& value) {
  return std::any_of(patterns.begin(), patterns.end(), [&](const std::string& p) { return glob_match(p, value); });
}

// Why a rule matched, for the explanation.
std::string match_reason(const rule_match& m, const std::vector<class_match>& classes) {
  if (m.unconditional()) return "default rule (no match)";
  std::vector<std::string> parts;
  if (!m.recipients.empty()) parts.push_back("recipient");
  if (!m.domains.empty()) parts.push_back("domain");
  if (!m.senders.empty()) parts.push_back("sender");
  if (!m.listeners.empty()) parts.push_back("listener");
  if (!m.classes.empty()) {
    std::string cs;
    for (const auto& c : classes)
      if (std::find(m.classes.begin(), m.classes.end(), c.name) != m.classes.end()) cs += (cs.empty() ? "" : ", ") + c.name;
    parts.push_back("class " + cs);
  }
  std::string out = "matched on ";
  for (size_t i = 0; i < parts.size(); ++i) out += (i ? " and " : "") + parts[i];
  return out;
}

bool rule_matches(const rule& r, const envelope_facts& e, const std::vector<class_match>& classes) {
  const auto& m = r.match;
  if (!m.recipients.empty() && !any_glob(m.recipients, e.recipient)) return false;
  if (!m.domains.empty() && !any_glob(m.domains, domain_of(e.recipient))) return false;
  if (!m.senders.empty() && !any_glob(m.senders, e.sender)) return false;
  if (!m.listeners.empty() && !any_glob(m.listeners, e.listener)) return false;
  if (!m.classes.empty() &&
      !std::any_of(classes.begin(), classes.end(), [&](const class_match& c) {
        return std::find(m.classes.begin(), m.classes.end(), c.name) != m.classes.end();
      }))
    return false;
  return true;
}

// What the recipient's domain itself demands of any SMTP delivery to it
// (RFC 7672 DANE, RFC 8461 MTA-STS). DANE takes precedence when both exist.
struct domain_demand {
  bool unknown = false;
  bool verified = false;
  std::string why;
};

domain_demand demand_of(const domain_facts& d) {
  if (d.dane == dane_state::unknown) return {true, false, "the DANE TLSA lookup failed temporarily"};
  if (d.dane == dane_state::secure || d.dane == dane_state::mismatch)
    return {false, true, "the domain publishes DANE TLSA records"};
  if (d.mta_sts == mta_sts_state::unknown) return {true, false, "the MTA-STS policy lookup failed temporarily"};
  if (d.mta_sts == mta_sts_state::enforce) return {false, true, "the domain publishes an MTA-STS policy in enforce mode"};
  return {};
}

verdict tls_precondition(const tls_requirement& req, const domain_facts& d) {
  if (d.starttls == fact::tempfail) return {avail::unknown, "the STARTTLS probe of the MX failed temporarily"};
  if (d.starttls == fact::absent) return {avail::unavailable, "the MX does not offer STARTTLS"};
  auto demand = demand_of(d);
  if (demand.unknown) return {avail::unknown, demand.why};
  if (d.tls_version == tls_version::unknown) return {avail::unknown, "the MX's TLS version is not known"};
  if (d.tls_version < req.min_version)
    return {avail::unavailable, "the MX offers TLS " + std::string(to_string(d.tls_version)) + " at most; the rule requires " +
                                    std::string(to_string(req.min_version))};
  std::string offered = "STARTTLS with TLS " + std::string(to_string(d.tls_version)) + "; ";
  if (d.dane == dane_state::secure)
    return {avail::available, offered + "DANE: the MX certificate matches the domain's TLSA records"};
  if (d.dane == dane_state::mismatch)
    return {avail::unavailable, "DANE: the domain publishes TLSA records and the MX certificate does not match them"};
  auto pkix = [&](const std::string& because) -> verdict {
    if (d.cert_verified == fact::found) return {avail::available, offered + "certificate verified (" + because + ")"};
    if (d.cert_verified == fact::tempfail) return {avail::unknown, "certificate verification could not be completed (" + because + ")"};
    return {avail::unavailable, "the MX certificate does not verify (" + because + ")"};
  };
  if (d.mta_sts == mta_sts_state::enforce) return pkix("MTA-STS enforce requires it");
  switch (req.verify) {
    case tls_verify::none: return {avail::available, offered + "certificate not checked (verify: none)"};
    case tls_verify::ca: return pkix("verify: ca");
    case tls_verify::dane_or_mta_sts:
      return {avail::unavailable, std::string("the rule requires DANE or MTA-STS and the domain publishes neither") +
                                      (d.mta_sts == mta_sts_state::testing ? " (MTA-STS testing mode does not count)" : "")};
  }
  return {avail::unavailable, "invalid verify"};
}

verdict key_precondition(fact f, std::string_view what) {
  switch (f) {
    case fact::found: return {avail::available, "a usable " + std::string(what) + " was found"};
    case fact::absent: return {avail::unavailable, "no usable " + std::string(what) + " for the recipient"};
    case fact::tempfail: return {avail::unknown, "the " + std::string(what) + " lookup failed temporarily"};
  }
  return {avail::unknown, "invalid fact"};
}

verdict precondition(method m, const rule& r, const decide_input& in) {
  switch (m) {
    case method::pgp: return key_precondition(in.keys.pgp, "PGP key");
    case method::smime: return key_precondition(in.keys.smime, "S/MIME certificate");
    case method::tls: return tls_precondition(r.tls, in.domain);
    case method::portal:
      return in.portal_configured ? verdict{avail::available, "the portal is configured"}
                                  : verdict{avail::unavailable, "the portal is not configured"};
    case method::plain: {
      auto demand = demand_of(in.domain);
      if (demand.unknown) return {avail::unknown, demand.why};
      if (!demand.verified) return {avail::available, "opportunistic TLS, clear text when STARTTLS is not offered"};
      // The domain's own policy forbids clear text: plain becomes verified TLS.
      auto v = tls_precondition(tls_requirement{tls_floor, tls_verify::none}, in.domain);
      v.why = demand.why + ", so plain needs verified TLS: " + v.why;
      return v;
    }
    case method::reject: return {avail::available, "always applies: the message is bounced with the rule's text"};
    case method::hold: return {avail::available, "always applies: the message is held for an operator"};
    case method::defer: break;
  }
  return {avail::unavailable, "not a method a rule may list"};
}

void collect_tags(const condition& c, std::vector<std::string>& out) {
  if (c.type == condition::kind::subject_tag && std::find(out.begin(), out.end(), c.text) == out.end()) out.push_back(c.text);
  if (c.type == condition::kind::negate) return;  // a tag under "not" is one that is absent
  for (const auto& ch : c.children) collect_tags(ch, out);
}

}  // namespace

std::string_view to_string(fact f) {
  switch (f) {
    case fact::found: return "found";
    case fact::absent: return "absent";
    case fact::tempfail: return "tempfail";
  }
  return "invalid";
}

std::string_view to_string(dane_state s) {
  switch (s) {
    case dane_state::none: return "none";
    case dane_state::secure: return "secure";
    case dane_state::mismatch: return "mismatch";
    case dane_state::unknown: return "unknown";
  }
  return "invalid";
}

std::string_view to_string(mta_sts_state s) {
  switch (s) {
    case mta_sts_state::none: return "none";
    case mta_sts_state::testing: return "testing";
    case mta_sts_state::enforce: return "enforce";
    case mta_sts_state::unknown: return "unknown";
  }
  return "invalid";
}

std::string_view to_string(method_verdict::availability a) {
  switch (a) {
    case avail::available: return "available";
    case avail::unavailable: return "not available";
    case avail::unknown: return "unknown";
    case avail::skipped: return "skipped";
  }
  return "invalid";
}

const rule* select_rule(const policy& p, const envelope_facts& e, const std::vector<class_match>& classes) {
  for (const auto& r : p.rules)
    if (rule_matches(r, e, classes)) return &r;
  return nullptr;
}

facts_needed needed_facts(const policy& p, const decide_input& in) {
  facts_needed n;
  const rule* r = select_rule(p, in.envelope, in.classes);
  if (!r) return n;
  // The same walk as decide(): a method already failed is skipped; one that
  // always applies ends it (reject and hold before the transport is worked
  // out, so they read no domain facts, and so is portal, whose deposit is not
  // sent by SMTP).
  for (method m : r->methods) {
    if (std::find(in.failed.begin(), in.failed.end(), m) != in.failed.end()) continue;
    switch (m) {
      case method::pgp:
      case method::smime:
        n.keys = true;
        n.domain = true;  // chosen, it travels by SMTP under the domain's demands
        break;
      case method::tls:
      case method::plain: n.domain = true; break;
      case method::portal:
        // A deposit does not travel by SMTP (its notification is a message of its own).
        if (!in.portal_configured) break;
        return n;
      case method::reject:
      case method::hold: return n;
      case method::defer: break;
    }
  }
  return n;
}

decision decide(const policy& p, const decide_input& in) {
  decision d;
  std::string classes;
  for (const auto& c : in.classes) classes += (classes.empty() ? "" : ", ") + c.name;
  d.reasons.push_back("classes: " + (classes.empty() ? std::string("none") : classes));
  const rule* r = select_rule(p, in.envelope, in.classes);
  if (!r) {
    d.reasons.push_back("no rule matches (the policy has no default rule)");
    return d;
  }
  d.rule = r->name;
  d.rule_line = r->line;
  d.on_failure = r->on_failure;
  d.reasons.push_back("rule '" + r->name + "' (line " + std::to_string(r->line) + "): " + match_reason(r->match, in.classes));

  bool decided = false;
  for (method m : r->methods) {
    if (decided) {
      d.considered.push_back({m, avail::skipped, "not reached"});
      continue;
    }
    if (std::find(in.failed.begin(), in.failed.end(), m) != in.failed.end()) {
      d.considered.push_back({m, avail::skipped, "already failed at delivery for this recipient"});
      continue;
    }
    auto v = precondition(m, *r, in);
    d.considered.push_back({m, v.state, v.why});
    if (v.state == avail::available) {
      d.chosen = m;
      decided = true;
    } else if (v.state == avail::unknown) {
      // A failed lookup is not a "no": choosing a weaker method now would let a
      // DNS outage or a key server hiccup downgrade the recipient.
      d.chosen = method::defer;
      d.reasons.push_back("defer: " + std::string(to_string(m)) + " is preferred and its precondition is unknown: " + v.why);
      decided = true;
    }
  }
  if (!decided) {
    d.chosen = method::defer;
    d.reasons.push_back("defer: no method of rule '" + r->name + "' is available");
    return d;
  }
  if (d.chosen == method::defer) return d;

  if (d.chosen == method::reject || d.chosen == method::hold || d.chosen == method::portal) {
    d.transport = tls_level::none;
    if (d.chosen == method::reject) d.reject_text = r->reject_text;
    if (d.chosen == method::portal) {
      d.portal_expire = r->portal_expire;
      // The copy on the portal loses its tags too.
      if (r->strip_subject_tag)
        for (const auto& c : in.classes)
          for (const auto& cls : p.classes)
            if (cls.name == c.name) collect_tags(cls.when, d.strip_subject_tags);
    }
    d.reasons.push_back("method: " + std::string(to_string(d.chosen)));
    return d;
  }

  // The SMTP transport the chosen method travels on: never below what the
  // domain's own DANE or MTA-STS policy demands.
  auto demand = demand_of(in.domain);
  if (demand.unknown) {
    d.reasons.push_back("defer: " + std::string(to_string(d.chosen)) + " is available but " + demand.why +
                        ", so the transport the domain demands is unknown");
    d.chosen = method::defer;
    return d;
  }
  if (d.chosen == method::tls) {
    d.transport = r->tls.verify == tls_verify::none ? tls_level::required : tls_level::verified;
    d.min_tls_version = r->tls.min_version;
  } else {
    d.transport = tls_level::opportunistic;
  }
  if (demand.verified && d.transport < tls_level::verified) {
    d.reasons.push_back(demand.why + ": transport raised from " + std::string(to_string(d.transport)) + " to verified");
    d.transport = tls_level::verified;
  }
  if (d.transport >= tls_level::required && d.min_tls_version == tls_version::unknown) d.min_tls_version = tls_floor;

  if (r->strip_subject_tag)
    for (const auto& c : in.classes)
      for (const auto& cls : p.classes)
        if (cls.name == c.name) collect_tags(cls.when, d.strip_subject_tags);
  d.reasons.push_back("method: " + std::string(to_string(d.chosen)) + ", transport " + std::string(to_string(d.transport)) +
                      (d.min_tls_version != tls_version::unknown ? " (TLS >= " + std::string(to_string(d.min_tls_version)) + ")" : ""));
  return d;
}

}  // namespace sealgate::policy
