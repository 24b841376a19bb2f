// Classification and the built-in DLP patterns; see classify.hpp. Reasons name
// the test that matched, never the matched text: they reach logs and explain
// output, and message content must not.
#include "policy/classify.hpp"

#include "common/text.hpp"

#include <re2/re2.h>

#include <algorithm>
#include <cctype>

namespace sealgate::policy {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_word(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

std::string lowered(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = lower_ascii(c);
  return out;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return lower_ascii(x) == lower_ascii(y); });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Reads exactly n digits at pos; returns -1 if they are not all there.
int read_digits(std::string_view s, size_t pos, size_t n) {
  if (pos + n > s.size()) return -1;
  int v = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!is_digit(s[pos + i])) return -1;
    v = v * 10 + (s[pos + i] - '0');
  }
  return v;
}

// A run of 1..max digits at pos; returns the count (0 when none).
size_t digit_run(std::string_view s, size_t pos, size_t max) {
  size_t n = 0;
  while (pos + n < s.size() && is_digit(s[pos + n]) && n <= max) ++n;
  return n;
}

// Positions just after each keyword found at a word start.
std::vector<size_t> after_keywords(const std::string& low, std::initializer_list<std::string_view> keywords) {
  std::vector<size_t> out;
  for (auto k : keywords) {
    for (size_t pos = low.find(k); pos != std::string::npos; pos = low.find(k, pos + 1)) {
      if (pos > 0 && is_word(low[pos - 1])) continue;
      size_t end = pos + k.size();
      if (end < low.size() && is_word(low[end]) && is_word(k.back())) continue;
      out.push_back(end);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

// A calendar date at pos: YYYY-MM-DD, or A/B/YYYY (A and B a month and a day
// in either order, US or European), with / - or . as separator.
size_t date_at(std::string_view s, size_t pos) {
  size_t a = digit_run(s, pos, 4);
  if (a == 0 || pos + a >= s.size()) return 0;
  char sep = s[pos + a];
  if (sep != '/' && sep != '-' && sep != '.') return 0;
  size_t b_pos = pos + a + 1;
  size_t b = digit_run(s, b_pos, 2);
  if (b == 0 || b > 2 || b_pos + b >= s.size() || s[b_pos + b] != sep) return 0;
  size_t c_pos = b_pos + b + 1;
  size_t c = digit_run(s, c_pos, 4);
  if (c_pos + c < s.size() && is_digit(s[c_pos + c])) return 0;
  int x = read_digits(s, pos, a), y = read_digits(s, b_pos, b), z = read_digits(s, c_pos, c);
  auto day_ok = [](int d) { return d >= 1 && d <= 31; };
  auto month_ok = [](int m) { return m >= 1 && m <= 12; };
  auto year_ok = [](int yr) { return yr >= 1900 && yr <= 2099; };
  bool ok = false;
  if (a == 4 && (c == 1 || c == 2)) ok = year_ok(x) && month_ok(y) && day_ok(z);
  else if (a <= 2 && (c == 4)) ok = year_ok(z) && ((month_ok(x) && day_ok(y)) || (month_ok(y) && day_ok(x)));
  return ok ? c_pos + c - pos : 0;
}

// Skips separators a form puts between a label and its value ("DOB: ", "MRN # ").
size_t skip_label_separators(std::string_view s, size_t pos, size_t max) {
  size_t end = std::min(s.size(), pos + max);
  while (pos < end && (s[pos] == ' ' || s[pos] == '\t' || s[pos] == ':' || s[pos] == '#' || s[pos] == '-' ||
                       s[pos] == '=' || s[pos] == '.'))
    ++pos;
  return pos;
}

std::string describe(const condition& c);

std::string describe_list(const std::vector<condition>& cs, std::string_view sep) {
  std::string out;
  for (const auto& c : cs) out += (out.empty() ? "" : std::string(sep)) + describe(c);
  return out;
}

std::string describe(const condition& c) {
  using K = condition::kind;
  switch (c.type) {
    case K::any: return "any of (" + describe_list(c.children, ", ") + ")";
    case K::all: return "all of (" + describe_list(c.children, ", ") + ")";
    case K::negate: return "not (" + (c.children.empty() ? std::string() : describe(c.children.front())) + ")";
    case K::header:
      if (!c.regex_text.empty()) return "header " + c.name + " matches '" + c.regex_text + "'";
      if (c.regex == nullptr && !c.text.empty()) return "header " + c.name + " equals '" + c.text + "'";
      return "header " + c.name + " present";
    case K::subject_tag: return "subject tag '" + c.text + "'";
    case K::sender: return "sender matches '" + c.text + "'";
    case K::recipient: return "recipient matches '" + c.text + "'";
    case K::auth_user: return "authenticated user matches '" + c.text + "'";
    case K::listener: return "listener matches '" + c.text + "'";
    case K::body: return "body matches '" + c.regex_text + "'";
    case K::attachment: return "attachment name matches '" + c.regex_text + "'";
    case K::dlp: return "dlp " + std::string(to_string(c.dlp));
    case K::size_over: return "size over " + std::to_string(c.size) + " bytes";
    case K::size_under: return "size under " + std::to_string(c.size) + " bytes";
  }
  return "?";
}

// The whole text at once: RE2 runs in linear time without recursion, so a
// hostile body costs no more than its length, and a match across what were
// once 4096-byte pieces is found.
bool search_text(const re2::RE2& re, std::string_view text) {
  return re2::RE2::PartialMatch(re2::StringPiece(text.data(), text.size()), re);
}

bool dlp_match(dlp_pattern p, std::string_view text) {
  switch (p) {
    case dlp_pattern::ssn: return !find_ssn(text).empty();
    case dlp_pattern::card: return !find_card(text).empty();
    case dlp_pattern::dob: return !find_dob(text).empty();
    case dlp_pattern::mrn: return !find_mrn(text).empty();
  }
  return false;
}

}  // namespace

bool luhn_valid(std::string_view digits) {
  if (digits.empty()) return false;
  int sum = 0;
  bool twice = false;
  for (auto it = digits.rbegin(); it != digits.rend(); ++it) {
    if (!is_digit(*it)) return false;
    int d = *it - '0';
    if (twice && (d *= 2) > 9) d -= 9;
    sum += d;
    twice = !twice;
  }
  return sum % 10 == 0;
}

std::string find_ssn(std::string_view t) {
  // AAA-GG-SSSS with - or space; never-issued values are refused (SSA: area
  // 000, 666 and 900-999, group 00, serial 0000), which removes most
  // look-alikes such as 000-12-3456 or phone-number fragments.
  for (size_t i = 0; i + 11 <= t.size(); ++i) {
    if (!is_digit(t[i]) || (i > 0 && (is_word(t[i - 1]) || t[i - 1] == '-'))) continue;
    char sep = t[i + 3];
    if (sep != '-' && sep != ' ') continue;
    int area = read_digits(t, i, 3), group = read_digits(t, i + 4, 2), serial = read_digits(t, i + 7, 4);
    if (area < 0 || group < 0 || serial < 0 || t[i + 6] != sep) continue;
    if (i + 11 < t.size() && (is_word(t[i + 11]) || t[i + 11] == '-')) continue;
    if (area == 0 || area == 666 || area >= 900 || group == 0 || serial == 0) continue;
    return std::string(t.substr(i, 11));
  }
  return "";
}

std::string find_card(std::string_view t) {
  // 13-19 digits, optionally grouped by single spaces or dashes, Luhn-valid,
  // starting as the major networks do (2-6). Every repeated digit is refused
  // (0000 0000 0000 0000 passes Luhn).
  for (size_t i = 0; i < t.size(); ++i) {
    if (!is_digit(t[i]) || (i > 0 && (is_word(t[i - 1]) || t[i - 1] == '-' || t[i - 1] == '.'))) continue;
    std::string digits;
    size_t j = i;
    while (j < t.size() && digits.size() <= 19) {
      if (is_digit(t[j])) {
        digits += t[j++];
      } else if ((t[j] == ' ' || t[j] == '-') && j + 1 < t.size() && is_digit(t[j + 1]) && !digits.empty()) {
        ++j;
      } else {
        break;
      }
    }
    if (digits.size() < 13 || digits.size() > 19) {
      i = j;
      continue;
    }
    if (j < t.size() && is_word(t[j])) {
      i = j;
      continue;
    }
    bool all_same = std::all_of(digits.begin(), digits.end(), [&](char c) { return c == digits[0]; });
    if (digits[0] >= '2' && digits[0] <= '6' && !all_same && luhn_valid(digits)) return std::string(t.substr(i, j - i));
    i = j;
  }
  return "";
}

std::string find_dob(std::string_view t) {
  // Only a date next to a birth label counts: every date in a message is not
  // a date of birth, and a DLP rule that fires on every invoice is ignored.
  std::string low = lowered(t);
  for (size_t pos : after_keywords(low, {"dob", "d.o.b.", "date of birth", "birth date", "birthdate", "born on", "born"})) {
    size_t p = skip_label_separators(low, pos, 12);
    if (size_t n = date_at(low, p)) return std::string(t.substr(p, n));
  }
  return "";
}

std::string find_mrn(std::string_view t) {
  // A medical record number is a label followed by 6-12 digits, optionally
  // after up to three letters (A1234567): hospitals use their own formats,
  // but the label is what makes it PHI.
  std::string low = lowered(t);
  for (size_t pos : after_keywords(low, {"mrn", "medical record number", "medical record no", "medical record #",
                                         "medical record", "patient id", "patient number"})) {
    size_t p = skip_label_separators(low, pos, 12);
    size_t letters = 0;
    while (p + letters < low.size() && letters < 4 && std::isalpha(static_cast<unsigned char>(low[p + letters]))) ++letters;
    if (letters > 3) continue;
    size_t digits = digit_run(low, p + letters, 13);
    if (digits < 6 || digits > 12) continue;
    size_t end = p + letters + digits;
    if (end < low.size() && is_word(low[end])) continue;
    return std::string(t.substr(p, end - p));
  }
  return "";
}

namespace {

bool is_content_test(condition::kind k) {
  using K = condition::kind;
  return k == K::header || k == K::subject_tag || k == K::body || k == K::attachment || k == K::dlp ||
         k == K::size_over || k == K::size_under;
}

// A content test against the message itself.
bool content_test(const condition& c, const message_facts& m) {
  using K = condition::kind;
  switch (c.type) {
    case K::header:
      for (const auto& [name, value] : m.headers) {
        if (!iequals(name, c.name)) continue;
        if (c.regex) {
          if (search_text(*c.regex, value)) return true;
        } else if (c.text.empty() || iequals(trim(value), trim(c.text))) {
          return true;
        }
      }
      return false;
    case K::subject_tag: return lowered(m.subject).find(lowered(c.text)) != std::string::npos;
    case K::body: return c.regex && search_text(*c.regex, m.text);
    case K::attachment:
      for (const auto& n : m.attachment_names)
        if (c.regex && search_text(*c.regex, n)) return true;
      return false;
    case K::dlp: return dlp_match(c.dlp, m.text);
    case K::size_over: return m.size > c.size;
    case K::size_under: return m.size < c.size;
    default: return false;
  }
}

// Where content tests get their answer: the message, or a scan of it.
struct content_source {
  const message_facts* message = nullptr;
  const content_verdicts* verdicts = nullptr;
  bool test(const condition& c) const {
    if (verdicts) {
      auto it = verdicts->leaves.find(&c);
      return it != verdicts->leaves.end() && it->second;
    }
    return content_test(c, *message);
  }
};

bool evaluate_with(const condition& c, const content_source& src, const envelope_facts& e, std::string* reason) {
  using K = condition::kind;
  auto hit = [&](bool matched) {
    if (matched && reason) *reason = describe(c);
    return matched;
  };
  if (is_content_test(c.type)) return hit(src.test(c));
  switch (c.type) {
    case K::any:
      for (const auto& ch : c.children)
        if (evaluate_with(ch, src, e, reason)) return true;
      return false;
    case K::all: {
      std::string all_reasons;
      for (const auto& ch : c.children) {
        std::string r;
        if (!evaluate_with(ch, src, e, &r)) return false;
        all_reasons += (all_reasons.empty() ? "" : " and ") + r;
      }
      if (reason) *reason = all_reasons;
      return true;
    }
    case K::negate:
      return hit(!c.children.empty() && !evaluate_with(c.children.front(), src, e, nullptr));
    case K::sender: return hit(glob_match(c.text, e.sender));
    case K::recipient: return hit(glob_match(c.text, e.recipient));
    case K::auth_user: return hit(!e.auth_user.empty() && glob_match(c.text, e.auth_user));
    case K::listener: return hit(glob_match(c.text, e.listener));
    default: return false;
  }
}

void scan_tree(const condition& c, const message_facts& m, content_verdicts& out) {
  if (is_content_test(c.type)) {
    out.leaves.emplace(&c, content_test(c, m));
    return;
  }
  for (const auto& ch : c.children) scan_tree(ch, m, out);
}

std::vector<class_match> classify_with(const policy& p, const content_source& src, const envelope_facts& e) {
  std::vector<class_match> out;
  for (const auto& cls : p.classes) {
    std::string reason;
    if (evaluate_with(cls.when, src, e, &reason)) out.push_back({cls.name, reason});
  }
  return out;
}

}  // namespace

bool evaluate(const condition& c, const message_facts& m, const envelope_facts& e, std::string* reason) {
  return evaluate_with(c, content_source{&m, nullptr}, e, reason);
}

std::vector<class_match> classify(const policy& p, const message_facts& m, const envelope_facts& e) {
  return classify_with(p, content_source{&m, nullptr}, e);
}

content_verdicts scan_content(const policy& p, const message_facts& m) {
  content_verdicts out;
  for (const auto& cls : p.classes) scan_tree(cls.when, m, out);
  return out;
}

std::vector<class_match> classify(const policy& p, const content_verdicts& content, const envelope_facts& e) {
  return classify_with(p, content_source{nullptr, &content}, e);
}

std::string strip_subject_tags(std::string_view subject, const std::vector<std::string>& tags) {
  std::string s(subject);
  for (const auto& tag : tags) {
    if (tag.empty()) continue;
    for (;;) {
      std::string low = lowered(s);
      size_t pos = low.find(lowered(tag));
      if (pos == std::string::npos) break;
      s.erase(pos, tag.size());
    }
  }
  std::string out;
  for (char c : s)
    if (!(c == ' ' && (out.empty() || out.back() == ' '))) out += c;
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

}  // namespace sealgate::policy
