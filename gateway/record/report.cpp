// Read-only queries of the record; see report.hpp.
#include "gateway/record/report.hpp"

#include <stdexcept>

#include "common/sql.hpp"
#include "gateway/record/schema.hpp"
#include "gateway/record/tlsrpt.hpp"

namespace sealgate::gateway {

namespace {

message_record message_from(const sql::statement& row) {
  message_record m;
  m.queue_id = row.text("queue_id");
  m.received_at = row.integer("received_at");
  m.listener = row.text("listener");
  m.client_address = row.text("client_address");
  m.helo = row.text("helo");
  m.auth_user = row.text("auth_user");
  m.relay_class = row.text("relay_class");
  m.tls_protocol = row.text("tls_protocol");
  m.tls_cipher = row.text("tls_cipher");
  m.sender = row.text("sender");
  m.recipients = row.integer("recipients");
  m.size = row.integer("size");
  m.message_id = row.text("message_id");
  return m;
}

recipient_record recipient_from(const sql::statement& row) {
  recipient_record r;
  r.index = static_cast<size_t>(row.integer("idx"));
  r.address = row.text("address");
  r.domain = row.text("domain");
  r.status = row.text("status");
  r.method = row.text("method");
  r.rule = row.text("rule");
  r.policy_sha256 = row.text("policy_sha256");
  r.mx_host = row.text("mx_host");
  r.mx_address = row.text("mx_address");
  r.tls_protocol = row.text("tls_protocol");
  r.tls_cipher = row.text("tls_cipher");
  r.certificate = row.text("certificate");
  r.attempts = row.integer("attempts");
  r.reply = row.text("reply");
  r.classes = row.text("classes");
  r.key_fingerprint = row.text("key_fingerprint");
  r.updated_at = row.integer("updated_at");
  r.final_at = row.optional_integer("final_at");
  return r;
}

attempt_record attempt_from(const sql::statement& row) {
  attempt_record a;
  a.index = static_cast<size_t>(row.integer("idx"));
  a.at = row.integer("at");
  a.outcome = row.text("outcome");
  a.method = row.text("method");
  a.rule = row.text("rule");
  a.policy_sha256 = row.text("policy_sha256");
  a.mx_host = row.text("mx_host");
  a.mx_address = row.text("mx_address");
  a.tls_protocol = row.text("tls_protocol");
  a.tls_cipher = row.text("tls_cipher");
  a.certificate = row.text("certificate");
  a.reply = row.text("reply");
  a.classes = row.text("classes");
  a.key_fingerprint = row.text("key_fingerprint");
  return a;
}

constexpr std::pair<report_grouping, std::string_view> grouping_names[] = {
    {report_grouping::method, "method"},
    {report_grouping::recipient_domain, "recipient-domain"},
    {report_grouping::sender, "sender"},
    {report_grouping::day, "day"}};

// The SQL expression of a group's key, over recipients r joined to messages m.
std::string_view grouping_key(report_grouping by) {
  switch (by) {
    case report_grouping::method: return "COALESCE(r.method, '-')";
    case report_grouping::recipient_domain: return "r.domain";
    case report_grouping::sender: return "m.sender";
    // The day's number since 1970 (integer division in every SQL), named in C++.
    case report_grouping::day: return "m.received_at / 86400";
  }
  throw std::logic_error("report: unknown grouping");
}

}  // namespace

message_story read_message_story(const sql::location& database, std::string_view queue_id) {
  auto db = open_record_read_only(database);
  message_story story;
  sql::statement message(db.get(), select_statement(schema::messages, "WHERE queue_id = :queue_id"));
  message.bind("queue_id", queue_id);
  if (message.next_row()) story.message = message_from(message);
  sql::statement recipients(db.get(), select_statement(schema::recipients, "WHERE queue_id = :queue_id ORDER BY idx"));
  recipients.bind("queue_id", queue_id);
  while (recipients.next_row()) story.recipients.push_back(recipient_from(recipients));
  // The row's id breaks ties: attempts of one pass share their second.
  sql::statement attempts(db.get(), select_statement(schema::attempts, "WHERE queue_id = :queue_id ORDER BY at, " +
                                                                              std::string(schema::attempt_id)));
  attempts.bind("queue_id", queue_id);
  while (attempts.next_row()) story.attempts.push_back(attempt_from(attempts));
  return story;
}

std::optional<report_grouping> report_grouping_from(std::string_view name) {
  for (const auto& [value, text] : grouping_names)
    if (text == name) return value;
  return std::nullopt;
}

std::vector<delivery_counts> count_deliveries(const sql::location& database, report_grouping by,
                                              int64_t since) {
  auto db = open_record_read_only(database);
  sql::statement counts(
      db.get(),
      "SELECT " + std::string(grouping_key(by)) +
          " AS grouped_by, COUNT(*) AS total,"
          " COUNT(*) FILTER (WHERE r.status = 'delivered') AS delivered,"
          " COUNT(*) FILTER (WHERE r.status = 'delivered'"
          "   AND (r.method IN ('pgp', 'smime', 'portal') OR r.tls_protocol IS NOT NULL)) AS secured,"
          " COUNT(*) FILTER (WHERE r.status IN ('queued', 'held')) AS queued,"
          " COUNT(*) FILTER (WHERE r.status IN ('deferred', 'method-failed')) AS deferred,"
          " COUNT(*) FILTER (WHERE r.status IN ('bounced', 'expired')) AS bounced,"
          " COUNT(*) FILTER (WHERE r.status = 'deleted') AS deleted"
          " FROM recipients r JOIN messages m ON m.queue_id = r.queue_id"
          " WHERE m.received_at >= :since GROUP BY grouped_by ORDER BY total DESC, grouped_by");
  counts.bind("since", since);
  std::vector<delivery_counts> out;
  while (counts.next_row()) {
    delivery_counts c;
    c.key = by == report_grouping::day ? utc_day(counts.integer("grouped_by") * 86400) : counts.text("grouped_by");
    c.recipients = counts.integer("total");
    c.delivered = counts.integer("delivered");
    c.secured = counts.integer("secured");
    c.queued = counts.integer("queued");
    c.deferred = counts.integer("deferred");
    c.bounced = counts.integer("bounced");
    c.deleted = counts.integer("deleted");
    out.push_back(std::move(c));
  }
  return out;
}

std::vector<tls_session_count> read_tls_sessions(const sql::location& database, std::string_view day,
                                                 std::string_view policy_domain) {
  auto db = open_record_read_only(database);
  sql::statement q(db.get(),
                      "SELECT policy_domain, policy_type, mx_host, address, result_type, sessions FROM tls_sessions "
                      "WHERE day = :day AND (COALESCE(:domain, '') = '' OR policy_domain = :domain) "
                      "ORDER BY policy_domain, policy_type, result_type, mx_host, address");
  q.bind("day", day);
  q.bind("domain", policy_domain);
  std::vector<tls_session_count> out;
  while (q.next_row())
    out.push_back({q.text("policy_domain"), q.text("policy_type"), q.text("mx_host"), q.text("address"),
                   q.text("result_type"), q.integer("sessions")});
  return out;
}

std::vector<found_message> find_messages(const sql::location& database, const message_search& search) {
  auto db = open_record_read_only(database);
  sql::statement q(
      db.get(),
      "SELECT m.queue_id, m.received_at, m.sender, m.message_id FROM messages m"
      " WHERE (:message_id = '' OR m.message_id = :message_id)"
      " AND (:sender = '' OR lower(m.sender) = lower(:sender))"
      " AND (:recipient = '' OR EXISTS (SELECT 1 FROM recipients r WHERE r.queue_id = m.queue_id"
      "      AND lower(r.address) = lower(:recipient)))"
      " AND m.received_at >= :since AND (:until = 0 OR m.received_at < :until)"
      " ORDER BY m.received_at DESC, m.queue_id LIMIT :limit");
  q.bind("message_id", search.message_id);
  q.bind("sender", search.sender);
  q.bind("recipient", search.recipient);
  q.bind("since", search.since);
  q.bind("until", search.until);
  q.bind("limit", static_cast<int64_t>(search.limit));
  std::vector<found_message> out;
  while (q.next_row())
    out.push_back({q.text("queue_id"), q.text("sender"), q.text("message_id"), q.integer("received_at"), {}});
  sql::statement r(db.get(), "SELECT address, status FROM recipients WHERE queue_id = :queue_id ORDER BY idx");
  for (auto& m : out) {
    r.bind("queue_id", m.queue_id);
    while (r.next_row()) m.recipients.emplace_back(r.text("address"), r.text("status"));
  }
  return out;
}

std::vector<audit_entry_record> read_audit_entries(const sql::location& database,
                                                   std::string_view queue_id) {
  auto db = open_record_read_only(database);
  sql::statement q(db.get(),
                      "SELECT seq, at, kind, hash, entry FROM audit_events WHERE queue_id = :queue_id ORDER BY seq");
  q.bind("queue_id", queue_id);
  std::vector<audit_entry_record> out;
  while (q.next_row())
    out.push_back({q.integer("seq"), q.optional_integer("at").value_or(0), q.text("kind"), q.text("hash"), q.blob("entry")});
  return out;
}

std::optional<policy_version> read_policy_version(const sql::location& database,
                                                 std::string_view sha256) {
  auto db = open_record_read_only(database);
  // A prefix, as git takes one: LIKE is safe here, the caller checked the hex.
  sql::statement q(db.get(), select_statement(schema::policy_versions, "WHERE sha256 LIKE :prefix || '%' LIMIT 2"));
  q.bind("prefix", sha256);
  std::vector<policy_version> found;
  while (q.next_row())
    found.push_back({q.text("sha256"), q.text("file"), q.blob("text"), q.integer("first_loaded")});
  if (found.size() > 1) throw std::runtime_error("more than one policy has a hash that starts with " + std::string(sha256));
  if (found.empty()) return std::nullopt;
  return found.front();
}

}  // namespace sealgate::gateway
