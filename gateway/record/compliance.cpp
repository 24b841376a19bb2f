// The compliance report's numbers; see compliance.hpp. One query groups the
// period's recipients by everything the report breaks them down by, and every
// total, day and domain list is summed from those same rows, so the parts of
// the report always add up to its totals.
#include "gateway/record/compliance.hpp"

#include <algorithm>
#include <iomanip>
#include <map>
#include <sstream>
#include <string_view>
#include <tuple>

#include "common/text.hpp"
#include "gateway/record/schema.hpp"
#include "gateway/record/tlsrpt.hpp"

namespace sealgate::gateway {

namespace {

constexpr int64_t seconds_per_day = 86400;

// The order people read methods in: end to end first, then the portal, then
// transport only, then what did not send; anything else after, "-" last.
constexpr std::string_view method_order[] = {"pgp", "smime", "portal", "tls", "plain", "reject", "hold", "defer"};
// Strongest first; always listed, so that a zero is shown as a zero.
constexpr std::string_view certificate_order[] = {"dane", "mta-sts", "verified", "unverified", "none"};

// Position of key in order, or past its end.
template <size_t n>
size_t rank(const std::string_view (&order)[n], const std::string& key) {
  return static_cast<size_t>(std::find(order, order + n, key) - order);
}

// One group of recipients with everything the report tells apart.
struct recipient_group {
  std::string day, domain, method, status, tls_protocol, certificate;
  int64_t recipients = 0, deferrals = 0;

  bool delivered() const { return status == "delivered"; }
  // As count_deliveries (report.cpp) counts secured.
  bool secured() const {
    return delivered() && (method == "pgp" || method == "smime" || method == "portal" || !tls_protocol.empty());
  }
  bool bounced() const { return status == "bounced" || status == "expired"; }
  std::string tls_version() const { return tls_protocol.empty() ? "none" : tls_protocol; }
};

std::vector<recipient_group> read_groups(sql::connection* db, int64_t since, int64_t until) {
  // The deferrals of a recipient are counted by the attempts_by_message index.
  // day is the day's number since 1970 (integer division in every SQL),
  // named in C++; SUM is cast because PostgreSQL sums integers as numeric.
  sql::statement q(
      db,
      "SELECT m.received_at / 86400 AS day, r.domain AS domain, COALESCE(r.method, '-') AS method,"
      " r.status AS status, r.tls_protocol AS tls, r.certificate AS certificate, COUNT(*) AS recipients,"
      " CAST(SUM((SELECT COUNT(*) FROM attempts a WHERE a.queue_id = r.queue_id AND a.idx = r.idx"
      "      AND a.outcome IN ('deferred', 'method-failed'))) AS BIGINT) AS deferrals"
      " FROM recipients r JOIN messages m ON m.queue_id = r.queue_id"
      " WHERE m.received_at >= :since AND m.received_at < :until"
      " GROUP BY day, domain, method, status, tls, certificate");
  q.bind("since", since);
  q.bind("until", until);
  std::vector<recipient_group> out;
  while (q.next_row())
    out.push_back({utc_day(q.integer("day") * seconds_per_day), q.text("domain"), q.text("method"), q.text("status"), q.text("tls"),
                   q.is_null("certificate") ? "-" : q.text("certificate"), q.integer("recipients"),
                   q.integer("deferrals")});
  return out;
}

// Messages of the period, and when the first of them arrived.
std::pair<int64_t, int64_t> count_messages(sql::connection* db, int64_t since, int64_t until) {
  sql::statement q(db,
                      "SELECT COUNT(*) AS n, COALESCE(MIN(received_at), 0) AS first FROM messages"
                      " WHERE received_at >= :since AND received_at < :until");
  q.bind("since", since);
  q.bind("until", until);
  q.next_row();
  return {q.integer("n"), q.integer("first")};
}

// Adds n to key's entry, keeping the entries in the order first seen.
void add(std::vector<keyed_count>& counts, const std::string& key, int64_t n) {
  auto it = std::find_if(counts.begin(), counts.end(), [&](const keyed_count& c) { return c.key == key; });
  if (it == counts.end()) it = counts.insert(counts.end(), {key, 0});
  it->count += n;
}

// The largest first, then by name.
std::vector<keyed_count> largest_first(const std::map<std::string, int64_t>& counts) {
  std::vector<keyed_count> out;
  for (const auto& [key, n] : counts) out.push_back({key, n});
  std::stable_sort(out.begin(), out.end(), [](const keyed_count& a, const keyed_count& b) { return a.count > b.count; });
  return out;
}

size_t index_of(const std::vector<keyed_count>& counts, const std::string& key) {
  return static_cast<size_t>(
      std::find_if(counts.begin(), counts.end(), [&](const keyed_count& c) { return c.key == key; }) - counts.begin());
}

}  // namespace

std::string percent_text(int64_t n, int64_t of) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(1) << (of ? 100.0 * static_cast<double>(n) / static_cast<double>(of) : 0.0);
  return s.str();
}

compliance_summary summarize_compliance(const sql::location& database, int64_t since, int64_t until) {
  auto db = open_record_read_only(database);
  compliance_summary s;
  s.since = since;
  s.until = until;
  int64_t first_received = 0;
  std::tie(s.messages, first_received) = count_messages(db.get(), since, until);
  auto groups = read_groups(db.get(), since, until);

  for (auto name : certificate_order) s.certificates.push_back({std::string(name), 0});
  std::map<std::string, int64_t> portal_domains, clear_domains;
  std::map<std::string, domain_trouble> trouble;
  for (const auto& g : groups) {
    s.recipients += g.recipients;
    s.deferrals += g.deferrals;
    add(s.methods, g.method, g.recipients);
    if (g.delivered()) {
      s.delivered += g.recipients;
      add(s.tls_versions, g.tls_version(), g.recipients);
      add(s.certificates, g.certificate, g.recipients);
      if (g.secured())
        s.secured += g.recipients;
      else
        clear_domains[g.domain] += g.recipients;
    }
    if (g.method == "portal") {
      s.portal += g.recipients;
      portal_domains[g.domain] += g.recipients;
    }
    if (g.status == "queued" || g.status == "held" || g.status == "deferred" || g.status == "method-failed")
      s.waiting += g.recipients;
    if (g.bounced()) s.bounced += g.recipients;
    if (g.status == "expired") s.expired += g.recipients;
    if (g.status == "deleted") s.deleted += g.recipients;
    if (g.deferrals || g.bounced()) {
      auto& t = trouble.try_emplace(g.domain, domain_trouble{g.domain}).first->second;
      t.deferrals += g.deferrals;
      if (g.bounced()) t.bounced += g.recipients;
    }
  }
  s.in_clear = s.delivered - s.secured;

  std::stable_sort(s.methods.begin(), s.methods.end(), [](const keyed_count& a, const keyed_count& b) {
    // "-" after every name; names the order does not know by name.
    auto key = [](const keyed_count& c) { return std::tuple(c.key == "-", rank(method_order, c.key), c.key); };
    return key(a) < key(b);
  });
  // "TLSv1.3" > "TLSv1.2" > "TLSv1.1" > "TLSv1" as text; "none" last.
  std::sort(s.tls_versions.begin(), s.tls_versions.end(), [](const keyed_count& a, const keyed_count& b) {
    return std::tuple(a.key == "none", b.key) < std::tuple(b.key == "none", a.key);
  });
  s.portal_domains = largest_first(portal_domains);
  s.clear_domains = largest_first(clear_domains);
  for (auto& [domain, t] : trouble) s.trouble_domains.push_back(t);
  std::sort(s.trouble_domains.begin(), s.trouble_domains.end(), [](const domain_trouble& a, const domain_trouble& b) {
    return std::tuple(-a.bounced, -a.deferrals, a.domain) < std::tuple(-b.bounced, -b.deferrals, b.domain);
  });

  if (s.recipients == 0) return s;
  // Every day from the period's first (or, without a start, the first
  // message's) to the last.
  int64_t first_day = (since > 0 ? since : first_received) / seconds_per_day;
  int64_t last_day = (until - 1) / seconds_per_day;
  std::map<std::string, size_t> day_index;
  for (int64_t d = first_day; d <= last_day; ++d) {
    compliance_day day;
    day.day = utc_time(d * seconds_per_day, "%Y-%m-%d");
    day.methods.assign(s.methods.size(), 0);
    day.tls_versions.assign(s.tls_versions.size(), 0);
    day_index[day.day] = s.days.size();
    s.days.push_back(std::move(day));
  }
  for (const auto& g : groups) {
    auto& day = s.days.at(day_index.at(g.day));
    day.recipients += g.recipients;
    day.methods[index_of(s.methods, g.method)] += g.recipients;
    if (g.delivered()) {
      day.delivered += g.recipients;
      day.tls_versions[index_of(s.tls_versions, g.tls_version())] += g.recipients;
    }
    day.deferrals += g.deferrals;
    if (g.bounced()) day.bounced += g.recipients;
  }
  return s;
}

}  // namespace sealgate::gateway
