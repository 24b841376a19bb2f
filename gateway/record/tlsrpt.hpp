// SMTP TLS Reporting (RFC 8460): the daily report for one recipient domain,
// made from the sessions the record counted (report.hpp, read_tls_sessions).
// Pure: the caller reads the rows and sends or prints the result. A report
// names hosts, addresses and counts; never a sender, a recipient or content.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/record/report.hpp"

namespace sealgate::gateway {

// Who reports (RFC 8460 section 4.4's organization-name and contact-info),
// and the host that sent, for the file name of section 5.1.
struct tls_reporter {
  std::string organization;
  std::string contact;  // a mailto: URI or an address
  std::string hostname;
};

struct tls_report {
  std::string policy_domain;
  std::string submitter;    // our hostname (TLS-Report-Submitter)
  std::string day;          // YYYY-MM-DD (UTC)
  std::string report_id;
  std::string file_name;    // section 5.1: sender!policy-domain!begin!end.json (".gz" when compressed)
  std::string json;
  int64_t successes = 0, failures = 0;
};

// One report per policy domain among rows (all of one day). Returns nothing
// when day is not a valid YYYY-MM-DD.
std::vector<tls_report> make_tls_reports(const std::vector<tls_session_count>& rows, std::string_view day,
                                         const tls_reporter& who);

// Where a domain wants its reports (RFC 8460 section 3): the _smtp._tls TXT
// record "v=TLSRPTv1; rua=URI[,URI...]", mailto: addresses and https: URLs.
// nullopt when the text is no such record (another version, no rua, no URI
// we can use).
struct tlsrpt_destinations {
  std::vector<std::string> mailto;  // addresses
  std::vector<std::string> https;   // whole URLs
};
std::optional<tlsrpt_destinations> parse_tlsrpt_record(std::string_view txt);

// An https: destination split for the client: host, port (443 unless
// given), target (the path and query, "/" when empty). nullopt when it is
// no https URL with a host name.
struct https_destination {
  std::string host;
  uint16_t port = 443;
  std::string target;
};
std::optional<https_destination> parse_https_destination(std::string_view url);

// The report compressed with gzip (RFC 1952), as sections 5.2 and 5.3 send it.
std::string gzip_report(std::string_view json);

// The report as a mail (section 5.3): multipart/report; report-type="tlsrpt",
// a short text part and the gzip attachment named by the 5.1 file name,
// with the TLS-Report-Domain and TLS-Report-Submitter fields. CRLF lines.
std::string tls_report_mail(const tls_report& report, std::string_view gz, std::string_view from,
                            std::string_view to, int64_t now);

// The UTC day of a unix time, YYYY-MM-DD; and back: 00:00:00 UTC of such a
// day, or -1 when the text is no valid date.
std::string utc_day(int64_t unix_time);
int64_t utc_day_start(std::string_view day);

}  // namespace sealgate::gateway
