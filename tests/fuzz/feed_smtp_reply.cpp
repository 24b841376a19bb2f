// fuzz_smtp_reply: what the outbound client reads from a remote server (reply
// parser, EHLO keywords, gateway/smtp_reply) and the DSN path: the RFC 3461
// parameters of MAIL and RCPT (gateway/smtp_syntax) and the report built from
// them and a remote reply (gateway/dsn), whose header fields must stay intact.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dns/domain_name.hpp"
#include "gateway/queue/dsn.hpp"
#include "gateway/smtp_client/smtp_reply.hpp"
#include "gateway/mail/smtp_syntax.hpp"
#include "tests/fuzz/fuzz_input.hpp"
#include "tests/fuzz/fuzz_parsers.hpp"

namespace sealgate::fuzz {
namespace {

bool valid_notify(std::string_view n) {
  if (n.empty() || n == "NEVER") return true;
  while (!n.empty()) {
    auto comma = n.find(',');
    auto item = n.substr(0, comma);
    if (item != "SUCCESS" && item != "FAILURE" && item != "DELAY") return false;
    if (comma == std::string_view::npos) break;
    n.remove_prefix(comma + 1);
    if (n.empty()) return false;
  }
  return true;
}

// dsn.hpp promises CRLF line ends and every line under 998 octets; a report
// that broke either could smuggle fields or be refused by the next hop.
void check_dsn(std::string_view m) {
  SEALGATE_FUZZ_CHECK(!has_bare_newline(m));
  size_t start = 0;
  while (start < m.size()) {
    size_t eol = m.find("\r\n", start);
    SEALGATE_FUZZ_CHECK(eol != std::string_view::npos);
    SEALGATE_FUZZ_CHECK(eol - start < 998);
    start = eol + 2;
  }
}

}  // namespace

void feed_smtp_reply(const uint8_t* data, size_t size, parse_counts& counts) {
  input_cursor in(data, size);
  std::string_view whole(reinterpret_cast<const char*>(data), size);
  gateway::reply_parser parser;
  std::string diagnostic, enhanced;
  std::optional<gateway::parsed_mail> mail;
  std::vector<gateway::parsed_rcpt> rcpts;
  while (!in.empty()) {
    std::string_view line = in.line();
    // The outbound client's view: reply lines, with the client's line cap.
    if (line.size() > gateway::smtp_client_limits{}.line_length) {
      ++counts.smtp_errors;
      parser = gateway::reply_parser();
    } else if (parser.feed(line)) {
      ++counts.smtp_errors;
      parser = gateway::reply_parser();
    } else if (parser.done()) {
      auto reply = parser.take();
      SEALGATE_FUZZ_CHECK(reply.code >= 200 && reply.code <= 599 && !reply.lines.empty());
      SEALGATE_FUZZ_CHECK(reply.enhanced.empty() || reply.enhanced[0] == '0' + reply.code / 100);
      auto ext = gateway::parse_ehlo_reply(reply);
      SEALGATE_FUZZ_CHECK(ext.keywords.size() < reply.lines.size() || ext.keywords.empty());
      diagnostic = reply.text();
      // "control characters replaced": the text goes into logs and DSNs.
      SEALGATE_FUZZ_CHECK(!has_control(diagnostic));
      enhanced = reply.enhanced;
      ++counts.smtp_replies;
    }

    // The inbound side's view of the same line as MAIL and RCPT arguments.
    auto m = gateway::parse_mail_from(line);
    if (m.value) {
      const auto& p = m.value->params;
      SEALGATE_FUZZ_CHECK(p.ret.empty() || p.ret == "FULL" || p.ret == "HDRS");
      SEALGATE_FUZZ_CHECK(p.envid.empty() || (p.envid.size() <= 100 && gateway::is_xtext(p.envid)));
      SEALGATE_FUZZ_CHECK(p.body.empty() || p.body == "7BIT" || p.body == "8BITMIME");
      SEALGATE_FUZZ_CHECK(m.value->sender.size() <= 254 && !has_control(m.value->sender));
      ++counts.dsn_params_ok;
      mail = std::move(m.value);
    } else {
      SEALGATE_FUZZ_CHECK(m.error.code >= 400 && m.error.code <= 599 && !m.error.status.empty());
    }
    auto r = gateway::parse_rcpt_to(line, mail && mail->params.smtputf8);
    if (r.value) {
      const auto& p = r.value->params;
      SEALGATE_FUZZ_CHECK(valid_notify(p.notify));
      if (!p.orcpt.empty()) {
        auto semi = p.orcpt.find(';');
        SEALGATE_FUZZ_CHECK(semi != std::string::npos && semi > 0 && p.orcpt.size() <= 500 &&
                            gateway::is_xtext(std::string_view(p.orcpt).substr(semi + 1)));
      }
      SEALGATE_FUZZ_CHECK(!r.value->recipient.empty() && r.value->recipient.size() <= 254 &&
                          !has_control(r.value->recipient));
      // Delivery groups recipients by the domain as the DNS knows it: an
      // A-label name in lower-case ASCII, or none at all.
      std::string_view domain = r.value->recipient;
      domain.remove_prefix(domain.rfind('@') + 1);
      if (auto ascii = dns::to_ascii_domain(domain)) {
        for (unsigned char ch : *ascii) SEALGATE_FUZZ_CHECK(ch < 0x80 && !(ch >= 'A' && ch <= 'Z'));
      }
      ++counts.dsn_params_ok;
      if (rcpts.size() < 8) rcpts.push_back(std::move(*r.value));
    } else {
      SEALGATE_FUZZ_CHECK(r.error.code >= 400 && r.error.code <= 599 && !r.error.status.empty());
      if (!m.value) ++counts.dsn_params_refused;
    }
  }

  // xtext (RFC 3461 4): what we encode is valid xtext and decodes back.
  std::string x = gateway::xtext_encode(whole);
  SEALGATE_FUZZ_CHECK(gateway::is_xtext(x));
  SEALGATE_FUZZ_CHECK(gateway::xtext_decode(x) == whole);
  (void)gateway::xtext_decode(whole);
  (void)dns::is_valid_utf8(whole);
  (void)dns::to_ascii_domain(whole.substr(0, 300));

  // The header lookups DSNs and the log use on the (unvalidated) content.
  std::string headers = gateway::header_block(whole);
  SEALGATE_FUZZ_CHECK(gateway::header_field(headers, "Message-ID").size() <= 998);
  (void)gateway::header_field(headers, "Subject");

  if (!mail || mail->sender.empty() || rcpts.empty()) return;
  gateway::dsn_input d;
  d.reporting_mta = "gateway.example.org";
  d.queue_id = "4Xq7Zb2cKmz1";
  d.sender = mail->sender;
  d.params = mail->params;
  d.arrival = 1700000000;
  d.now = d.arrival + 3600;
  d.retry_until = d.arrival + 5 * 86400;
  // Original headers as the spool holds them: CRLF lines of at most 998 octets
  // (data_reader refuses the rest), so only such lines of the input are used.
  for (size_t start = 0; start < whole.size();) {
    size_t eol = whole.find("\r\n", start);
    if (eol == std::string_view::npos) break;
    std::string_view l = whole.substr(start, eol - start);
    if (l.empty()) break;
    if (l.size() <= 998 && !has_bare_newline(l)) d.original_headers.append(l).append("\r\n");
    start = eol + 2;
  }
  for (const auto& rc : rcpts) {
    gateway::dsn_recipient dr;
    dr.address = rc.recipient;
    dr.orcpt = rc.params.orcpt;
    dr.status = enhanced.empty() ? "5.0.0" : enhanced;
    dr.remote_mta = "mx1.example.net";
    dr.diagnostic = diagnostic;
    dr.method = "tls";
    dr.last_attempt = d.now;
    d.recipients.push_back(std::move(dr));
  }
  for (auto kind : {gateway::dsn_kind::failure, gateway::dsn_kind::delay}) {
    d.kind = kind;
    for (const auto& rc : rcpts) (void)gateway::notify_wants(rc.params.notify, kind);
    std::string report = gateway::make_dsn(d);
    SEALGATE_FUZZ_CHECK(!report.empty());
    check_dsn(report);
    ++counts.dsn_built;
  }
}

}  // namespace sealgate::fuzz
