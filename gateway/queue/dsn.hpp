// Delivery status notifications (RFC 3464 multipart/report) for recipients
// that bounced, expired or are delayed. Built for a gateway that carries
// protected health information: a DSN never holds the original body or
// attachments, and the original headers only when the sender asked with
// RET=HDRS or RET=FULL (and then only the headers). Pure: no I/O.
#pragma once
#include <ctime>
#include <string>
#include <vector>

#include "gateway/mail/headers.hpp"
#include "gateway/mail/smtp_syntax.hpp"

namespace sealgate::gateway {

enum class dsn_kind { failure, delay };

// One recipient's line in the report.
struct dsn_recipient {
  std::string address;      // the envelope recipient
  std::string orcpt;        // the ORCPT parameter as received ("rfc822;xtext"), may be empty
  std::string status;       // enhanced status code, "5.1.1"
  std::string remote_mta;   // MX host name, empty when no MX was reached
  std::string diagnostic;   // the remote reply ("550 5.1.1 ...") or our own reason
  std::string method;       // the delivery method tried: tls, pgp, smime, portal, plain
  std::time_t last_attempt = 0;
};

struct dsn_input {
  dsn_kind kind = dsn_kind::failure;
  std::string reporting_mta;     // our hostname
  std::string queue_id;
  std::string sender;            // the original envelope sender; the DSN goes there
  mail_parameters params;        // RET and ENVID
  std::time_t arrival = 0;
  std::time_t now = 0;
  std::time_t retry_until = 0;   // delay reports: when the gateway gives up
  std::vector<dsn_recipient> recipients;
  std::string original_headers;  // the header block, CRLF lines; used only for RET=HDRS/FULL
};

// Whether a recipient's NOTIFY asks for this kind of report (RFC 3461 4.1).
// Without NOTIFY, failures are reported and delays too (as Postfix does when
// delay warnings are on).
bool notify_wants(std::string_view notify, dsn_kind kind);

// The complete DSN message (CRLF line ends, every line under 998 octets), to
// be spooled from the null sender to input.sender. Empty when no DSN may be
// sent: the null sender never gets one (RFC 5321 4.5.5), nor does a report
// without recipients.
std::string make_dsn(const dsn_input& input);

// Whether the report is an internationalised one (RFC 6533: the original
// message was SMTPUTF8): message/global-delivery-status, "utf-8" addresses as
// they are, message/global-headers. Such a DSN must itself be sent with SMTPUTF8.
bool dsn_is_global(const dsn_input& input);


}  // namespace sealgate::gateway
