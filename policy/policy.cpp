// Loads and validates a delivery policy file; see policy.hpp. Every problem is
// collected with its FILE:LINE:COL so an operator fixes the file in one pass;
// a policy with any error is refused whole, never half-applied.
#include "policy/policy.hpp"

#include "common/file_io.hpp"

#include "common/text.hpp"

#include <re2/re2.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "common/yaml_reader.hpp"

namespace sealgate::policy {
namespace {

constexpr std::array<std::pair<method, std::string_view>, 8> method_names{{
    {method::pgp, "pgp"}, {method::smime, "smime"}, {method::tls, "tls"}, {method::portal, "portal"},
    {method::plain, "plain"}, {method::reject, "reject"}, {method::hold, "hold"}, {method::defer, "defer"},
}};

bool valid_name(std::string_view s) {
  return !s.empty() && s.size() <= 64 && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
  });
}

// RE2, not std::regex: an operator's pattern such as (a+)+$ must not let one
// message pin a thread (backtracking is exponential, RE2 is linear and never
// recurses). Case-insensitive, as header values and file names vary in case;
// ^ and $ match at line ends, as they did line by line before.
std::shared_ptr<const re2::RE2> compile_regex(yaml_reader& r, const YAML::Node& n, const std::string& key,
                                              const std::string& text) {
  RE2::Options options;
  options.set_case_sensitive(false);
  options.set_log_errors(false);
  options.set_max_mem(8 << 20);
  if (re2::RE2 as_written(text, options); !as_written.ok()) {  // the error in the operator's own terms
    r.error(n.Mark(), key, "bad regex '" + text + "': " + as_written.error());
    return nullptr;
  }
  return std::make_shared<const re2::RE2>("(?m)" + text, options);
}

const std::vector<std::string> condition_keys{"any", "all", "not", "header", "subject_tag", "sender", "recipient",
                                              "auth_user", "listener", "body", "attachment", "dlp", "size_over",
                                              "size_under"};

std::vector<std::string> dlp_names() { return {"ssn", "mrn", "dob", "card"}; }

bool parse_condition(yaml_reader& r, const YAML::Node& n, const std::string& path, condition& out, int depth);

// A leaf that takes one string or a list (a list means any of them).
bool parse_leaf_list(yaml_reader& r, const YAML::Node& v, const std::string& key, condition::kind kind, condition& out,
                     bool is_regex) {
  std::vector<std::pair<std::string, YAML::Mark>> items;
  if (!r.strings(v, key, items)) return false;
  std::vector<condition> leaves;
  bool ok = true;
  for (size_t i = 0; i < items.size(); ++i) {
    condition c;
    c.type = kind;
    c.line = items[i].second.line + 1;
    if (is_regex) {
      c.regex_text = items[i].first;
      const YAML::Node& at = v.IsSequence() ? v[i] : v;
      c.regex = compile_regex(r, at, v.IsSequence() ? key + "[" + std::to_string(i) + "]" : key, c.regex_text);
      if (!c.regex) ok = false;
    } else if (kind == condition::kind::dlp) {
      static const std::map<std::string, dlp_pattern, std::less<>> names{
          {"ssn", dlp_pattern::ssn}, {"mrn", dlp_pattern::mrn}, {"dob", dlp_pattern::dob}, {"card", dlp_pattern::card}};
      auto it = names.find(items[i].first);
      if (it == names.end()) {
        const YAML::Node& at = v.IsSequence() ? v[i] : v;
        r.error(at.Mark(), v.IsSequence() ? key + "[" + std::to_string(i) + "]" : key,
                unknown_message("unknown pattern", items[i].first, dlp_names()));
        ok = false;
        continue;
      }
      c.dlp = it->second;
    } else {
      c.text = items[i].first;
    }
    leaves.push_back(std::move(c));
  }
  if (!ok) return false;
  if (leaves.size() == 1) {
    out = std::move(leaves.front());
  } else {
    out.type = condition::kind::any;
    out.children = std::move(leaves);
  }
  return true;
}

bool parse_condition(yaml_reader& r, const YAML::Node& n, const std::string& path, condition& out, int depth) {
  if (depth > 32) {
    r.error(n.Mark(), path, "conditions nest too deeply (at most 32 levels)");
    return false;
  }
  if (!r.check_map(n, path, condition_keys)) return false;
  if (n.size() != 1) {
    r.error(n.Mark(), path, "a condition has exactly one test; combine several with all: or any:");
    return false;
  }
  auto it = n.begin();
  if (!it->first.IsScalar()) return false;
  std::string k = it->first.Scalar();
  if (std::find(condition_keys.begin(), condition_keys.end(), k) == condition_keys.end()) return false;  // reported
  const YAML::Node v = it->second;
  std::string key = yaml_reader::join(path, k);
  out.line = n.Mark().line + 1;
  using K = condition::kind;
  if (k == "any" || k == "all") {
    out.type = k == "any" ? K::any : K::all;
    if (!v.IsSequence() || v.size() == 0) {
      r.error(v.Mark(), key, "must be a non-empty list of conditions");
      return false;
    }
    bool ok = true;
    for (size_t i = 0; i < v.size(); ++i) {
      condition c;
      if (parse_condition(r, v[i], key + "[" + std::to_string(i) + "]", c, depth + 1)) out.children.push_back(std::move(c));
      else ok = false;
    }
    return ok;
  }
  if (k == "not") {
    out.type = K::negate;
    condition c;
    if (!parse_condition(r, v, key, c, depth + 1)) return false;
    out.children.push_back(std::move(c));
    return true;
  }
  if (k == "header") {
    out.type = K::header;
    if (!r.check_map(v, key, {"name", "equals", "matches"})) return false;
    bool ok = true;
    if (auto name = v["name"]) ok &= r.nonempty(name, key + ".name", out.name);
    else {
      r.error(v.Mark(), key + ".name", "is required");
      ok = false;
    }
    if (v["equals"] && v["matches"]) {
      r.error(v.Mark(), key, "give equals or matches, not both");
      return false;
    }
    if (auto eq = v["equals"]) ok &= r.scalar(eq, key + ".equals", out.text);
    if (auto m = v["matches"]) {
      if (r.nonempty(m, key + ".matches", out.regex_text)) {
        out.regex = compile_regex(r, m, key + ".matches", out.regex_text);
        ok &= out.regex != nullptr;
      } else {
        ok = false;
      }
    }
    return ok;
  }
  if (k == "subject_tag") {
    out.type = K::subject_tag;
    return r.nonempty(v, key, out.text);
  }
  if (k == "size_over" || k == "size_under") {
    out.type = k == "size_over" ? K::size_over : K::size_under;
    return r.size(v, key, 0, "10MiB, 5MB or 1048576", out.size);
  }
  static const std::map<std::string, K, std::less<>> leaves{
      {"sender", K::sender}, {"recipient", K::recipient}, {"auth_user", K::auth_user}, {"listener", K::listener},
      {"body", K::body}, {"attachment", K::attachment}, {"dlp", K::dlp}};
  auto kind = leaves.at(k);
  return parse_leaf_list(r, v, key, kind, out, kind == K::body || kind == K::attachment);
}

const std::vector<std::string> rule_keys{"name", "description", "match", "methods", "tls",
                                         "on_failure", "reject_text", "strip_subject_tag", "portal"};
const std::vector<std::string> match_keys{"recipients", "domains", "senders", "listeners", "classes"};

}  // namespace

std::string_view to_string(method m) {
  for (const auto& [x, n] : method_names)
    if (x == m) return n;
  return "invalid";
}

std::optional<method> parse_method(std::string_view name) {
  for (const auto& [x, n] : method_names)
    if (n == name && x != method::defer) return x;
  return std::nullopt;
}

std::string_view to_string(on_failure f) {
  switch (f) {
    case on_failure::next: return "next";
    case on_failure::defer: return "defer";
    case on_failure::bounce: return "bounce";
  }
  return "invalid";
}

std::string_view to_string(tls_verify v) {
  switch (v) {
    case tls_verify::none: return "none";
    case tls_verify::ca: return "ca";
    case tls_verify::dane_or_mta_sts: return "dane-or-mta-sts";
  }
  return "invalid";
}

std::string_view to_string(dlp_pattern p) {
  switch (p) {
    case dlp_pattern::ssn: return "ssn";
    case dlp_pattern::mrn: return "mrn";
    case dlp_pattern::dob: return "dob";
    case dlp_pattern::card: return "card";
  }
  return "invalid";
}

bool glob_match(std::string_view pattern, std::string_view text) {
  // Iterative matcher with one backtrack point: linear in practice, no recursion
  // a hostile address could drive deep.
  size_t p = 0, t = 0, star = std::string_view::npos, mark = 0;
  constexpr auto lower = [](char c) { return lower_ascii(c); };
  while (t < text.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || (pattern[p] != '*' && lower(pattern[p]) == lower(text[t])))) {
      ++p, ++t;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

policy load_policy(const std::filesystem::path& file) {
  policy pol;
  pol.file = file;
  std::string bytes;
  {
    // read(2) fails on a directory, where a stream would yield an empty
    // document, that is a policy without rules.
    auto read = read_file(file);
    if (!read) throw policy_error(file.string() + ": cannot read file");
    bytes = std::move(*read);
  }
  pol.sha256 = sha256_hex(bytes);
  pol.source = bytes;
  yaml_reader r(file);
  auto document = r.parse(bytes);
  if (!document) throw policy_error(r.errors().front());
  const YAML::Node root = *document;
  if (!r.check_map(root, "", {"classes", "rules"})) throw policy_error(r.errors().front());

  std::set<std::string> class_names;
  if (auto cs = root["classes"]) {
    if (!cs.IsSequence()) {
      r.error(cs.Mark(), "classes", "must be a list of classes");
    } else {
      for (size_t i = 0; i < cs.size(); ++i) {
        std::string path = "classes[" + std::to_string(i) + "]";
        if (!r.check_map(cs[i], path, {"name", "description", "when"})) continue;
        message_class mc;
        mc.line = cs[i].Mark().line + 1;
        if (auto n = cs[i]["name"]) {
          if (r.nonempty(n, path + ".name", mc.name)) {
            if (!valid_name(mc.name)) r.error(n.Mark(), path + ".name", "'" + mc.name + "' is not a name (letters, digits, _ - .)");
            else if (!class_names.insert(mc.name).second) r.error(n.Mark(), path + ".name", "duplicate class name '" + mc.name + "'");
          }
        } else {
          r.error(cs[i].Mark(), path + ".name", "is required");
        }
        if (auto d = cs[i]["description"]) r.scalar(d, path + ".description", mc.description);
        if (auto w = cs[i]["when"]) parse_condition(r, w, path + ".when", mc.when, 0);
        else r.error(cs[i].Mark(), path + ".when", "is required");
        pol.classes.push_back(std::move(mc));
      }
    }
  }
  std::vector<std::string> class_list(class_names.begin(), class_names.end());

  std::vector<std::string> method_list;
  for (const auto& [m, n] : method_names)
    if (m != method::defer) method_list.emplace_back(n);

  auto rs = root["rules"];
  if (!rs || !rs.IsSequence() || rs.size() == 0) {
    r.error(rs ? rs.Mark() : YAML::Mark(), "rules", "must be a non-empty list of rules, the last one a default without match");
  } else {
    std::set<std::string> rule_names;
    std::optional<size_t> catch_all;  // index, not a pointer: rules grows
    bool last_has_match = false;
    for (size_t i = 0; i < rs.size(); ++i) {
      std::string path = "rules[" + std::to_string(i) + "]";
      const YAML::Node n = rs[i];
      if (!r.check_map(n, path, rule_keys)) continue;
      rule ru;
      ru.line = n.Mark().line + 1;
      ru.name = "rule" + std::to_string(i);
      if (auto nm = n["name"]) {
        if (r.nonempty(nm, path + ".name", ru.name)) {
          if (!valid_name(ru.name)) r.error(nm.Mark(), path + ".name", "'" + ru.name + "' is not a name (letters, digits, _ - .)");
          else if (!rule_names.insert(ru.name).second) r.error(nm.Mark(), path + ".name", "duplicate rule name '" + ru.name + "'");
        }
      } else {
        r.error(n.Mark(), path + ".name", "is required");
      }
      if (auto d = n["description"]) r.scalar(d, path + ".description", ru.description);
      if (auto m = n["match"]) {
        std::string mp = path + ".match";
        if (r.check_map(m, mp, match_keys)) {
          auto list = [&](const char* k, std::vector<std::string>& out) {
            auto v = m[k];
            if (!v) return;
            std::vector<std::pair<std::string, YAML::Mark>> items;
            r.strings(v, mp + "." + k, items);
            for (auto& [s, mark] : items) out.push_back(s);
          };
          list("recipients", ru.match.recipients);
          list("domains", ru.match.domains);
          list("senders", ru.match.senders);
          list("listeners", ru.match.listeners);
          if (auto v = m["classes"]) {
            std::vector<std::pair<std::string, YAML::Mark>> items;
            r.strings(v, mp + ".classes", items);
            for (size_t j = 0; j < items.size(); ++j) {
              if (!class_names.count(items[j].first)) {
                std::string k = mp + ".classes" + (v.IsSequence() ? "[" + std::to_string(j) + "]" : "");
                r.error(items[j].second, k, unknown_message("unknown class", items[j].first, class_list));
              }
              ru.match.classes.push_back(items[j].first);
            }
          }
          if (m.size() == 0) r.error(m.Mark(), mp, "is empty; leave match out for a rule that matches everything");
        }
      }
      if (auto ms = n["methods"]) {
        std::string mp = path + ".methods";
        if (!ms.IsSequence() || ms.size() == 0) {
          r.error(ms.Mark(), mp, "must be a non-empty list of methods (valid: " + word_list(method_list) + ")");
        } else {
          std::string terminal;
          for (size_t j = 0; j < ms.size(); ++j) {
            std::string k = mp + "[" + std::to_string(j) + "]", v;
            if (!r.nonempty(ms[j], k, v)) continue;
            auto m = parse_method(v);
            if (!m) {
              r.error(ms[j].Mark(), k, unknown_message("unknown method", v, method_list));
              continue;
            }
            if (!terminal.empty()) {
              r.error(ms[j].Mark(), k, "'" + v + "' can never be chosen: it comes after '" + terminal + "', which always applies");
              continue;
            }
            if (std::find(ru.methods.begin(), ru.methods.end(), *m) != ru.methods.end()) {
              r.error(ms[j].Mark(), k, "'" + v + "' is listed twice");
              continue;
            }
            if (*m == method::reject || *m == method::hold) terminal = v;
            ru.methods.push_back(*m);
          }
        }
      } else {
        r.error(n.Mark(), path + ".methods", "is required");
      }
      if (auto t = n["tls"]) {
        std::string tp = path + ".tls";
        if (r.check_map(t, tp, {"min_version", "verify"})) {
          if (auto v = t["min_version"]) {
            std::string s;
            if (r.scalar(v, tp + ".min_version", s)) {
              auto version = parse_tls_version(s);
              if (version && *version >= tls_floor) ru.tls.min_version = *version;
              else r.error(v.Mark(), tp + ".min_version", "unknown value '" + s + "' (valid: 1.2, 1.3)");
            }
          }
          if (auto v = t["verify"]) {
            r.one_of(v, tp + ".verify",
                     {{"none", tls_verify::none}, {"ca", tls_verify::ca}, {"dane-or-mta-sts", tls_verify::dane_or_mta_sts}},
                     ru.tls.verify);
          }
        }
      }
      r.enum_value(n, "on_failure", path, ru.on_failure,
                   {{"next", on_failure::next}, {"defer", on_failure::defer}, {"bounce", on_failure::bounce}});
      if (auto t = n["reject_text"]) r.nonempty(t, path + ".reject_text", ru.reject_text);
      if (auto s = n["strip_subject_tag"]) r.boolean(s, path + ".strip_subject_tag", ru.strip_subject_tag);
      if (auto pt = n["portal"]) {
        if (r.check_map(pt, path + ".portal", {"expire"})) {
          std::chrono::seconds expire{0};
          r.duration_value(pt, "expire", path + ".portal", expire, 366);
          ru.portal_expire = expire.count();
        }
        if (std::find(ru.methods.begin(), ru.methods.end(), method::portal) == ru.methods.end())
          r.error(pt.Mark(), path + ".portal", "is set but methods does not list portal");
      }
      if (ru.reject_text.empty() && std::find(ru.methods.begin(), ru.methods.end(), method::reject) != ru.methods.end())
        r.error(n.Mark(), path + ".reject_text", "is needed when methods lists reject (the text the sender's bounce carries)");

      if (catch_all)
        r.error(n.Mark(), path, "rule '" + ru.name + "' can never match: rule '" + pol.rules[*catch_all].name +
                                    "' (line " + std::to_string(pol.rules[*catch_all].line) +
                                    ") before it has no match and takes every recipient");
      last_has_match = n["match"].IsDefined();
      pol.rules.push_back(std::move(ru));
      if (!catch_all && !last_has_match) catch_all = pol.rules.size() - 1;
    }
    if (!pol.rules.empty() && last_has_match) {
      const YAML::Node last = rs[rs.size() - 1];
      r.error(last.Mark(), "rules", "no default rule: the last rule '" + pol.rules.back().name +
                                        "' has a match; end with a rule without match so every recipient gets a decision");
    }
  }

  if (!r.errors().empty()) throw policy_error(r.report());
  return pol;
}

std::string summary(const policy& p) {
  return std::to_string(p.rules.size()) + " rules, " + std::to_string(p.classes.size()) + " classes, sha256 " + p.sha256;
}

}  // namespace sealgate::policy
