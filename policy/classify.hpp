// Classification of one message for one recipient into the policy's named
// classes, with the reason each class matched. Pure: reads the message facts
// and the policy, never a file or the network.
#pragma once
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "policy/message_facts.hpp"
#include "policy/policy.hpp"

namespace sealgate::policy {

// The envelope and session facts that conditions may test.
struct envelope_facts {
  std::string sender;     // reverse-path; empty for the null sender
  std::string recipient;  // one forward-path
  std::string listener;   // name of the listener the message arrived on
  std::string auth_user;  // empty when the client did not authenticate
};

struct class_match {
  std::string name;
  std::string reason;  // the first test that made it match, for explain and logs
};

std::vector<class_match> classify(const policy& p, const message_facts& m, const envelope_facts& e);

// The content tests of every class (header, subject tag, body, attachment,
// DLP, size) evaluated once per message: the expensive part, the same for
// every recipient. Valid for the policy object it was made from.
struct content_verdicts {
  std::unordered_map<const condition*, bool> leaves;
};
content_verdicts scan_content(const policy& p, const message_facts& m);

// Classification from a scan: only the envelope tests are evaluated here, so a
// message to 1,000 recipients is read once, not 1,000 times.
std::vector<class_match> classify(const policy& p, const content_verdicts& content, const envelope_facts& e);

// Evaluates one condition; reason gets the leaf that decided a match.
bool evaluate(const condition& c, const message_facts& m, const envelope_facts& e, std::string* reason = nullptr);

// Built-in DLP scanners, exposed for tests. Each returns the first match or "".
std::string find_ssn(std::string_view text);
std::string find_card(std::string_view text);
std::string find_dob(std::string_view text);
std::string find_mrn(std::string_view text);
bool luhn_valid(std::string_view digits);

// The Subject with each tag removed (case-insensitive) and spaces tidied.
std::string strip_subject_tags(std::string_view subject, const std::vector<std::string>& tags);

}  // namespace sealgate::policy
