// The numbers of the compliance report (`sealgate report --format html`, and
// the "compliance" section of `--format json`): one struct of plain values
// computed once from the record, so that what people read on paper and what
// machines read can never differ. Domains and counts only: never an address,
// a subject or any content. Read-only, like report.hpp.
#pragma once
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "common/sql.hpp"
#include "portal/store/store.hpp"

namespace sealgate::gateway {

struct keyed_count {
  std::string key;
  int64_t count = 0;
};

// One UTC day (the day the messages arrived). methods and tls_versions are
// parallel to compliance_summary's lists of the same name.
struct compliance_day {
  std::string day;  // YYYY-MM-DD
  int64_t recipients = 0, delivered = 0;
  std::vector<int64_t> methods;       // recipients by the method chosen
  std::vector<int64_t> tls_versions;  // delivered recipients by the TLS version of the last hop
  int64_t deferrals = 0;              // attempts deferred or whose method failed
  int64_t bounced = 0;                // recipients bounced or expired
};

// A recipient domain with trouble: how often its delivery was put off and
// how many of its recipients never got the mail.
struct domain_trouble {
  std::string domain;
  int64_t deferrals = 0, bounced = 0;
};

// Recipients of the messages received in [since, until). "Secured" is what
// `sealgate report` calls secured: delivered end to end (pgp, smime),
// through the portal, or over TLS; delivered otherwise is "in clear".
struct compliance_summary {
  int64_t since = 0, until = 0;  // unix seconds; since 0: from the first message recorded
  int64_t messages = 0, recipients = 0;
  int64_t delivered = 0, secured = 0, in_clear = 0;
  int64_t portal = 0;  // recipients whose method is the portal
  int64_t waiting = 0;  // queued, held, deferred or method-failed: may still go
  int64_t deferrals = 0;  // attempts deferred or method-failed
  int64_t bounced = 0, expired = 0, deleted = 0;  // bounced counts the expired too, as report.hpp does

  // Totals, in the order the report shows them (the method names; "-" for
  // recipients no method was chosen for yet).
  std::vector<keyed_count> methods;
  // Delivered recipients by TLS version ("TLSv1.3", ...; "none" without TLS),
  // the newest first.
  std::vector<keyed_count> tls_versions;
  // Delivered recipients by how the MX certificate was judged: dane,
  // mta-sts, verified, unverified, none (always all five, in that order),
  // then anything else the record holds ("-" when it holds nothing).
  std::vector<keyed_count> certificates;
  // Every day of the period, those without mail included (a chart's axis
  // has no gaps); empty when the period has no mail.
  std::vector<compliance_day> days;
  // By recipient domain, the largest first (then by name): recipients that
  // went through the portal, recipients delivered in clear, and the domains
  // with deferrals or bounces.
  std::vector<keyed_count> portal_domains, clear_domains;
  std::vector<domain_trouble> trouble_domains;

  // The portal store's counts for deposits made since `since`, filled by the
  // caller (the record never opens the portal's store); none when the portal
  // is not configured.
  std::optional<portal::deposit_counts> portal_deposits;
};

// Throws std::runtime_error as read_message_story (report.hpp).
compliance_summary summarize_compliance(const sql::location& database, int64_t since, int64_t until);

// n of of as a percentage with one decimal ("97.5"; "0.0" of nothing): the
// one spelling the JSON and the HTML share.
std::string percent_text(int64_t n, int64_t of);

}  // namespace sealgate::gateway
