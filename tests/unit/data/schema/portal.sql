-- migration 1: the portal store: entries, sealed messages, events, sessions, outbox, settings
CREATE TABLE schema_version(
    version INTEGER NOT NULL);
CREATE TABLE entries(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    lookup TEXT NOT NULL UNIQUE,
    queue_id TEXT NOT NULL,
    recipient TEXT NOT NULL,
    sender TEXT NOT NULL,
    notice_queue_id TEXT,
    created INTEGER NOT NULL,
    expires INTEGER NOT NULL,
    size INTEGER NOT NULL,
    state TEXT NOT NULL CHECK(state IN ('active', 'retracted', 'expired')),
    state_changed INTEGER,
    code_hash TEXT,
    code_session TEXT,
    code_expires INTEGER,
    failed_codes INTEGER NOT NULL DEFAULT 0,
    locked_until INTEGER NOT NULL DEFAULT 0,
    codes_sent INTEGER NOT NULL DEFAULT 0,
    codes_window INTEGER NOT NULL DEFAULT 0);
CREATE TABLE sealed_messages(
    entry_id INTEGER PRIMARY KEY REFERENCES entries(id) ON DELETE CASCADE,
    body BLOB NOT NULL,
    link_wrap BLOB NOT NULL,
    master_wrap BLOB);
CREATE TABLE events(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    entry_id INTEGER REFERENCES entries(id),
    queue_id TEXT NOT NULL,
    recipient TEXT NOT NULL,
    at INTEGER NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL);
CREATE TABLE sessions(
    session_key TEXT PRIMARY KEY,
    entry_id INTEGER NOT NULL REFERENCES entries(id),
    expires INTEGER NOT NULL);
CREATE TABLE outbox(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    entry_id INTEGER NOT NULL REFERENCES entries(id),
    kind TEXT NOT NULL CHECK(kind IN ('code', 'reply', 'notice')),
    created INTEGER NOT NULL,
    box BLOB NOT NULL);
CREATE TABLE settings(
    name TEXT PRIMARY KEY,
    value BLOB NOT NULL);
CREATE INDEX entries_by_recipient ON entries(recipient);
CREATE INDEX entries_by_queue_id ON entries(queue_id, recipient);
CREATE INDEX entries_by_expiry ON entries(state, expires);
CREATE INDEX events_by_queue_id ON events(queue_id);
CREATE INDEX sessions_by_expiry ON sessions(expires);
-- sqlite_master of a new file
index entries_by_expiry: CREATE INDEX entries_by_expiry ON entries(state, expires);
index entries_by_queue_id: CREATE INDEX entries_by_queue_id ON entries(queue_id, recipient);
index entries_by_recipient: CREATE INDEX entries_by_recipient ON entries(recipient);
index events_by_queue_id: CREATE INDEX events_by_queue_id ON events(queue_id);
index sessions_by_expiry: CREATE INDEX sessions_by_expiry ON sessions(expires);
index sqlite_autoindex_entries_1: ;
index sqlite_autoindex_sessions_1: ;
index sqlite_autoindex_settings_1: ;
table entries: CREATE TABLE entries(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    lookup TEXT NOT NULL UNIQUE,
    queue_id TEXT NOT NULL,
    recipient TEXT NOT NULL,
    sender TEXT NOT NULL,
    notice_queue_id TEXT,
    created INTEGER NOT NULL,
    expires INTEGER NOT NULL,
    size INTEGER NOT NULL,
    state TEXT NOT NULL CHECK(state IN ('active', 'retracted', 'expired')),
    state_changed INTEGER,
    code_hash TEXT,
    code_session TEXT,
    code_expires INTEGER,
    failed_codes INTEGER NOT NULL DEFAULT 0,
    locked_until INTEGER NOT NULL DEFAULT 0,
    codes_sent INTEGER NOT NULL DEFAULT 0,
    codes_window INTEGER NOT NULL DEFAULT 0);
table events: CREATE TABLE events(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    entry_id INTEGER REFERENCES entries(id),
    queue_id TEXT NOT NULL,
    recipient TEXT NOT NULL,
    at INTEGER NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL);
table outbox: CREATE TABLE outbox(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    entry_id INTEGER NOT NULL REFERENCES entries(id),
    kind TEXT NOT NULL CHECK(kind IN ('code', 'reply', 'notice')),
    created INTEGER NOT NULL,
    box BLOB NOT NULL);
table schema_version: CREATE TABLE schema_version(
    version INTEGER NOT NULL);
table sealed_messages: CREATE TABLE sealed_messages(
    entry_id INTEGER PRIMARY KEY REFERENCES entries(id) ON DELETE CASCADE,
    body BLOB NOT NULL,
    link_wrap BLOB NOT NULL,
    master_wrap BLOB);
table sessions: CREATE TABLE sessions(
    session_key TEXT PRIMARY KEY,
    entry_id INTEGER NOT NULL REFERENCES entries(id),
    expires INTEGER NOT NULL);
table settings: CREATE TABLE settings(
    name TEXT PRIMARY KEY,
    value BLOB NOT NULL);
table sqlite_sequence: CREATE TABLE sqlite_sequence(name,seq);
