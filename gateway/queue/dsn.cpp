// DSN construction; see dsn.hpp. Everything that comes from outside (remote
// replies, addresses, ENVID) is reduced to printable ASCII and capped, so a
// hostile reply cannot inject header lines or overlong lines into the report.
#include "gateway/queue/dsn.hpp"

#include "common/text.hpp"

#include <algorithm>
#include <cctype>

#include "gateway/mail/headers.hpp"

namespace sealgate::gateway {
namespace {

constexpr size_t max_field = 512;  // a report field; RFC 5322 allows 998 per line

// Length of the well-formed UTF-8 sequence at s[i] (RFC 3629: no overlongs,
// no surrogates, nothing above U+10FFFF), 0 when there is none.
size_t utf8_sequence(std::string_view s, size_t i) {
  auto b = [&](size_t k) { return static_cast<unsigned char>(s[i + k]); };
  auto cont = [&](size_t k) { return i + k < s.size() && (b(k) & 0xC0) == 0x80; };
  unsigned char c = b(0);
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (!cont(1) || !cont(2)) return 0;
    if ((c == 0xE0 && b(1) < 0xA0) || (c == 0xED && b(1) > 0x9F)) return 0;
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    if ((c == 0xF0 && b(1) < 0x90) || (c == 0xF4 && b(1) > 0x8F)) return 0;
    return 4;
  }
  return 0;
}

// Printable text only: control characters (CR, LF above all) become spaces,
// so nothing from a remote reply can start a new field. Other octets above
// 127 become '?', except well-formed UTF-8 in a report for an SMTPUTF8
// message (RFC 6533), where addresses may be internationalised.
std::string printable(std::string_view s, size_t limit = max_field, bool utf8 = false) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (out.size() >= limit) {
      out += "...";
      break;
    }
    if (c == '\t' || c == '\r' || c == '\n' || c < 32 || c == 127) {
      out += ' ';
    } else if (c > 127) {
      size_t n = utf8 ? utf8_sequence(s, i) : 0;
      if (n == 0) {
        out += '?';
      } else {
        out.append(s.substr(i, n));
        i += n - 1;
      }
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}


// RFC 3464 2.3.1: Original-Recipient carries the ORCPT as "addr-type;address",
// the address decoded from xtext.
std::string original_recipient(std::string_view orcpt, bool utf8) {
  size_t semi = orcpt.find(';');
  if (semi == std::string_view::npos) return "";
  return printable(orcpt.substr(0, semi)) + ";" + printable(xtext_decode(orcpt.substr(semi + 1)), max_field, utf8);
}

}  // namespace

bool notify_wants(std::string_view notify, dsn_kind kind) {
  std::string n = lower_ascii(notify);
  if (n.empty()) return true;
  if (n == "never") return false;
  return n.find(kind == dsn_kind::failure ? "failure" : "delay") != std::string::npos;
}

bool dsn_is_global(const dsn_input& in) { return in.params.smtputf8; }

std::string make_dsn(const dsn_input& in) {
  if (in.sender.empty() || in.recipients.empty()) return "";
  const bool failure = in.kind == dsn_kind::failure;
  // RFC 6533: the report on an SMTPUTF8 message is itself one, so that its
  // addresses can be given as they are rather than as question marks.
  const bool global = dsn_is_global(in);
  auto address = [&](std::string_view a) { return printable(a, max_field, global); };
  const bool with_headers = !in.params.ret.empty() && !in.original_headers.empty();
  std::string boundary = "=_sealgate_dsn_" + in.queue_id + "_" + std::to_string(in.now);
  while (in.original_headers.find(boundary) != std::string::npos) boundary += "_";

  std::string m;
  m += "From: Mail Delivery System <MAILER-DAEMON@" + in.reporting_mta + ">\r\n";
  m += "To: <" + address(in.sender) + ">\r\n";
  m += failure ? "Subject: Undelivered Mail Returned to Sender\r\n"
               : "Subject: Delayed Mail (still being retried)\r\n";
  m += "Date: " + rfc5322_date(in.now) + "\r\n";
  m += "Message-ID: <" + in.queue_id + "." + std::to_string(in.now) + (failure ? ".failure@" : ".delay@") +
       in.reporting_mta + ">\r\n";
  m += "Auto-Submitted: auto-replied\r\n";  // RFC 3834: no auto-reply loops
  m += "MIME-Version: 1.0\r\n";
  m += "Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"" + boundary + "\"\r\n";
  m += "\r\nThis is a MIME-encapsulated delivery status notification.\r\n";

  // Human-readable part. It names recipients and reasons only: the content
  // may be protected health information, so none of it is quoted here.
  m += "\r\n--" + boundary + "\r\n";
  m += std::string("Content-Description: Notification\r\nContent-Type: text/plain; charset=") +
       (global ? "utf-8" : "us-ascii") + "\r\n\r\n";
  m += "This is the mail system at host " + in.reporting_mta + ".\r\n\r\n";
  if (failure) {
    m += "Your message could not be delivered to one or more recipients.\r\n";
    m += "Nothing of its content is attached to this report.\r\n\r\n";
  } else {
    m += "Your message has not yet been delivered to the recipients below.\r\n";
    m += "The mail system will keep trying until " + rfc5322_date(in.retry_until) + ";\r\n";
    m += "you do not need to send it again.\r\n\r\n";
  }
  for (const auto& r : in.recipients) {
    m += "<" + address(r.address) + ">: " + printable(r.diagnostic);
    if (!r.method.empty()) m += " (method: " + printable(r.method) + ")";
    m += "\r\n";
  }

  // Machine-readable part (RFC 3464 2.2, 2.3).
  m += "\r\n--" + boundary + "\r\n";
  m += std::string("Content-Description: Delivery report\r\nContent-Type: message/") +
       (global ? "global-delivery-status" : "delivery-status") + "\r\n\r\n";
  m += "Reporting-MTA: dns; " + in.reporting_mta + "\r\n";
  m += "X-Sealgate-Queue-ID: " + in.queue_id + "\r\n";
  if (!in.params.envid.empty()) m += "Original-Envelope-Id: " + printable(in.params.envid) + "\r\n";
  m += "Arrival-Date: " + rfc5322_date(in.arrival) + "\r\n";
  for (const auto& r : in.recipients) {
    m += "\r\n";
    if (!r.orcpt.empty()) {
      std::string o = original_recipient(r.orcpt, global);
      if (!o.empty()) m += "Original-Recipient: " + o + "\r\n";
    }
    // RFC 6533 3: the "utf-8" address type, raw in a global report.
    m += std::string("Final-Recipient: ") + (global ? "utf-8; " : "rfc822; ") + address(r.address) + "\r\n";
    m += failure ? "Action: failed\r\n" : "Action: delayed\r\n";
    m += "Status: " + printable(r.status, 16) + "\r\n";
    if (!r.remote_mta.empty()) m += "Remote-MTA: dns; " + printable(r.remote_mta) + "\r\n";
    if (!r.diagnostic.empty()) {
      // A remote reply starts with its three-digit code; our own reasons do not.
      bool smtp = r.diagnostic.size() >= 3 && std::isdigit(static_cast<unsigned char>(r.diagnostic[0]));
      m += std::string("Diagnostic-Code: ") + (smtp ? "smtp; " : "x-sealgate; ") + printable(r.diagnostic) + "\r\n";
    }
    if (r.last_attempt) m += "Last-Attempt-Date: " + rfc5322_date(r.last_attempt) + "\r\n";
    if (!failure && in.retry_until) m += "Will-Retry-Until: " + rfc5322_date(in.retry_until) + "\r\n";
    if (!r.method.empty()) m += "X-Sealgate-Method: " + printable(r.method, 16) + "\r\n";
  }

  if (with_headers) {
    // RET=FULL is honoured as RET=HDRS: the body is never returned.
    m += "\r\n--" + boundary + "\r\n";
    m += std::string("Content-Description: Undelivered Message Headers\r\nContent-Type: ") +
         (global ? "message/global-headers" : "text/rfc822-headers") + "\r\n\r\n";
    m += in.original_headers;
  }
  m += "\r\n--" + boundary + "--\r\n";
  return m;
}

}  // namespace sealgate::gateway
