// RFC 8461 parsing and matching; see mta_sts.hpp. Pure: no I/O, no clock.
// Must never accept a policy it only half understood (a bad mode or max_age).
#include "gateway/facts/mta_sts.hpp"

#include "dns/message.hpp"

#include <algorithm>

namespace sealgate::gateway {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool alnum(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

void set(std::string* why, std::string text) {
  if (why) *why = std::move(text);
}

// A pattern is a host name, optionally with "*." in front (RFC 8461 3.2 sts-policy-mx-value).
bool valid_pattern(std::string_view p) {
  if (p.size() > 2 && p.substr(0, 2) == "*.") p.remove_prefix(2);
  if (p.empty() || p.size() > 253) return false;
  size_t label = 0;
  for (char c : p) {
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
    } else if (alnum(c) || c == '-' || c == '_') {
      if (++label > 63) return false;
    } else {
      return false;
    }
  }
  return label > 0;
}

}  // namespace

std::string_view to_string(sts_mode m) {
  switch (m) {
    case sts_mode::none: return "none";
    case sts_mode::testing: return "testing";
    case sts_mode::enforce: return "enforce";
  }
  return "?";
}

std::optional<std::string> parse_sts_txt_id(std::string_view record, std::string* why) {
  // sts-text-record = sts-version 1*(sts-field-delim sts-field) [sts-field-delim]; version first.
  std::optional<std::string> id;
  bool first = true;
  while (!record.empty() || first) {
    size_t semi = record.find(';');
    std::string_view field = trim(record.substr(0, semi));
    record = semi == std::string_view::npos ? std::string_view{} : record.substr(semi + 1);
    if (first) {
      if (field != "v=STSv1") {
        set(why, "does not begin with v=STSv1");
        return std::nullopt;
      }
      first = false;
      continue;
    }
    if (field.empty()) continue;  // the optional trailing delimiter
    size_t eq = field.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      set(why, "field without '='");
      return std::nullopt;
    }
    std::string_view key = field.substr(0, eq), value = field.substr(eq + 1);
    if (key == "id") {
      if (id) {
        set(why, "id given twice");
        return std::nullopt;
      }
      if (value.empty() || value.size() > 32 || !std::all_of(value.begin(), value.end(), alnum)) {
        set(why, "id must be 1 to 32 letters and digits");
        return std::nullopt;
      }
      id = std::string(value);
    }
    // Other fields are extensions (RFC 8461 3.1): ignored.
  }
  if (!id) set(why, "no id field");
  return id;
}

std::optional<std::string> select_sts_id(const std::vector<std::string>& records, std::string* why) {
  std::vector<const std::string*> sts;
  for (const auto& r : records)
    if (r.rfind("v=STSv1", 0) == 0) sts.push_back(&r);
  if (sts.empty()) {
    set(why, "no TXT record beginning with v=STSv1");
    return std::nullopt;
  }
  if (sts.size() > 1) {
    set(why, std::to_string(sts.size()) + " STS TXT records (RFC 8461 3.1 requires exactly one)");
    return std::nullopt;
  }
  return parse_sts_txt_id(*sts.front(), why);
}

std::optional<sts_policy> parse_sts_policy(std::string_view text, std::string* why) {
  sts_policy p;
  bool version = false, mode = false, max_age = false;
  size_t line_no = 0;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (trim(line).empty()) continue;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) {
      set(why, "line " + std::to_string(line_no) + ": no ':'");
      return std::nullopt;
    }
    std::string_view key = trim(line.substr(0, colon)), value = trim(line.substr(colon + 1));
    std::string where = "line " + std::to_string(line_no) + ": ";
    if (key == "version") {
      if (value != "STSv1") {
        set(why, where + "version must be STSv1");
        return std::nullopt;
      }
      version = true;
    } else if (key == "mode") {
      if (mode) {
        set(why, where + "mode given twice");
        return std::nullopt;
      }
      if (value == "enforce") p.mode = sts_mode::enforce;
      else if (value == "testing") p.mode = sts_mode::testing;
      else if (value == "none") p.mode = sts_mode::none;
      else {
        set(why, where + "mode must be enforce, testing or none");
        return std::nullopt;
      }
      mode = true;
    } else if (key == "max_age") {
      // 1*10DIGIT, at most 31557600 (one year).
      uint64_t n = 0;
      if (max_age || value.empty() || value.size() > 10 || !std::all_of(value.begin(), value.end(), [](char c) {
            return c >= '0' && c <= '9';
          })) {
        set(why, where + "max_age must be a number of seconds");
        return std::nullopt;
      }
      for (char c : value) n = n * 10 + static_cast<uint64_t>(c - '0');
      if (n > 31557600) {
        set(why, where + "max_age over 31557600");
        return std::nullopt;
      }
      p.max_age = static_cast<uint32_t>(n);
      max_age = true;
    } else if (key == "mx") {
      if (!valid_pattern(value)) {
        set(why, where + "bad mx pattern");
        return std::nullopt;
      }
      p.mx.push_back(dns::canonical_name(value));
    }
    // Unknown keys: extensions, ignored (RFC 8461 3.2).
  }
  if (!version || !mode || !max_age) {
    set(why, !version ? "no version" : !mode ? "no mode" : "no max_age");
    return std::nullopt;
  }
  if (p.mode != sts_mode::none && p.mx.empty()) {
    set(why, "no mx pattern");
    return std::nullopt;
  }
  return p;
}

bool sts_mx_matches(std::string_view pattern, std::string_view host) {
  std::string p = dns::canonical_name(pattern), h = dns::canonical_name(host);
  if (p.size() > 2 && p.compare(0, 2, "*.") == 0) {
    std::string_view suffix = std::string_view(p).substr(1);  // ".example.com"
    if (h.size() <= suffix.size() || h.compare(h.size() - suffix.size(), suffix.size(), suffix) != 0) return false;
    std::string_view first = std::string_view(h).substr(0, h.size() - suffix.size());
    return first.find('.') == std::string_view::npos;  // exactly one label
  }
  return !p.empty() && p == h;
}

bool sts_mx_allowed(const sts_policy& p, std::string_view host) {
  return std::any_of(p.mx.begin(), p.mx.end(), [&](const std::string& pat) { return sts_mx_matches(pat, host); });
}

std::optional<sts_policy_cache::entry> sts_policy_cache::get(const std::string& domain) const {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(domain);
  if (it == entries_.end() || it->second.expires <= now_()) return std::nullopt;
  return it->second;
}

void sts_policy_cache::put(const std::string& domain, std::string id, sts_policy policy) {
  std::lock_guard lock(mutex_);
  auto expires = now_() + std::chrono::seconds(policy.max_age);
  entries_[domain] = entry{std::move(id), std::move(policy), expires};
  if (entries_.size() > 10000) {  // drop what has expired rather than grow without bound
    auto now = now_();
    for (auto it = entries_.begin(); it != entries_.end();) it = it->second.expires <= now ? entries_.erase(it) : std::next(it);
  }
}

sts_policy_cache::step sts_policy_cache::plan(const std::optional<entry>& cached, bool txt_lookup_failed,
                                              const std::optional<std::string>& txt_id) {
  if (txt_id) return cached && cached->id == *txt_id ? step::use_cached : step::fetch;
  if (cached) return step::use_cached;
  return txt_lookup_failed ? step::unknown : step::none;
}

}  // namespace sealgate::gateway
