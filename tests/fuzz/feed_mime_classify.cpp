// fuzz_mime_classify: a message's content as a client submits it, through the
// MIME walk (policy/message_facts) and classification against a fixed policy
// that uses every kind of condition (policy/classify), then the decision
// (policy/decide). The content is the one input here no operator vouches for.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "gateway/methods/subject_tags.hpp"
#include "policy/classify.hpp"
#include "policy/decide.hpp"
#include "policy/message_facts.hpp"
#include "tests/fuzz/fuzz_input.hpp"
#include "tests/fuzz/fuzz_parsers.hpp"

namespace sealgate::fuzz {
namespace {

// Loaded through the real loader (so it follows the file format as it
// changes), once per process.
constexpr std::string_view fixed_policy = R"(classes:
  - name: phi
    when:
      any:
        - header: {name: X-Sensitivity, matches: '^(phi|hipaa)$'}
        - dlp: [ssn, mrn, dob]
        - attachment: ['\.(dcm|hl7|ccda?)$', '^scan[0-9]+\.pdf$']
  - name: confidential
    when:
      any:
        - header: {name: Sensitivity, equals: Company-Confidential}
        - subject_tag: '[secure]'
        - dlp: card
        - body: ['diagnos(is|es)', 'prescri(be|ption)s?']
  - name: bulk
    when:
      all:
        - any:
            - header: {name: Precedence, matches: '^(bulk|list)$'}
            - header: {name: List-Unsubscribe}
        - not: {dlp: [ssn, mrn, dob, card]}
        - size_under: 1MiB
  - name: large
    when: {size_over: 2KB}
  - name: internal
    when:
      all:
        - sender: '*@example.org'
        - recipient: ['*@example.org', '*@*.example.org']
        - listener: smarthost
        - not: {auth_user: 'batch-*'}
rules:
  - name: restricted
    match: {classes: internal, domains: 'lab.example.org'}
    methods: [reject]
    reject_text: "not here"
  - name: sensitive
    match: {classes: [phi, confidential]}
    methods: [pgp, smime, tls, portal, hold]
    tls: {min_version: "1.2", verify: ca}
    strip_subject_tag: true
  - name: bulk
    match: {classes: bulk}
    methods: [tls, plain]
  - name: default
    methods: [pgp, smime, tls, portal, plain]
)";

const policy::policy& the_policy() {
  static const policy::policy p = [] {
    try {
      return policy::load_policy(write_scratch("classify-policy.yaml", fixed_policy));
    } catch (const policy::policy_error& e) {
      // The harness's own policy no longer loads: fix the harness, not a crash report.
      std::fprintf(stderr, "fuzz_mime_classify: fixed policy refused:\n%s\n", e.what());
      std::abort();
    }
  }();
  return p;
}

}  // namespace

void feed_mime_classify(const uint8_t* data, size_t size, parse_counts& counts) {
  input_cursor in(data, size);
  uint8_t setup = in.byte();
  std::string_view raw = in.rest();
  // Small limits half the time, so that the fuzzer reaches the caps.
  policy::message_limits limits;
  if (setup & 1) {
    limits.max_text = 64;
    limits.max_depth = 3;
    limits.max_parts = 8;
  }
  policy::message_facts m = policy::read_message(raw, limits);
  SEALGATE_FUZZ_CHECK(m.size == raw.size());
  SEALGATE_FUZZ_CHECK(m.text.size() <= limits.max_text);
  SEALGATE_FUZZ_CHECK(m.attachment_names.size() <= limits.max_parts);
  counts.mime_parts_named += m.attachment_names.size();

  const policy::policy& p = the_policy();
  policy::envelope_facts e;
  e.sender = (setup & 2) ? "app@example.org" : "";
  e.recipient = (setup & 4) ? "pat@lab.example.org" : "someone@example.com";
  e.listener = "smarthost";
  e.auth_user = (setup & 8) ? "batch-7" : "";
  auto classes = policy::classify(p, m, e);
  for (const auto& c : classes) {
    SEALGATE_FUZZ_CHECK(!c.reason.empty());
    bool known = false;
    for (const auto& pc : p.classes) known |= pc.name == c.name;
    SEALGATE_FUZZ_CHECK(known);
  }
  counts.mime_classes += classes.size();
  // Delivery scans the content once and classifies each recipient from the
  // scan: it must agree with the direct classification, reasons included.
  auto scanned = policy::classify(p, policy::scan_content(p, m), e);
  SEALGATE_FUZZ_CHECK(scanned.size() == classes.size());
  for (size_t i = 0; i < classes.size() && i < scanned.size(); ++i)
    SEALGATE_FUZZ_CHECK(scanned[i].name == classes[i].name && scanned[i].reason == classes[i].reason);

  policy::decide_input d;
  d.envelope = e;
  d.classes = classes;
  d.keys.pgp = (setup & 16) ? policy::fact::found : policy::fact::absent;
  d.domain.starttls = (setup & 32) ? policy::fact::tempfail : policy::fact::found;
  d.domain.tls_version = sealgate::policy::tls_version::v1_3;
  d.domain.cert_verified = policy::fact::found;
  auto decision = policy::decide(p, d);
  SEALGATE_FUZZ_CHECK(!decision.rule.empty());
  (void)policy::needed_facts(p, d);
  (void)policy::strip_subject_tags(m.subject, {"[secure]"});
  // The rewrite strip_subject_tag asks for touches the Subject field only:
  // everything from the end of the header block on comes back byte for byte.
  // It runs on spooled content, which never holds a bare CR or LF (with one,
  // a field could run on into the next header and lose its tags too).
  std::string spooled = with_crlf(raw);
  std::string rewritten = gateway::strip_subject_tags_in(spooled, {"[secure]", "(PHI)"});
  size_t end = spooled.find("\r\n\r\n"), end_out = rewritten.find("\r\n\r\n");
  SEALGATE_FUZZ_CHECK((end == std::string::npos) == (end_out == std::string::npos));
  if (end != std::string::npos && end_out != std::string::npos)
    SEALGATE_FUZZ_CHECK(std::string_view(spooled).substr(end) == std::string_view(rewritten).substr(end_out));

  // The DLP scanners and decoders on the raw bytes too: the walk only hands
  // them what it decoded.
  (void)policy::find_ssn(raw);
  (void)policy::find_card(raw);
  (void)policy::find_dob(raw);
  (void)policy::find_mrn(raw);
  (void)policy::decode_rfc2047(raw.substr(0, 998));
}

}  // namespace sealgate::fuzz
