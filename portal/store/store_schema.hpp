// The SQLite portal store's tables, each described once with the numbered
// migration that added it (common/sqlite_schema.hpp derives the SQL). Never
// a column that opens a message: ciphertext, wrapped keys, hashes of codes
// and session tokens, boxes only the gateway opens.
//
// The ciphertext has a table of its own (sealed_messages): retracting or
// expiring an entry deletes that row, and with secure_delete SQLite zeroes
// the freed pages, while the metadata row stays for the audit.
#pragma once
#include <iterator>

#include "common/sql_schema.hpp"

namespace sealgate::portal::schema {

using sql::column_def;
using sql::index_def;
using sql::migration_def;
using sql::table_def;

// One deposit for one recipient: what is known without its link. Times are
// unix seconds, as everywhere below.
inline constexpr column_def entry_columns[] = {
    // AUTOINCREMENT: an id is never reused, so an event, a session or an
    // outbox item can never come to name another recipient's message.
    {"id", "INTEGER PRIMARY KEY AUTOINCREMENT"},
    {"lookup", "TEXT NOT NULL UNIQUE"},  // lookup_key(token), hex: what a link finds the entry by
    {"queue_id", "TEXT NOT NULL"},
    {"recipient", "TEXT NOT NULL"},
    {"sender", "TEXT NOT NULL"},
    {"notice_queue_id", "TEXT"},  // NULL until the notification is spooled
    {"created", "INTEGER NOT NULL"},
    {"expires", "INTEGER NOT NULL"},
    {"size", "INTEGER NOT NULL"},  // plaintext bytes
    {"state", "TEXT NOT NULL CHECK(state IN ('active', 'retracted', 'expired'))"},
    {"state_changed", "INTEGER"},  // NULL while active
    // The outstanding one-time code: NULL when there is none.
    {"code_hash", "TEXT"},     // code_hash(session token, code)
    {"code_session", "TEXT"},  // session_key(session token) of the browser that asked
    {"code_expires", "INTEGER"},
    {"failed_codes", "INTEGER NOT NULL DEFAULT 0"},  // since the last lock or success
    {"locked_until", "INTEGER NOT NULL DEFAULT 0"},
    {"codes_sent", "INTEGER NOT NULL DEFAULT 0"},    // in the window that began at codes_window
    {"codes_window", "INTEGER NOT NULL DEFAULT 0"},
};
inline constexpr table_def entries{"entries", entry_columns, "", 1};

// The ciphertext of an active entry, and nothing else: deleted at once when
// the entry is retracted or expires.
inline constexpr column_def sealed_message_columns[] = {
    {"entry_id", "INTEGER PRIMARY KEY REFERENCES entries(id) ON DELETE CASCADE"},
    {"body", "BLOB NOT NULL"},       // aead_seal(content key, message)
    {"link_wrap", "BLOB NOT NULL"},  // the content key under the link key
    {"master_wrap", "BLOB"},         // under the master key; NULL without one
};
inline constexpr table_def sealed_messages{"sealed_messages", sealed_message_columns, "", 1};

// What happened to each entry, for `sealgate report` and the operator.
inline constexpr column_def event_columns[] = {
    {"id", "INTEGER PRIMARY KEY AUTOINCREMENT"},  // the order events happened in
    {"entry_id", "INTEGER REFERENCES entries(id)"},  // NULL for an event about no one entry
    {"queue_id", "TEXT NOT NULL"},
    {"recipient", "TEXT NOT NULL"},
    {"at", "INTEGER NOT NULL"},
    {"kind", "TEXT NOT NULL"},
    {"detail", "TEXT NOT NULL"},  // never content
};
inline constexpr table_def events{"events", event_columns, "", 1};

// Browser sessions that passed a code: the hash of their token, never the token.
inline constexpr column_def session_columns[] = {
    {"session_key", "TEXT PRIMARY KEY"},  // session_key(token), hex
    {"entry_id", "INTEGER NOT NULL REFERENCES entries(id)"},
    {"expires", "INTEGER NOT NULL"},
};
inline constexpr table_def sessions{"sessions", session_columns, "", 1};

// Mail the portal process asks the gateway to send, sealed to the gateway.
inline constexpr column_def outbox_columns[] = {
    {"id", "INTEGER PRIMARY KEY AUTOINCREMENT"},  // never reused: the gateway removes by id
    {"entry_id", "INTEGER NOT NULL REFERENCES entries(id)"},
    {"kind", "TEXT NOT NULL CHECK(kind IN ('code', 'reply', 'notice'))"},
    {"created", "INTEGER NOT NULL"},
    {"box", "BLOB NOT NULL"},
};
inline constexpr table_def outbox{"outbox", outbox_columns, "", 1};

// Values one process publishes for the other (the gateway's box public key).
inline constexpr column_def setting_columns[] = {
    {"name", "TEXT PRIMARY KEY"},
    {"value", "BLOB NOT NULL"},  // bytes: a raw key is no text
};
inline constexpr table_def settings{"settings", setting_columns, "", 1};

// In the order a fresh store creates them (a table before those that reference it).
inline constexpr table_def tables[] = {sql::schema_version_table, entries, sealed_messages, events, sessions,
                                       outbox, settings};

inline constexpr index_def indexes[] = {
    // lookup has its own through UNIQUE.
    {"entries_by_recipient", "entries", "recipient", 1},           // portal list --recipient
    {"entries_by_queue_id", "entries", "queue_id, recipient", 1},  // list --queue-id, retract
    {"entries_by_expiry", "entries", "state, expires", 1},         // expire(now): active ones past expiry
    {"events_by_queue_id", "events", "queue_id", 1},               // events(queue id)
    {"sessions_by_expiry", "sessions", "expires", 1},              // deleting expired sessions
};

inline constexpr migration_def migrations[] = {
    {1, "the portal store: entries, sealed messages, events, sessions, outbox, settings"},
};
inline constexpr int newest_version = static_cast<int>(std::size(migrations));

inline constexpr sql::schema_def description{tables, indexes, migrations};

}  // namespace sealgate::portal::schema
