// fuzz_config and fuzz_policy: the YAML files an operator writes (gateway/config,
// policy/policy). Both loaders promise to refuse a bad file with their own
// error type and nothing else, so any other exception escapes and counts as
// a crash; an accepted file must hold the invariants the rest relies on.
#include <set>
#include <string>
#include <string_view>

#include "gateway/config/config.hpp"
#include "policy/classify.hpp"
#include "policy/decide.hpp"
#include "policy/policy.hpp"
#include "tests/fuzz/fuzz_parsers.hpp"

namespace sealgate::fuzz {

void feed_config(const uint8_t* data, size_t size, parse_counts& counts) {
  auto path = write_scratch("sealgate.yaml", std::string_view(reinterpret_cast<const char*>(data), size));
  gateway::config c;
  try {
    c = gateway::load_config(path);
  } catch (const gateway::config_error& e) {
    // FILE:LINE:COL: the operator is told where.
    SEALGATE_FUZZ_CHECK(std::string_view(e.what()).rfind(path + ":", 0) == 0);
    ++counts.config_refused;
    return;
  }
  ++counts.config_ok;
  SEALGATE_FUZZ_CHECK(!c.listeners.empty());
  std::set<std::string> names;
  for (const auto& l : c.listeners) {
    SEALGATE_FUZZ_CHECK(names.insert(l.name).second);
    SEALGATE_FUZZ_CHECK(l.port >= 1);
    // Passwords never travel in clear, and a TLS listener has its key pair.
    SEALGATE_FUZZ_CHECK(l.auth == gateway::listener_auth::none || l.tls != gateway::listener_tls::none);
    SEALGATE_FUZZ_CHECK(l.tls == gateway::listener_tls::none || (!c.tls_certificate.empty() && !c.tls_private_key.empty()));
    SEALGATE_FUZZ_CHECK(l.auth == gateway::listener_auth::none || !c.users_file.empty());
  }
  SEALGATE_FUZZ_CHECK(c.queue.retry_min <= c.queue.retry_max);
  SEALGATE_FUZZ_CHECK(c.queue.destination_concurrency <= c.queue.concurrency);
  SEALGATE_FUZZ_CHECK(c.limits.command_line_length >= 512 && c.limits.recipients >= 1 && c.limits.errors >= 1);
  SEALGATE_FUZZ_CHECK(c.threads <= 64);
  SEALGATE_FUZZ_CHECK(!c.hostname.empty() && !c.delivery.helo_name.empty());
}

namespace {

// Touches every kind of condition a fuzzed policy may hold.
constexpr std::string_view sample_message =
    "From: App <app@example.org>\r\n"
    "To: pat@example.com\r\n"
    "Subject: =?utf-8?q?Results_=5Bsecure=5D?= for 12/31/1980\r\n"
    "X-Sensitivity: PHI\r\n"
    "Precedence: list\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=\"b1\"\r\n"
    "\r\n"
    "--b1\r\n"
    "Content-Type: text/plain\r\n"
    "\r\n"
    "SSN 078-05-1120, MRN: 12345678, card 4111 1111 1111 1111, diagnosis attached.\r\n"
    "--b1\r\n"
    "Content-Type: application/dicom; name=\"scan.dcm\"\r\n"
    "Content-Disposition: attachment; filename=\"scan.dcm\"\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "\r\n"
    "AAAA\r\n"
    "--b1--\r\n";

}  // namespace

void feed_policy(const uint8_t* data, size_t size, parse_counts& counts) {
  auto path = write_scratch("policy.yaml", std::string_view(reinterpret_cast<const char*>(data), size));
  policy::policy p;
  try {
    p = policy::load_policy(path);
  } catch (const policy::policy_error& e) {
    SEALGATE_FUZZ_CHECK(std::string_view(e.what()).rfind(path + ":", 0) == 0);
    ++counts.policy_refused;
    return;
  }
  ++counts.policy_ok;
  // "The last one is unconditional (the default)", and every rule can act.
  SEALGATE_FUZZ_CHECK(!p.rules.empty() && p.rules.back().match.unconditional());
  SEALGATE_FUZZ_CHECK(p.sha256.size() == 64);
  for (const auto& r : p.rules) {
    SEALGATE_FUZZ_CHECK(!r.methods.empty());
    for (auto m : r.methods) SEALGATE_FUZZ_CHECK(m != policy::method::defer);
  }

  // What the accepted policy then does with a message: classification runs
  // its regular expressions and globs, the decision walks its rules.
  static const policy::message_facts message = policy::read_message(sample_message);
  for (int i = 0; i < 2; ++i) {
    policy::envelope_facts e;
    e.sender = i ? "" : "app@example.org";
    e.recipient = i ? "someone@lab.example.org" : "pat@example.com";
    e.listener = i ? "submission" : "smarthost";
    e.auth_user = i ? "batch-7" : "";
    policy::decide_input d;
    d.envelope = e;
    d.classes = policy::classify(p, message, e);
    d.domain.starttls = i ? policy::fact::tempfail : policy::fact::found;
    d.domain.tls_version = sealgate::policy::tls_version::v1_2;
    d.keys.smime = policy::fact::found;
    d.portal_configured = i;
    auto decision = policy::decide(p, d);
    SEALGATE_FUZZ_CHECK(!decision.rule.empty());
    (void)policy::needed_facts(p, d);
  }
}

}  // namespace sealgate::fuzz
