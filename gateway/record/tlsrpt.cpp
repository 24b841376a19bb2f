// See tlsrpt.hpp. The JSON is written here field by field in the order of
// RFC 8460 section 4.4, so the output is stable for tests and diffs.
#include "gateway/record/tlsrpt.hpp"

#include <ctime>
#include <map>
#include <set>
#include <sstream>

#include "common/text.hpp"

namespace sealgate::gateway {
std::string utc_day(int64_t unix_time) { return utc_time(unix_time, "%Y-%m-%d"); }

int64_t utc_day_start(std::string_view day) {
  if (day.size() != 10 || day[4] != '-' || day[7] != '-') return -1;
  for (size_t i : {0, 1, 2, 3, 5, 6, 8, 9})
    if (day[i] < '0' || day[i] > '9') return -1;
  std::tm tm{};
  tm.tm_year = std::stoi(std::string(day.substr(0, 4))) - 1900;
  tm.tm_mon = std::stoi(std::string(day.substr(5, 2))) - 1;
  tm.tm_mday = std::stoi(std::string(day.substr(8, 2)));
  if (tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31) return -1;
  int64_t t = timegm(&tm);
  // timegm normalises 2026-02-31 to March: such a day is no day.
  return utc_day(t) == day ? t : -1;
}

std::vector<tls_report> make_tls_reports(const std::vector<tls_session_count>& rows, std::string_view day,
                                         const tls_reporter& who) {
  std::vector<tls_report> out;
  const int64_t begin = utc_day_start(day);
  if (begin < 0) return out;
  const int64_t end = begin + 86400 - 1;
  // domain -> policy type -> its rows
  std::map<std::string, std::map<std::string, std::vector<const tls_session_count*>>> by_domain;
  for (const auto& r : rows) by_domain[r.policy_domain][r.policy_type].push_back(&r);

  for (const auto& [domain, policies] : by_domain) {
    tls_report rep;
    rep.policy_domain = domain;
    rep.day = std::string(day);
    rep.report_id = rep.day + "T00:00:00Z_" + domain + "@" + who.hostname;
    rep.file_name = who.hostname + "!" + domain + "!" + std::to_string(begin) + "!" + std::to_string(end) + ".json";
    std::ostringstream j;
    j << "{\"organization-name\": " << json_string(who.organization) << ",\n"
      << " \"date-range\": {\"start-datetime\": " << json_string(utc_time(begin, "%Y-%m-%dT%H:%M:%SZ"))
      << ", \"end-datetime\": " << json_string(utc_time(end, "%Y-%m-%dT%H:%M:%SZ")) << "},\n"
      << " \"contact-info\": " << json_string(who.contact) << ",\n"
      << " \"report-id\": " << json_string(rep.report_id) << ",\n"
      << " \"policies\": [";
    bool first_policy = true;
    for (const auto& [type, list] : policies) {
      int64_t ok = 0, failed = 0;
      std::set<std::string> hosts;
      for (const auto* r : list) {
        (r->result_type == "success" ? ok : failed) += r->sessions;
        hosts.insert(r->mx_host);
      }
      rep.successes += ok;
      rep.failures += failed;
      j << (first_policy ? "" : ",") << "\n  {\"policy\": {\"policy-type\": " << json_string(type)
        << ", \"policy-domain\": " << json_string(domain);
      // The MX hosts sessions went to; an MTA-STS policy's own mx patterns
      // are not kept in the record.
      j << ", \"mx-host\": [";
      bool first_host = true;
      for (const auto& h : hosts) {
        j << (first_host ? "" : ", ") << json_string(h);
        first_host = false;
      }
      j << "]},\n   \"summary\": {\"total-successful-session-count\": " << ok
        << ", \"total-failure-session-count\": " << failed << "}";
      if (failed > 0) {
        j << ",\n   \"failure-details\": [";
        bool first_detail = true;
        for (const auto* r : list) {
          if (r->result_type == "success") continue;
          j << (first_detail ? "" : ",") << "\n    {\"result-type\": " << json_string(r->result_type)
            << ", \"receiving-mx-hostname\": " << json_string(r->mx_host);
          if (!r->address.empty()) j << ", \"receiving-ip\": " << json_string(r->address);
          j << ", \"failed-session-count\": " << r->sessions << "}";
          first_detail = false;
        }
        j << "]";
      }
      j << "}";
      first_policy = false;
    }
    j << "]}\n";
    rep.json = j.str();
    out.push_back(std::move(rep));
  }
  return out;
}

}  // namespace sealgate::gateway
