// The record's tables, each described once: its columns in order, with the
// numbered migration that added each (common/sql_schema.hpp derives the
// statements). Columns are never renamed or dropped: operators and the
// integration tests read them by name with sqlite3.
#pragma once
#include <filesystem>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include "common/sql.hpp"
#include "common/sql_schema.hpp"


namespace sealgate::gateway {

// The description's vocabulary and the statements derived from it are
// shared with the portal store (common/sql_schema.hpp).
using sql::column_def;
using sql::index_def;
using sql::insert_statement;
using sql::migration_def;
using sql::on_conflict;
using sql::select_statement;
using sql::stored_schema_version;
using sql::table_def;

namespace schema {

// The PostgreSQL schema the record's tables live in (SQLite: its own file).
inline constexpr std::string_view schema_name = "record";

// Each accepted message, written after its 250 (the spool is the truth; a
// row lost in a crash is rebuilt from the spool at start).
inline constexpr column_def message_columns[] = {
    {"queue_id", "TEXT PRIMARY KEY"},
    {"received_at", "INTEGER NOT NULL"},  // unix seconds, as every time below
    {"listener", "TEXT NOT NULL"},
    {"client_address", "TEXT NOT NULL"},
    {"helo", "TEXT NOT NULL"},
    {"auth_user", "TEXT"},
    {"tls_protocol", "TEXT"},
    {"tls_cipher", "TEXT"},
    {"sender", "TEXT NOT NULL"},  // "" for the null sender (DSNs)
    {"recipients", "INTEGER NOT NULL"},
    {"size", "INTEGER NOT NULL"},  // as spooled, our Received: header included
    {"message_id", "TEXT", 2},     // from the header; NULL when the message has none
    {"relay_class", "TEXT", 3},    // the relay class that admitted it (relay.classes, networks, auth)
};
inline constexpr table_def messages{"messages", message_columns, "", 1};

// The version this file's schema is at: one row.
inline constexpr table_def schema_version = sql::schema_version_table;

// One row per recipient of each message: its current state and how it left
// (method, rule, MX, TLS, certificate, reply), so that an audit can answer
// "how did this reach that address" with one row.
inline constexpr column_def recipient_columns[] = {
    {"queue_id", "TEXT NOT NULL", 2},
    {"idx", "INTEGER NOT NULL", 2},  // the recipient's position in the envelope
    {"address", "TEXT NOT NULL", 2},
    {"domain", "TEXT NOT NULL", 2},
    // queued, held, deferred, method-failed, delivered, bounced, expired, deleted
    {"status", "TEXT NOT NULL", 2},
    {"method", "TEXT", 2},
    {"rule", "TEXT", 2},
    {"policy_sha256", "TEXT", 2},
    {"mx_host", "TEXT", 2},
    {"mx_address", "TEXT", 2},
    {"tls_protocol", "TEXT", 2},
    {"tls_cipher", "TEXT", 2},
    {"certificate", "TEXT", 2},  // dane, mta-sts, verified, unverified, none
    {"attempts", "INTEGER NOT NULL DEFAULT 0", 2},
    {"reply", "TEXT", 2},  // the remote reply or our reason; never content
    {"updated_at", "INTEGER NOT NULL", 2},
    {"final_at", "INTEGER", 2},  // NULL while the recipient may still change
    {"classes", "TEXT", 5},          // the content classes the policy saw, comma-separated
    {"key_fingerprint", "TEXT", 5},  // pgp: the key's fingerprint; smime: the certificate's SHA-256
};
inline constexpr table_def recipients{"recipients", recipient_columns, "PRIMARY KEY(queue_id, idx)", 2};

// One row per delivery attempt: the whole story of a recipient, in order.
inline constexpr column_def attempt_columns[] = {
    {"queue_id", "TEXT NOT NULL", 2},
    {"idx", "INTEGER NOT NULL", 2},
    {"at", "INTEGER NOT NULL", 2},
    {"outcome", "TEXT NOT NULL", 2},  // delivered, deferred, bounced, method-failed, expired
    {"method", "TEXT", 2},
    {"rule", "TEXT", 2},
    {"policy_sha256", "TEXT", 2},
    {"mx_host", "TEXT", 2},
    {"mx_address", "TEXT", 2},
    {"tls_protocol", "TEXT", 2},
    {"tls_cipher", "TEXT", 2},
    {"certificate", "TEXT", 2},
    {"reply", "TEXT", 2},
    {"classes", "TEXT", 5},
    {"key_fingerprint", "TEXT", 5},
};
inline constexpr table_def attempts{"attempts", attempt_columns, "", 2, true};
// The id of an attempts row (the audit entry of an attempt names it, and it
// orders the attempts of one second), as SQL says it: attempts has no key
// column, so in SQLite it is the rowid; PostgreSQL, which has no rowid, gets
// an identity column of that name (table_def::rowid). Every query says
// attempt_id, so that the name is in one place.
inline constexpr std::string_view attempt_id = "rowid";

// Outbound TLS sessions per day as RFC 8460 (SMTP TLS Reporting) counts
// them, for the daily reports to each recipient domain that asks for them
// (`sealgate tlsrpt`): one row per policy, MX host, address and result.
inline constexpr column_def tls_session_columns[] = {
    {"day", "TEXT NOT NULL", 4},            // YYYY-MM-DD, UTC (RFC 8460 reports cover UTC days)
    {"policy_domain", "TEXT NOT NULL", 4},  // the recipient domain
    {"policy_type", "TEXT NOT NULL", 4},    // tlsa, sts, no-policy-found
    {"mx_host", "TEXT NOT NULL", 4},
    {"address", "TEXT NOT NULL", 4},        // the MX address; "" when no connection was made
    {"result_type", "TEXT NOT NULL", 4},    // success, or an RFC 8460 section 4.3 failure type
    {"sessions", "INTEGER NOT NULL", 4},
};
inline constexpr table_def tls_sessions{"tls_sessions", tls_session_columns,
                                        "PRIMARY KEY(day, policy_domain, policy_type, mx_host, address, result_type)", 4};

// The reports sent (or why not): one row per day, domain and destination,
// so that a restart or a second `tlsrpt send` sends nothing twice.
inline constexpr column_def tls_report_columns[] = {
    {"day", "TEXT NOT NULL", 4},
    {"policy_domain", "TEXT NOT NULL", 4},
    {"destination", "TEXT NOT NULL", 4},  // mailto:ADDRESS or the https URL; "" when the domain asks for none
    {"result", "TEXT NOT NULL", 4},       // queued QUEUEID, posted, no-record, failed: why
    {"at", "INTEGER NOT NULL", 4},
};
inline constexpr table_def tls_reports{"tls_reports", tls_report_columns,
                                       "PRIMARY KEY(day, policy_domain, destination)", 4};

// The audit log: every record event (accepted, each attempt and change of
// state, each portal event, operator actions, policy loads) as one entry of
// a hash chain. entry is the event as a JSON object, stored and hashed as
// these exact bytes; hash is SHA-256 over prev (the previous entry's hash,
// 64 zeros for the first) followed by entry, in lower-case hex. seq orders
// the entries but is not hashed: the links do. See audit_log.hpp and
// docs/audit.md (how to check it with sqlite3 and openssl alone).
//
// The lookup columns (queue_id, kind, at, idx, attempt) copy members of the
// entry so that queries find entries without reading JSON in SQL: filled
// from the entry at append (audit::lookup_columns_of), never hashed, and
// compared with their entry by verify_chain. NULL where the entry has no
// such member.
inline constexpr column_def audit_event_columns[] = {
    {"seq", "INTEGER PRIMARY KEY", 5},
    {"queue_id", "TEXT", 5},  // the entry's queue_id; NULL for events of no message
    {"entry", "TEXT NOT NULL", 5},
    {"prev", "TEXT NOT NULL", 5},
    {"hash", "TEXT NOT NULL", 5},
    {"kind", "TEXT", 6},        // the entry's kind (every entry has one)
    {"at", "INTEGER", 6},       // its time, unix seconds (the retention purge's range)
    {"idx", "INTEGER", 6},      // the recipient's index, for events of one recipient
    {"attempt", "INTEGER", 6},  // the attempts row it describes (schema::attempt_id)
};
inline constexpr table_def audit_events{"audit_events", audit_event_columns, "", 5};

// Signed checkpoints of the chain: statement is the exact text signed with
// the gateway's Ed25519 key (it names the entry seq, its hash and the time),
// signature its base64. A purge leaves a checkpoint at the last entry it
// removed, from which the rest of the chain verifies.
inline constexpr column_def audit_checkpoint_columns[] = {
    {"id", "INTEGER PRIMARY KEY", 5},
    {"seq", "INTEGER NOT NULL", 5},
    {"head", "TEXT NOT NULL", 5},
    {"at", "INTEGER NOT NULL", 5},
    {"key_id", "TEXT NOT NULL", 5},  // SHA-256 of the raw public key, hex
    {"statement", "TEXT NOT NULL", 5},
    {"signature", "TEXT NOT NULL", 5},
};
inline constexpr table_def audit_checkpoints{"audit_checkpoints", audit_checkpoint_columns, "", 5};

// Every policy the gateway has loaded, by the SHA-256 of its bytes (the
// policy_sha256 of recipients and attempts), so that `sealgate policy show
// --hash` prints exactly what decided a past delivery.
inline constexpr column_def policy_version_columns[] = {
    {"sha256", "TEXT PRIMARY KEY", 5},
    {"first_loaded", "INTEGER NOT NULL", 5},
    {"file", "TEXT NOT NULL", 5},
    {"text", "BLOB NOT NULL", 5},  // the file's bytes
};
inline constexpr table_def policy_versions{"policy_versions", policy_version_columns, "", 5};

// Where the gateway's copying of other logs into the chain has got to: the
// portal store's last event id (the portal process writes its events there).
inline constexpr column_def audit_cursor_columns[] = {
    {"name", "TEXT PRIMARY KEY", 5},
    {"value", "INTEGER NOT NULL", 5},
};
inline constexpr table_def audit_cursors{"audit_cursors", audit_cursor_columns, "", 5};

// The writer's transactions, by the random id each carries
// (record_journal.hpp): a batch replayed from the local journal whose
// transaction had committed after all (its COMMIT's reply was lost) finds its
// id here and is skipped, so nothing is recorded twice.
inline constexpr column_def record_batch_columns[] = {
    {"batch_id", "TEXT PRIMARY KEY", 7},
    {"at", "INTEGER NOT NULL", 7},
};
inline constexpr table_def record_batches{"record_batches", record_batch_columns, "", 7};

// In the order a fresh database creates them.
inline constexpr table_def tables[] = {messages,         schema_version,    recipients,      attempts,
                                       tls_sessions,     tls_reports,       audit_events,    audit_checkpoints,
                                       policy_versions,  audit_cursors,     record_batches};

inline constexpr index_def indexes[] = {
    {"attempts_by_message", "attempts", "queue_id, idx", 2},  // queue show, report --message
    {"recipients_by_status", "recipients", "status", 2},
    {"audit_events_by_message", "audit_events", "queue_id", 5},  // report --message
    {"messages_by_received", "messages", "received_at", 5},       // reports by period, the retention purge
    {"audit_events_by_at", "audit_events", "at", 6},              // the retention purge
};

// Numbered from 1 with no gap; a database records the last one it ran. A
// change the description cannot say gets SQL of its own here (a backfill).
inline constexpr migration_def migrations[] = {
    {1, "accepted messages"},
    {2, "the delivery record: messages.message_id, recipients, attempts"},
    {3, "messages.relay_class"},
    {4, "tls_sessions and tls_reports (RFC 8460)"},
    {5, "the audit log: audit_events (a hash chain), audit_checkpoints, policy_versions, audit_cursors; "
        "classes and key_fingerprint of recipients and attempts"},
    {6, "the audit log's lookup columns: audit_events.kind, at, idx, attempt",
     // The entries written before: their members, read by SQLite itself. An
     // entry that is not valid JSON (altered) keeps NULLs, and verify names it.
     "UPDATE audit_events SET kind = json_extract(entry, '$.kind'), at = json_extract(entry, '$.at'),"
     " idx = json_extract(entry, '$.idx'), attempt = json_extract(entry, '$.attempt') WHERE json_valid(entry)"},
    {7, "record_batches: the ids of the writer's transactions, for replays of the local journal"},
};
inline constexpr int newest_version = static_cast<int>(std::size(migrations));

inline constexpr sql::schema_def description{tables, indexes, migrations};

}  // namespace schema

// The statements of one migration of the record (sql::migration_statements).
std::vector<std::string> migration_statements(int version, sql::engine e = sql::engine::sqlite);

// Opens the record for reading. A reader never upgrades (it may run as a
// user that cannot write the file, while the gateway has it open), so it
// reads only the schema it was built for. Throws std::runtime_error.
sql::connection_ptr open_record_read_only(const sql::location& where);

// Brings the record to schema::newest_version (sql::upgrade_schema); place
// names it in errors.
void upgrade_schema(sql::connection* db, const std::string& place);

}  // namespace sealgate::gateway
