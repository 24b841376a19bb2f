// Classification: the MIME facts reader, every condition type, any/all/not,
// and the built-in DLP patterns with their look-alikes that must not match.
#include <gtest/gtest.h>

#include "policy/classify.hpp"
#include "policy/message_facts.hpp"
#include "policy_test_util.hpp"

using namespace sealgate::policy;
using policy_test::temp_policy;

namespace {

std::vector<std::string> names(const std::vector<class_match>& ms) {
  std::vector<std::string> out;
  for (const auto& m : ms) out.push_back(m.name);
  return out;
}

const char* multipart_message =
    "From: dr@clinic.example\r\n"
    "To: pat@example.org\r\n"
    "Subject: =?utf-8?Q?Results_=5Bsecure=5D?= for you\r\n"
    "Sensitivity: Company-Confidential\r\n"
    "X-Long: one\r\n"
    " two\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=\"b1\"\r\n"
    "\r\n"
    "preamble\r\n"
    "--b1\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Content-Transfer-Encoding: quoted-printable\r\n"
    "\r\n"
    "Patient DOB: 04/12/1961, see the sc=\r\n"
    "an=3D attached.\r\n"
    "--b1\r\n"
    "Content-Type: multipart/alternative; boundary=b2\r\n"
    "\r\n"
    "--b2\r\n"
    "Content-Type: text/html\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "\r\n"
    "PHA+TVJOOiA0NDU1NjY3NzwvcD4=\r\n"
    "--b2--\r\n"
    "--b1\r\n"
    "Content-Type: application/dicom; name=\"ignored.bin\"\r\n"
    "Content-Disposition: attachment; filename=\"knee.DCM\"\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "\r\n"
    "AAAA\r\n"
    "--b1\r\n"
    "Content-Type: application/pdf\r\n"
    "Content-Disposition: attachment; filename*=utf-8''r%C3%A9sum%C3%A9.pdf\r\n"
    "\r\n"
    "%PDF\r\n"
    "--b1--\r\n"
    "epilogue\r\n";

}  // namespace

TEST(MessageFacts, ReadsHeadersTextAndAttachmentNames) {
  auto m = read_message(multipart_message);
  EXPECT_EQ(m.size, std::string_view(multipart_message).size());
  EXPECT_EQ(m.subject, "Results [secure] for you");
  ASSERT_GE(m.headers.size(), 6u);
  EXPECT_EQ(m.headers[4].first, "X-Long");
  EXPECT_EQ(m.headers[4].second, "one two");
  EXPECT_EQ(m.text, "Patient DOB: 04/12/1961, see the scan= attached.\n<p>MRN: 44556677</p>");
  EXPECT_EQ(m.attachment_names, (std::vector<std::string>{"knee.DCM", "r\xc3\xa9sum\xc3\xa9.pdf"}));
}

TEST(MessageFacts, PlainMessageAndNoHeaders) {
  auto m = read_message("Subject: hi\nX-A: b\n\nbody line\n");
  EXPECT_EQ(m.subject, "hi");
  EXPECT_EQ(m.text, "body line\n");
  auto n = read_message("");
  EXPECT_TRUE(n.headers.empty());
  EXPECT_EQ(n.size, 0u);
}

TEST(MessageFacts, HostileInputNeverThrows) {
  // Truncated structures, missing boundaries, deep nesting, bad encodings.
  std::string deep;
  for (int i = 0; i < 200; ++i) deep += "Content-Type: multipart/mixed; boundary=x" + std::to_string(i) + "\r\n\r\n--x" + std::to_string(i) + "\r\n";
  for (const std::string& raw : {std::string("Content-Type: multipart/mixed; boundary=\r\n\r\n--\r\n"),
                                 std::string("Content-Type: multipart/mixed; boundary=\"b\r\n\r\n--b\r\nContent-Type: text/plain\r\n"),
                                 std::string("Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n@@@=\r\n"),
                                 std::string("Content-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=\r"),
                                 std::string("Subject: =?utf-8?B?\r\n"), std::string("Subject: =?x?Q?abc"),
                                 std::string(":\r\n \r\n\r\n"), std::string("\r\n\r\n\r\n"), std::string("\0\0\0", 3), deep}) {
    EXPECT_NO_THROW(read_message(raw));
  }
  // Deterministic mutations of a real multipart message: cut, flipped and
  // duplicated bytes around its structure (run under SEALGATE_SANITIZE too).
  std::string base = multipart_message;
  uint32_t seed = 12345;
  auto next = [&seed] { return seed = seed * 1103515245u + 12345u; };
  for (int i = 0; i < 3000; ++i) {
    std::string m = base;
    for (int k = next() % 8; k >= 0; --k) {
      size_t pos = next() % (m.size() + 1);
      switch (next() % 4) {
        case 0: m.resize(pos); break;
        case 1: if (pos < m.size()) m[pos] = static_cast<char>(next()); break;
        case 2: m.insert(pos, m.substr(pos, next() % 64)); break;
        case 3: m.insert(pos, next() % 2 ? "\r\n--b1" : "="); break;
      }
    }
    EXPECT_NO_THROW(read_message(m));
  }
  message_limits tight;
  tight.max_text = 10;
  EXPECT_EQ(read_message("Subject: x\r\n\r\n0123456789abcdef", tight).text, "0123456789");
}

TEST(MessageFacts, Decoders) {
  EXPECT_EQ(decode_base64("aGVs\r\nbG8="), "hello");
  EXPECT_EQ(decode_quoted_printable("a=3Db=\r\nc=\nd"), "a=bcd");
  EXPECT_EQ(decode_rfc2047("=?utf-8?B?W3NlY3VyZV0=?= =?utf-8?Q?_x?= y"), "[secure] x y");
  EXPECT_EQ(decode_rfc2047("no words here"), "no words here");
}

TEST(Dlp, SocialSecurityNumbers) {
  EXPECT_EQ(find_ssn("SSN 123-45-6789 on file"), "123-45-6789");
  EXPECT_EQ(find_ssn("ssn: 123 45 6789"), "123 45 6789");
  for (const char* never_issued : {"000-12-3456", "666-12-3456", "900-12-3456", "123-00-4567", "123-45-0000"})
    EXPECT_EQ(find_ssn(never_issued), "") << never_issued;
  for (const char* lookalike : {"123-45-67890", "1123-45-6789", "123-45 6789", "123456789", "x123-45-6789", "555-123-4567"})
    EXPECT_EQ(find_ssn(lookalike), "") << lookalike;
}

TEST(Dlp, PaymentCardsNeedTheLuhnCheck) {
  EXPECT_TRUE(luhn_valid("4111111111111111"));
  EXPECT_FALSE(luhn_valid("4111111111111112"));
  EXPECT_FALSE(luhn_valid(""));
  EXPECT_FALSE(luhn_valid("41x1"));
  EXPECT_EQ(find_card("card 4111 1111 1111 1111 exp 12/29"), "4111 1111 1111 1111");
  EXPECT_EQ(find_card("amex 3782-822463-10005."), "3782-822463-10005");
  EXPECT_EQ(find_card("5555555555554444"), "5555555555554444");
  EXPECT_EQ(find_card("4111 1111 1111 1112"), "");           // Luhn fails
  EXPECT_EQ(find_card("0000 0000 0000 0000"), "");           // passes Luhn, not a card
  EXPECT_EQ(find_card("order 9111111111111111"), "");        // no network starts with 9
  EXPECT_EQ(find_card("41111111111111111111111"), "");       // too long
  EXPECT_EQ(find_card("411111111111"), "");                  // too short
  EXPECT_EQ(find_card("ref4111111111111111"), "");           // glued to a word
}

TEST(Dlp, DatesOfBirthNeedALabel) {
  EXPECT_EQ(find_dob("DOB: 04/12/1961"), "04/12/1961");
  EXPECT_EQ(find_dob("Date of birth 1961-04-12."), "1961-04-12");
  EXPECT_EQ(find_dob("born on 31.12.1999"), "31.12.1999");
  EXPECT_EQ(find_dob("Invoice date 04/12/2024"), "");  // a date, but not a birth date
  EXPECT_EQ(find_dob("DOB: 13/13/1961"), "");           // no month 13 either way round
  EXPECT_EQ(find_dob("DOB: 04/12/1861"), "");
  EXPECT_EQ(find_dob("adobe 04/12/1961"), "");           // "dob" inside a word
}

TEST(Dlp, MedicalRecordNumbersNeedALabel) {
  EXPECT_EQ(find_mrn("MRN: 44556677"), "44556677");
  EXPECT_EQ(find_mrn("Medical record number A1234567"), "A1234567");
  EXPECT_EQ(find_mrn("mrn #123456"), "123456");
  EXPECT_EQ(find_mrn("MRN: 12345"), "");              // too short
  EXPECT_EQ(find_mrn("order number 44556677"), "");   // no label
  EXPECT_EQ(find_mrn("MRN: 44556677x"), "");
}

class ClassifyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    policy_ = t_.load(R"(classes:
  - name: phi
    when:
      any:
        - header: {name: X-Sensitivity, matches: '^(phi|hipaa)$'}
        - dlp: [ssn, mrn, dob]
        - attachment: '\.dcm$'
  - name: confidential
    when:
      any:
        - header: {name: Sensitivity, equals: company-confidential}
        - subject_tag: '[secure]'
        - dlp: card
  - name: bulk
    when:
      all:
        - header: {name: List-Unsubscribe}
        - not: {dlp: [ssn, card]}
  - name: from-billing
    when: {all: [{sender: '*@billing.example'}, {listener: submission}, {auth_user: 'svc-*'}]}
  - name: to-partner
    when: {recipient: ['*@partner.example', '*@other.example']}
  - name: big
    when: {size_over: 1KiB}
  - name: small
    when: {size_under: 100}
  - name: word
    when: {body: 'diagnos[ie]s'}
rules:
  - name: default
    methods: [tls]
)");
  }
  std::vector<std::string> classes(const std::string& raw, envelope_facts e = {}) {
    return names(classify(policy_, read_message(raw), e));
  }
  temp_policy t_;
  policy policy_;
};

TEST_F(ClassifyTest, Headers) {
  EXPECT_EQ(classes("X-Sensitivity: PHI\r\n\r\n" + std::string(100, 'x')),
            std::vector<std::string>{"phi"});
  EXPECT_EQ(classes("X-Sensitivity: phi-ish\r\n\r\n" + std::string(100, 'x')), std::vector<std::string>{});
  EXPECT_EQ(classes("Sensitivity:  Company-Confidential \r\n\r\n" + std::string(100, 'x')),
            std::vector<std::string>{"confidential"});
}

TEST_F(ClassifyTest, SubjectTag) {
  EXPECT_EQ(classes("Subject: Lab results [SECURE]\r\n\r\n" + std::string(100, 'x')),
            std::vector<std::string>{"confidential"});
  EXPECT_EQ(classes("Subject: Lab results [secure\r\n\r\n" + std::string(100, 'x')), std::vector<std::string>{});
  EXPECT_EQ(strip_subject_tags("Lab [SECURE] results", {"[secure]"}), "Lab results");
  EXPECT_EQ(strip_subject_tags("[secure] Lab results", {"[secure]"}), "Lab results");
  EXPECT_EQ(strip_subject_tags("Lab results", {"[secure]"}), "Lab results");
}

TEST_F(ClassifyTest, DlpAndAttachments) {
  std::string pad(100, ' ');
  EXPECT_EQ(classes("\r\nSSN 123-45-6789" + pad), std::vector<std::string>{"phi"});
  EXPECT_EQ(classes("\r\nSSN 000-12-3456" + pad), std::vector<std::string>{});
  EXPECT_EQ(classes("\r\ncard 4111 1111 1111 1111" + pad), std::vector<std::string>{"confidential"});
  EXPECT_EQ(classes("\r\ncard 4111 1111 1111 1112" + pad), std::vector<std::string>{});
  EXPECT_EQ(classes("\r\nDOB 1961-04-12" + pad), std::vector<std::string>{"phi"});
  EXPECT_EQ(classes("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Disposition: attachment; "
                    "filename=CT.DCM\r\n\r\nxx\r\n--b--\r\n" + pad),
            std::vector<std::string>{"phi"});
  EXPECT_EQ(classes("\r\nthe diagnosis is" + pad), std::vector<std::string>{"word"});
}

TEST_F(ClassifyTest, AnyAllNot) {
  std::string pad(100, ' ');
  EXPECT_EQ(classes("List-Unsubscribe: <mailto:u@x>\r\n\r\nnews" + pad), std::vector<std::string>{"bulk"});
  // all: fails when the not: part sees a card number.
  EXPECT_EQ(classes("List-Unsubscribe: <mailto:u@x>\r\n\r\n4111111111111111" + pad),
            std::vector<std::string>{"confidential"});
  envelope_facts e{"invoices@billing.example", "x@y.example", "submission", "svc-billing"};
  EXPECT_EQ(classes("\r\n" + pad, e), std::vector<std::string>{"from-billing"});
  e.auth_user = "";  // auth_user never matches an unauthenticated client
  EXPECT_EQ(classes("\r\n" + pad, e), std::vector<std::string>{});
  e = {"a@b.example", "Someone@Partner.Example", "smarthost", ""};
  EXPECT_EQ(classes("\r\n" + pad, e), std::vector<std::string>{"to-partner"});
}

TEST_F(ClassifyTest, SizeAndReasons) {
  EXPECT_EQ(classes("\r\nx"), std::vector<std::string>{"small"});
  EXPECT_EQ(classes("\r\n" + std::string(2000, 'x')), std::vector<std::string>{"big"});
  auto ms = classify(policy_, read_message("X-Sensitivity: hipaa\r\n\r\nMRN: 44556677" + std::string(100, ' ')), {});
  ASSERT_EQ(ms.size(), 1u);
  EXPECT_EQ(ms[0].reason, "header X-Sensitivity matches '^(phi|hipaa)$'");
  ms = classify(policy_, read_message("\r\nMRN: 44556677" + std::string(100, ' ')), {});
  ASSERT_EQ(ms.size(), 1u);
  EXPECT_EQ(ms[0].reason, "dlp mrn");  // names the pattern, never the number
  envelope_facts e{"invoices@billing.example", "x@y.example", "submission", "svc-billing"};
  ms = classify(policy_, read_message("\r\n" + std::string(100, ' ')), e);
  ASSERT_EQ(ms.size(), 1u);
  EXPECT_EQ(ms[0].reason,
            "sender matches '*@billing.example' and listener matches 'submission' and authenticated user matches 'svc-*'");
}

TEST_F(ClassifyTest, HugeBodyDoesNotExhaustTheStack) {
  std::string raw = "\r\n" + std::string(3 * 1024 * 1024, 'a');
  EXPECT_EQ(classes(raw), std::vector<std::string>{"big"});
}

TEST(Classify, BacktrackingPatternsCostLinearTime) {
  // (a+)+$ over 40 x "a!" took std::regex exponential time: one message
  // pinned the event loop, also after a restart. RE2 answers at once.
  temp_policy t;
  auto p = t.load("classes:\n  - name: evil\n    when: {any: [{body: '(a+)+$'}, {header: {name: X-A, matches: '(a|aa)+$'}}]}\n"
                  "rules:\n  - name: default\n    methods: [tls]\n");
  std::string hostile;
  for (int i = 0; i < 40; ++i) hostile += "a!";
  auto m = read_message("X-A: " + hostile + "b\r\n\r\n" + hostile + "b\r\n");
  EXPECT_TRUE(classify(p, m, {}).empty());
  EXPECT_EQ(names(classify(p, read_message("\r\nxx aaaa"), {})), std::vector<std::string>{"evil"});
}

TEST(Classify, BodyRegexSeesTheWholeTextNotPieces) {
  // The body was searched in 4096-byte pieces: a keyword across a piece
  // boundary was missed, and ^ matched in the middle of a line at 4096.
  temp_policy t;
  auto p = t.load("classes:\n  - name: word\n    when: {body: 'diagnosis'}\n  - name: start\n    when: {body: '^secret'}\n"
                  "rules:\n  - name: default\n    methods: [tls]\n");
  std::string across = "\r\n" + std::string(4096 - 4, 'x') + "diagnosis follows\r\n";
  auto m = read_message(across);
  ASSERT_EQ(m.text.find("diagnosis"), 4096u - 4);
  EXPECT_EQ(names(classify(p, m, {})), std::vector<std::string>{"word"});
  std::string midline = "\r\n" + std::string(4096, 'x') + "secret\r\n";
  EXPECT_TRUE(classify(p, read_message(midline), {}).empty());
  EXPECT_EQ(names(classify(p, read_message("\r\nfirst line\r\nsecret second\r\n"), {})),
            std::vector<std::string>{"start"});
}

TEST(Classify, OneScanPerMessageGivesTheSameClassesForEveryRecipient) {
  temp_policy t;
  auto p = t.load("classes:\n  - name: phi\n    when: {all: [{dlp: ssn}, {recipient: '*@partner.example'}]}\n"
                  "  - name: nophi\n    when: {not: {dlp: ssn}}\n"
                  "rules:\n  - name: default\n    methods: [tls]\n");
  auto m = read_message("\r\nSSN 123-45-6789\r\n");
  auto scan = scan_content(p, m);
  for (const char* rcpt : {"a@partner.example", "b@elsewhere.example"}) {
    envelope_facts e{"s@x.example", rcpt, "smarthost", ""};
    auto direct = classify(p, m, e);
    auto scanned = classify(p, scan, e);
    EXPECT_EQ(names(direct), names(scanned)) << rcpt;
    ASSERT_EQ(direct.size(), scanned.size());
    for (size_t i = 0; i < direct.size(); ++i) EXPECT_EQ(direct[i].reason, scanned[i].reason);
  }
  EXPECT_EQ(names(classify(p, scan, {"s@x.example", "a@partner.example", "", ""})), std::vector<std::string>{"phi"});
}
