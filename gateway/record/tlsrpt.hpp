// SMTP TLS Reporting (RFC 8460): the daily report for one recipient domain,
// made from the sessions the record counted (report.hpp, read_tls_sessions).
// Pure: the caller reads the rows and sends or prints the result. A report
// names hosts, addresses and counts; never a sender, a recipient or content.
#pragma once
#include <cstdint>
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

// The UTC day of a unix time, YYYY-MM-DD; and back: 00:00:00 UTC of such a
// day, or -1 when the text is no valid date.
std::string utc_day(int64_t unix_time);
int64_t utc_day_start(std::string_view day);

}  // namespace sealgate::gateway
