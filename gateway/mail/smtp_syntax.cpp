// Parsers for SMTP command arguments; see smtp_syntax.hpp. Refuses rather than
// repairs: a path we cannot read exactly is a 5xx for that command, never a guess.
#include "gateway/mail/smtp_syntax.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>

#include "dns/domain_name.hpp"

namespace sealgate::gateway {
namespace {

bool ieq_prefix(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i)
    if (std::toupper(static_cast<unsigned char>(s[i])) != prefix[i]) return false;
  return true;
}

std::string upper(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

bool is_atext(unsigned char c, bool utf8) {
  if (std::isalnum(c)) return true;
  if (utf8 && c >= 0x80) return true;
  return std::string_view("!#$%&'*+-/=?^_`{|}~").find(static_cast<char>(c)) != std::string_view::npos;
}

enum class address_role { sender, recipient };

// Parses "<local@domain>" (or "<>" for a sender) and returns the address
// without brackets; rest receives what follows the closing bracket.
parse_result<std::string> parse_path(std::string_view text, address_role role, bool utf8, std::string_view& rest) {
  parse_result<std::string> r;
  auto bad = [&](int code, const char* status, std::string msg) {
    r.error = {code, status, std::move(msg)};
    return r;
  };
  if (text.empty() || text.front() != '<') return bad(501, "5.5.4", "Syntax: address must be enclosed in <>");
  // Find the closing bracket outside a quoted string.
  size_t close = std::string_view::npos;
  bool quoted = false;
  for (size_t i = 1; i < text.size(); ++i) {
    char c = text[i];
    if (quoted && c == '\\') { ++i; continue; }
    if (c == '"') quoted = !quoted;
    else if (!quoted && c == '>') { close = i; break; }
  }
  if (close == std::string_view::npos) return bad(501, "5.5.4", "Syntax: missing closing >");
  std::string_view addr = text.substr(1, close - 1);
  rest = text.substr(close + 1);
  if (addr.size() > 254) return bad(501, "5.1.3", "Address too long (RFC 5321 4.5.3.1.3)");
  // RFC 6531 3.3: a non-ASCII address is UTF-8; anything else (\xff\xfe) is
  // no address at all, and would reach logs, the record and the next hop.
  if (utf8 && !dns::is_valid_utf8(addr)) return bad(553, "5.6.7", "Address is not valid UTF-8");
  if (addr.empty()) {
    if (role == address_role::sender) { r.value = std::string(); return r; }
    return bad(501, "5.1.3", "Null recipient not allowed");
  }
  if (addr.front() == '@')
    return bad(role == address_role::recipient ? 554 : 501, role == address_role::recipient ? "5.7.1" : "5.1.7",
               "Source routes are not accepted");
  // Local part: dot-string or quoted-string; the domain follows the last '@' outside quotes.
  std::string_view local, domain;
  bool local_quoted = false;
  if (addr.front() == '"') {
    size_t i = 1;
    for (; i < addr.size(); ++i) {
      unsigned char c = static_cast<unsigned char>(addr[i]);
      if (c == '\\') {
        if (i + 1 >= addr.size()) return bad(501, "5.1.3", "Bad quoted local part");
        unsigned char n = static_cast<unsigned char>(addr[i + 1]);
        if (n < 32 || n > 126) return bad(501, "5.1.3", "Bad quoted local part");
        ++i;
        continue;
      }
      if (c == '"') break;
      bool qtext = (c >= 32 && c <= 126 && c != '"' && c != '\\') || (utf8 && c >= 0x80);
      if (!qtext) return bad(c >= 0x80 ? 553 : 501, c >= 0x80 ? "5.6.7" : "5.1.3", "Bad character in address");
    }
    if (i >= addr.size() || i + 1 >= addr.size() || addr[i + 1] != '@') return bad(501, "5.1.3", "Bad quoted local part");
    local = addr.substr(0, i + 1);
    domain = addr.substr(i + 2);
    local_quoted = true;
  } else {
    auto at = addr.rfind('@');
    if (at == std::string_view::npos) return bad(501, "5.1.3", "Address must have a domain");
    local = addr.substr(0, at);
    domain = addr.substr(at + 1);
    if (local.empty()) return bad(501, "5.1.3", "Empty local part");
    bool prev_dot = true;
    for (unsigned char c : local) {
      if (c == '.') {
        if (prev_dot) return bad(501, "5.1.3", "Bad local part (empty atom)");
        prev_dot = true;
        continue;
      }
      prev_dot = false;
      if (c >= 0x80 && !utf8) return bad(553, "5.6.7", "Non-ASCII address requires SMTPUTF8 (RFC 6531)");
      if (c == '@') {
        if (role == address_role::recipient) return bad(554, "5.7.1", "Multiple @ in address are not accepted");
        return bad(501, "5.1.7", "Bad sender address syntax");
      }
      if (!is_atext(c, utf8)) return bad(501, "5.1.3", "Bad character in address");
    }
    if (prev_dot) return bad(501, "5.1.3", "Bad local part (trailing dot)");
  }
  if (domain.empty()) return bad(501, "5.1.3", "Address must have a domain");
  if (role == address_role::recipient) {
    // Relay tricks: after our MX hop these would re-route to a third party.
    if (local_quoted && local.find('@') != std::string_view::npos)
      return bad(554, "5.7.1", "Quoted local parts holding @ are not accepted");
    if (local.find('%') != std::string_view::npos) return bad(554, "5.7.1", "Percent-hack addresses are not accepted");
    if (local.find('!') != std::string_view::npos) return bad(554, "5.7.1", "Bang-path addresses are not accepted");
    if (domain.front() == '[') return bad(554, "5.7.1", "Address literals are not accepted as recipients");
  }
  if (domain.front() == '[') {
    if (!dns::is_address_literal(domain)) return bad(501, "5.1.3", "Bad address literal");
  } else {
    bool has_8bit = std::any_of(domain.begin(), domain.end(), [](char c) { return static_cast<unsigned char>(c) >= 0x80; });
    if (has_8bit && !utf8) return bad(553, "5.6.7", "Non-ASCII address requires SMTPUTF8 (RFC 6531)");
    if (!dns::is_valid_domain(domain, utf8)) return bad(501, role == address_role::sender ? "5.1.7" : "5.1.2", "Bad domain in address");
    // A U-label must be valid IDNA 2008: its A-label is what the DNS is asked.
    if (has_8bit && !dns::to_ascii_domain(domain))
      return bad(553, role == address_role::sender ? "5.1.7" : "5.1.2", "Bad internationalized domain in address (IDNA 2008)");
  }
  r.value = std::string(addr);
  return r;
}

struct parameter {
  std::string keyword;  // upper-cased
  std::string value;
  bool has_value = false;
};

std::optional<std::vector<parameter>> split_parameters(std::string_view rest) {
  std::vector<parameter> out;
  size_t i = 0;
  while (i < rest.size()) {
    if (rest[i] != ' ') return std::nullopt;
    while (i < rest.size() && rest[i] == ' ') ++i;
    if (i >= rest.size()) break;
    size_t end = rest.find(' ', i);
    std::string_view item = rest.substr(i, end == std::string_view::npos ? std::string_view::npos : end - i);
    i = end == std::string_view::npos ? rest.size() : end;
    parameter p;
    auto eq = item.find('=');
    p.keyword = upper(item.substr(0, eq));
    if (p.keyword.empty()) return std::nullopt;
    for (char c : p.keyword)
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') return std::nullopt;
    if (eq != std::string_view::npos) {
      p.value = std::string(item.substr(eq + 1));
      p.has_value = true;
    }
    for (const auto& seen : out)
      if (seen.keyword == p.keyword) return std::nullopt;
    out.push_back(std::move(p));
  }
  return out;
}

std::string_view after_keyword(std::string_view args, std::string_view keyword, bool& ok) {
  ok = ieq_prefix(args, keyword);
  if (!ok) return {};
  args.remove_prefix(keyword.size());
  // Postfix and most MTAs tolerate one space after the colon; RFC 5321 has none.
  if (!args.empty() && args.front() == ' ') args.remove_prefix(1);
  return args;
}

}  // namespace

command_line split_command(std::string_view line) {
  command_line c;
  auto sp = line.find(' ');
  c.verb = upper(line.substr(0, sp));
  if (sp != std::string_view::npos) c.args = std::string(line.substr(sp + 1));
  return c;
}

bool is_xtext(std::string_view s) {
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '+') {
      if (i + 2 >= s.size()) return false;
      auto hex = [](unsigned char h) { return std::isdigit(h) || (h >= 'A' && h <= 'F'); };
      if (!hex(static_cast<unsigned char>(s[i + 1])) || !hex(static_cast<unsigned char>(s[i + 2]))) return false;
      i += 2;
      continue;
    }
    if (c < 33 || c > 126 || c == '=') return false;
  }
  return true;
}

std::string xtext_encode(std::string_view raw) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(raw.size());
  for (unsigned char c : raw) {
    if (c < 33 || c > 126 || c == '+' || c == '=') {
      out += '+';
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

parse_result<parsed_mail> parse_mail_from(std::string_view args) {
  parse_result<parsed_mail> r;
  bool ok = false;
  std::string_view text = after_keyword(args, "FROM:", ok);
  if (!ok) { r.error = {501, "5.5.4", "Syntax: MAIL FROM:<address>"}; return r; }
  std::string_view rest;
  // Parameters decide whether UTF-8 is allowed in the path, so look for SMTPUTF8 first.
  bool utf8 = false;
  {
    auto close = text.rfind('>');
    if (close != std::string_view::npos) {
      auto ps = split_parameters(text.substr(close + 1));
      if (ps)
        for (auto& p : *ps)
          if (p.keyword == "SMTPUTF8") utf8 = true;
    }
  }
  auto path = parse_path(text, address_role::sender, utf8, rest);
  if (!path.value) { r.error = path.error; return r; }
  auto params = split_parameters(rest);
  if (!params) { r.error = {555, "5.5.4", "Syntax error in parameters (or a parameter given twice)"}; return r; }
  parsed_mail m;
  m.sender = std::move(*path.value);
  for (auto& p : *params) {
    auto bad = [&](std::string msg) { r.error = {501, "5.5.4", std::move(msg)}; };
    if (p.keyword == "SIZE") {
      uint64_t n = 0;
      auto [ptr, ec] = std::from_chars(p.value.data(), p.value.data() + p.value.size(), n);
      if (!p.has_value || p.value.empty() || ec != std::errc{} || ptr != p.value.data() + p.value.size()) {
        bad("Bad SIZE parameter");
        return r;
      }
      m.params.size = n;
    } else if (p.keyword == "BODY") {
      std::string v = upper(p.value);
      if (v != "7BIT" && v != "8BITMIME") { r.error = {555, "5.5.4", "Unsupported BODY type (7BIT and 8BITMIME only)"}; return r; }
      m.params.body = v;
    } else if (p.keyword == "SMTPUTF8") {
      if (p.has_value) { bad("SMTPUTF8 takes no value"); return r; }
      m.params.smtputf8 = true;
    } else if (p.keyword == "REQUIRETLS") {
      if (p.has_value) { bad("REQUIRETLS takes no value"); return r; }
      m.params.requiretls = true;
    } else if (p.keyword == "RET") {
      std::string v = upper(p.value);
      if (v != "FULL" && v != "HDRS") { bad("Bad RET parameter (FULL or HDRS)"); return r; }
      m.params.ret = v;
    } else if (p.keyword == "ENVID") {
      if (p.value.empty() || p.value.size() > 100 || !is_xtext(p.value)) { bad("Bad ENVID parameter (xtext, at most 100 characters)"); return r; }
      m.params.envid = p.value;
    } else if (p.keyword == "AUTH") {
      // RFC 4954 5: the submitter's identity as claimed by a previous hop. We
      // record our own AUTH result instead, so the value is checked and dropped.
      if (!p.has_value || (p.value != "<>" && !is_xtext(p.value))) { bad("Bad AUTH parameter"); return r; }
    } else {
      r.error = {555, "5.5.4", "Unsupported MAIL parameter " + p.keyword};
      return r;
    }
  }
  r.value = std::move(m);
  return r;
}

parse_result<parsed_rcpt> parse_rcpt_to(std::string_view args, bool smtputf8) {
  parse_result<parsed_rcpt> r;
  bool ok = false;
  std::string_view text = after_keyword(args, "TO:", ok);
  if (!ok) { r.error = {501, "5.5.4", "Syntax: RCPT TO:<address>"}; return r; }
  std::string_view rest;
  auto path = parse_path(text, address_role::recipient, smtputf8, rest);
  if (!path.value) { r.error = path.error; return r; }
  auto params = split_parameters(rest);
  if (!params) { r.error = {555, "5.5.4", "Syntax error in parameters (or a parameter given twice)"}; return r; }
  parsed_rcpt rc;
  rc.recipient = std::move(*path.value);
  for (auto& p : *params) {
    if (p.keyword == "NOTIFY") {
      std::string v = upper(p.value);
      bool valid = !v.empty();
      if (v != "NEVER") {
        std::string_view list = v;
        while (valid && !list.empty()) {
          auto comma = list.find(',');
          auto item = list.substr(0, comma);
          valid = item == "SUCCESS" || item == "FAILURE" || item == "DELAY";
          list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
          if (comma != std::string_view::npos && list.empty()) valid = false;
        }
      }
      if (!valid) { r.error = {501, "5.5.4", "Bad NOTIFY parameter"}; return r; }
      rc.params.notify = v;
    } else if (p.keyword == "ORCPT") {
      auto semi = p.value.find(';');
      if (semi == std::string::npos || semi == 0 || p.value.size() > 500 || !is_xtext(p.value.substr(semi + 1))) {
        r.error = {501, "5.5.4", "Bad ORCPT parameter (addr-type;xtext)"};
        return r;
      }
      rc.params.orcpt = p.value;
    } else {
      r.error = {555, "5.5.4", "Unsupported RCPT parameter " + p.keyword};
      return r;
    }
  }
  r.value = std::move(rc);
  return r;
}

std::string xtext_decode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+' && i + 2 < s.size()) {
      unsigned v = 0;
      std::from_chars(s.data() + i + 1, s.data() + i + 3, v, 16);
      out += static_cast<char>(v);
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

}  // namespace sealgate::gateway
