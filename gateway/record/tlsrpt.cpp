// See tlsrpt.hpp. The JSON is written here field by field in the order of
// RFC 8460 section 4.4, so the output is stable for tests and diffs.
#include "gateway/record/tlsrpt.hpp"

#include <ctime>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>

#include <zlib.h>

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
    rep.submitter = who.hostname;
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

std::optional<tlsrpt_destinations> parse_tlsrpt_record(std::string_view txt) {
  // tlsrpt-record = tlsrpt-version 1*(field-delim tlsrpt-field) [field-delim]
  // with "v=TLSRPTv1" first; fields are name=value separated by ";" and
  // optional whitespace; rua is a comma-separated list of URIs.
  auto trim = [](std::string_view v) {
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
    return v;
  };
  std::vector<std::string_view> fields;
  for (size_t at = 0; at <= txt.size();) {
    size_t semi = txt.find(';', at);
    if (semi == std::string_view::npos) semi = txt.size();
    fields.push_back(trim(txt.substr(at, semi - at)));
    at = semi + 1;
  }
  if (fields.empty() || fields.front() != "v=TLSRPTv1") return std::nullopt;
  tlsrpt_destinations out;
  bool rua_seen = false;
  for (size_t i = 1; i < fields.size(); ++i) {
    auto f = fields[i];
    if (f.rfind("rua=", 0) != 0) continue;  // unknown fields are ignored (section 3)
    if (rua_seen) return std::nullopt;       // a second rua: not a valid record
    rua_seen = true;
    std::string_view list = f.substr(4);
    for (size_t at = 0; at <= list.size();) {
      size_t comma = list.find(',', at);
      if (comma == std::string_view::npos) comma = list.size();
      std::string_view uri = trim(list.substr(at, comma - at));
      at = comma + 1;
      if (uri.size() > 7 && iequals_ascii(uri.substr(0, 7), "mailto:")) {
        std::string address(uri.substr(7));
        // One plain address: no hfields (?subject=...), nothing to inject.
        if (address.find_first_of("?<>\r\n \t,") == std::string::npos && address.find('@') != std::string::npos &&
            address.find('@') > 0 && address.find('@') + 1 < address.size())
          out.mailto.push_back(address);
      } else if (uri.size() > 8 && iequals_ascii(uri.substr(0, 8), "https://")) {
        if (uri.find_first_of("\r\n \t") == std::string_view::npos) out.https.emplace_back(uri);
      }
    }
  }
  if (out.mailto.empty() && out.https.empty()) return std::nullopt;
  return out;
}

std::optional<https_destination> parse_https_destination(std::string_view url) {
  if (url.size() <= 8 || !iequals_ascii(url.substr(0, 8), "https://")) return std::nullopt;
  std::string_view rest = url.substr(8);
  size_t slash = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, slash);
  https_destination d;
  d.target = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (d.target.front() != '/') d.target.insert(0, "/");
  if (auto hash = d.target.find('#'); hash != std::string::npos) d.target.erase(hash);
  if (authority.find('@') != std::string_view::npos || authority.find('[') != std::string_view::npos) return std::nullopt;
  if (size_t colon = authority.find(':'); colon != std::string_view::npos) {
    std::string_view port = authority.substr(colon + 1);
    if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string_view::npos) return std::nullopt;
    unsigned long p = std::stoul(std::string(port));
    if (p == 0 || p > 65535) return std::nullopt;
    d.port = static_cast<uint16_t>(p);
    authority = authority.substr(0, colon);
  }
  if (authority.empty() || authority.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") !=
                               std::string_view::npos)
    return std::nullopt;
  d.host = lower_ascii(authority);
  return d;
}

std::string gzip_report(std::string_view json) {
  z_stream z{};
  // windowBits 15 + 16: a gzip header and trailer rather than zlib's.
  if (deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    throw std::runtime_error("gzip: cannot start");
  std::string out(deflateBound(&z, static_cast<uLong>(json.size())) + 32, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(json.data()));
  z.avail_in = static_cast<uInt>(json.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  int rc = deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  if (rc != Z_STREAM_END) throw std::runtime_error("gzip: cannot compress");
  return out;
}

std::string tls_report_mail(const tls_report& report, std::string_view gz, std::string_view from, std::string_view to,
                            int64_t now) {
  const std::string& submitter = report.submitter;
  const std::string boundary = "tlsrpt-" + base64url_encode(report.report_id).substr(0, 24);
  std::string m;
  m += "From: <" + std::string(from) + ">\r\n";
  m += "To: <" + std::string(to) + ">\r\n";
  m += "Date: " + utc_time(now, "%a, %d %b %Y %H:%M:%S +0000") + "\r\n";
  // Section 5.3's subject, and its two fields for automated handling.
  m += "Subject: Report Domain: " + report.policy_domain + " Submitter: " + submitter +
       " Report-ID: <" + report.report_id + ">\r\n";
  m += "Message-ID: <tlsrpt." + report.day + "." + report.policy_domain + "@" + submitter + ">\r\n";
  m += "TLS-Report-Domain: " + report.policy_domain + "\r\n";
  m += "TLS-Report-Submitter: " + submitter + "\r\n";
  m += "Auto-Submitted: auto-generated\r\n";
  // RFC 8460 5.3 and RFC 8689 5: a report about failing TLS must be able to
  // reach a domain whose TLS fails; the receiving side may ignore its policy.
  m += "TLS-Required: No\r\n";
  m += "MIME-Version: 1.0\r\n";
  m += "Content-Type: multipart/report; report-type=\"tlsrpt\";\r\n\tboundary=\"" + boundary + "\"\r\n\r\n";
  m += "--" + boundary + "\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n";
  m += "The SMTP TLS report (RFC 8460) of " + submitter + " for " + report.policy_domain + " on " + report.day +
       ":\r\n" + std::to_string(report.successes) + " successful and " + std::to_string(report.failures) +
       " failed sessions.\r\n\r\n";
  m += "--" + boundary + "\r\nContent-Type: application/tlsrpt+gzip\r\nContent-Transfer-Encoding: base64\r\n";
  m += "Content-Disposition: attachment;\r\n\tfilename=\"" + report.file_name + ".gz\"\r\n\r\n";
  std::string b64 = base64_encode(gz);
  for (size_t at = 0; at < b64.size(); at += 76) m += b64.substr(at, 76) + "\r\n";
  m += "--" + boundary + "--\r\n";
  return m;
}

}  // namespace sealgate::gateway
