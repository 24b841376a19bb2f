// The delivery policy model (classes, rules, methods) and its YAML loader.
// Loading is the only place that reads a file; the model itself is immutable
// data that decide() and classify() read. A policy with any error is refused whole.
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "policy/tls_level.hpp"

namespace re2 {
class RE2;
}

namespace sealgate::policy {

// Delivery methods in the words of the policy file. defer is never written in a
// policy: it is what decide() answers when a fact it needs is unknown.
enum class method { pgp, smime, tls, portal, plain, reject, hold, defer };
std::string_view to_string(method m);
// Only the names a rule may list (defer is refused).
std::optional<method> parse_method(std::string_view name);

// What the gateway does when the chosen method fails at delivery time.
enum class on_failure { next, defer, bounce };
std::string_view to_string(on_failure f);

// How the recipient's MX certificate must be authenticated for the tls method.
// Ordered: a domain's own DANE or MTA-STS policy may raise it, never lower it.
enum class tls_verify { none = 0, ca = 1, dane_or_mta_sts = 2 };
std::string_view to_string(tls_verify v);

struct tls_requirement {
  tls_version min_version = tls_floor;
  tls_verify verify = tls_verify::none;
};

enum class dlp_pattern { ssn, mrn, dob, card };
std::string_view to_string(dlp_pattern p);

// A classification condition: a tree of any/all/not over leaf tests.
struct condition {
  enum class kind {
    any, all, negate,
    header,       // name, and optionally equals (text) or matches (regex); else "present"
    subject_tag,  // text, case-insensitive substring of Subject
    sender, recipient, auth_user, listener,  // glob in text
    body, attachment,                        // regex over decoded text / attachment names
    dlp,                                     // built-in pattern
    size_over, size_under,
  };
  kind type = kind::all;
  std::string name;
  std::string text;
  std::string regex_text;
  std::shared_ptr<const re2::RE2> regex;  // RE2: linear time, no recursion, whatever the pattern
  dlp_pattern dlp = dlp_pattern::ssn;
  uint64_t size = 0;
  std::vector<condition> children;
  int line = 0;
};

struct message_class {
  std::string name;
  std::string description;
  condition when;
  int line = 0;
};

// A rule matches when every key present matches (and within a list, any entry).
struct rule_match {
  std::vector<std::string> recipients;  // address globs
  std::vector<std::string> domains;     // recipient domain globs
  std::vector<std::string> senders;     // envelope sender globs
  std::vector<std::string> listeners;   // listener names
  std::vector<std::string> classes;     // any of these classes
  bool unconditional() const {
    return recipients.empty() && domains.empty() && senders.empty() && listeners.empty() && classes.empty();
  }
};

struct rule {
  std::string name;
  std::string description;
  rule_match match;
  std::vector<method> methods;
  tls_requirement tls;
  enum on_failure on_failure = on_failure::next;
  std::string reject_text;
  bool strip_subject_tag = false;
  // portal: {expire: 30d}: how long a deposit stays readable; 0 = the
  // configuration's portal.expire.
  int64_t portal_expire = 0;
  int line = 0;
};

struct policy {
  std::filesystem::path file;
  std::string sha256;  // hex of the file's bytes, so logs and reports name the exact policy
  std::string source;  // the file's bytes, kept in the record's policy history
  std::vector<message_class> classes;
  std::vector<rule> rules;  // the last one is unconditional (the default)
};

class policy_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Throws policy_error whose what() holds one "FILE:LINE:COL: key: message" line per problem.
policy load_policy(const std::filesystem::path& file);

// One line for logs and `policy check`: classes, rules and the content hash.
std::string summary(const policy& p);

// Case-insensitive glob with * and ?; the one matcher rules and conditions share.
bool glob_match(std::string_view pattern, std::string_view text);

}  // namespace sealgate::policy
