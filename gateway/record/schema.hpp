// The record's tables, each described once: its columns in order, with the
// numbered migration that added each. CREATE, ALTER, INSERT and SELECT
// statements are derived from this description, and code names columns,
// never positions. Columns are never renamed or dropped: operators and the
// integration tests read them by name with sqlite3.
#pragma once
#include <filesystem>
#include <initializer_list>
#include <iterator>
#include <span>
#include <string>
#include <string_view>
#include <vector>

struct sqlite3;

namespace sealgate::gateway {

struct column_def {
  std::string_view name;
  std::string_view type;  // type and constraints, as CREATE TABLE has them
  int since = 1;          // the migration that added the column
};

struct table_def {
  std::string_view name;
  std::span<const column_def> columns;
  std::string_view constraints;  // table constraints after the columns, "" for none
  int since = 1;                 // the migration that created the table

  constexpr const column_def* find(std::string_view column) const {
    for (const auto& c : columns)
      if (c.name == column) return &c;
    return nullptr;
  }
  // For the compile-time checks: by name, not by address (with
  // -fsanitize=address, g++ cannot compare a global's address in a constant
  // expression).
  constexpr size_t count(std::string_view column) const {
    size_t n = 0;
    for (const auto& c : columns) n += c.name == column ? 1 : 0;
    return n;
  }
};

struct index_def {
  std::string_view name, table, columns;
  int since = 1;
};

// A schema version: what the database holds once its migration has run.
struct migration_def {
  int version;
  std::string_view what;
};

namespace schema {

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
};
inline constexpr table_def messages{"messages", message_columns, "", 1};

// The version this file's schema is at: one row.
inline constexpr column_def schema_version_columns[] = {{"version", "INTEGER NOT NULL"}};
inline constexpr table_def schema_version{"schema_version", schema_version_columns, "", 1};

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
};
inline constexpr table_def attempts{"attempts", attempt_columns, "", 2};

// In the order a fresh database creates them.
inline constexpr table_def tables[] = {messages, schema_version, recipients, attempts};

inline constexpr index_def indexes[] = {
    {"attempts_by_message", "attempts", "queue_id, idx", 2},  // queue show, report --message
    {"recipients_by_status", "recipients", "status", 2},
};

// Numbered from 1 with no gap; a database records the last one it ran. A
// change the description cannot say (a backfill, a table rebuilt to drop a
// constraint) would get SQL of its own here.
inline constexpr migration_def migrations[] = {
    {1, "accepted messages"},
    {2, "the delivery record: messages.message_id, recipients, attempts"},
};
inline constexpr int newest_version = static_cast<int>(std::size(migrations));

}  // namespace schema

// The statements of one migration, derived from the description: the tables
// it creates (with the columns they had then), the columns it adds to older
// tables, the indexes it creates. Not the schema_version update.
std::vector<std::string> migration_statements(int version);

// INSERT INTO table(columns) VALUES(:column, ...); every column of the table
// when columns is empty. verb is "INSERT" or "INSERT OR IGNORE". Throws
// std::logic_error for a column the table does not have.
std::string insert_statement(const table_def& table, std::string_view verb,
                             std::initializer_list<std::string_view> columns = {});
// SELECT every column of the table (read them by name) FROM table, then rest
// (a WHERE and ORDER BY clause, with :parameters).
std::string select_statement(const table_def& table, std::string_view rest);

// The version the database's schema_version table holds; 0 for a database
// without one (a new, empty file).
int stored_schema_version(sqlite3* db);

// Brings the database to schema::newest_version: each migration it has not
// run yet, in order, in one transaction each (with its schema_version
// update), so a crash leaves it at some version, never between two. A
// database newer than this code is refused rather than written in a shape
// this code does not know. Throws std::runtime_error naming file and the
// migration.
void upgrade_schema(sqlite3* db, const std::filesystem::path& file);

}  // namespace sealgate::gateway
