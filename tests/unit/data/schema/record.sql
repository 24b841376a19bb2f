-- migration 1: accepted messages
CREATE TABLE messages(
    queue_id TEXT PRIMARY KEY,
    received_at INTEGER NOT NULL,
    listener TEXT NOT NULL,
    client_address TEXT NOT NULL,
    helo TEXT NOT NULL,
    auth_user TEXT,
    tls_protocol TEXT,
    tls_cipher TEXT,
    sender TEXT NOT NULL,
    recipients INTEGER NOT NULL,
    size INTEGER NOT NULL);
CREATE TABLE schema_version(
    version INTEGER NOT NULL);
-- migration 2: the delivery record: messages.message_id, recipients, attempts
ALTER TABLE messages ADD COLUMN message_id TEXT;
CREATE TABLE recipients(
    queue_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    address TEXT NOT NULL,
    domain TEXT NOT NULL,
    status TEXT NOT NULL,
    method TEXT,
    rule TEXT,
    policy_sha256 TEXT,
    mx_host TEXT,
    mx_address TEXT,
    tls_protocol TEXT,
    tls_cipher TEXT,
    certificate TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    reply TEXT,
    updated_at INTEGER NOT NULL,
    final_at INTEGER,
    PRIMARY KEY(queue_id, idx));
CREATE TABLE attempts(
    queue_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    at INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    method TEXT,
    rule TEXT,
    policy_sha256 TEXT,
    mx_host TEXT,
    mx_address TEXT,
    tls_protocol TEXT,
    tls_cipher TEXT,
    certificate TEXT,
    reply TEXT);
CREATE INDEX attempts_by_message ON attempts(queue_id, idx);
CREATE INDEX recipients_by_status ON recipients(status);
-- migration 3: messages.relay_class
ALTER TABLE messages ADD COLUMN relay_class TEXT;
-- migration 4: tls_sessions and tls_reports (RFC 8460)
CREATE TABLE tls_sessions(
    day TEXT NOT NULL,
    policy_domain TEXT NOT NULL,
    policy_type TEXT NOT NULL,
    mx_host TEXT NOT NULL,
    address TEXT NOT NULL,
    result_type TEXT NOT NULL,
    sessions INTEGER NOT NULL,
    PRIMARY KEY(day, policy_domain, policy_type, mx_host, address, result_type));
CREATE TABLE tls_reports(
    day TEXT NOT NULL,
    policy_domain TEXT NOT NULL,
    destination TEXT NOT NULL,
    result TEXT NOT NULL,
    at INTEGER NOT NULL,
    PRIMARY KEY(day, policy_domain, destination));
-- migration 5: the audit log: audit_events (a hash chain), audit_checkpoints, policy_versions, audit_cursors; classes and key_fingerprint of recipients and attempts
ALTER TABLE recipients ADD COLUMN classes TEXT;
ALTER TABLE recipients ADD COLUMN key_fingerprint TEXT;
ALTER TABLE attempts ADD COLUMN classes TEXT;
ALTER TABLE attempts ADD COLUMN key_fingerprint TEXT;
CREATE TABLE audit_events(
    seq INTEGER PRIMARY KEY,
    queue_id TEXT,
    entry TEXT NOT NULL,
    prev TEXT NOT NULL,
    hash TEXT NOT NULL);
CREATE TABLE audit_checkpoints(
    id INTEGER PRIMARY KEY,
    seq INTEGER NOT NULL,
    head TEXT NOT NULL,
    at INTEGER NOT NULL,
    key_id TEXT NOT NULL,
    statement TEXT NOT NULL,
    signature TEXT NOT NULL);
CREATE TABLE policy_versions(
    sha256 TEXT PRIMARY KEY,
    first_loaded INTEGER NOT NULL,
    file TEXT NOT NULL,
    text BLOB NOT NULL);
CREATE TABLE audit_cursors(
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL);
CREATE INDEX audit_events_by_message ON audit_events(queue_id);
CREATE INDEX messages_by_received ON messages(received_at);
-- migration 6: the audit log's lookup columns: audit_events.kind, at, idx, attempt
ALTER TABLE audit_events ADD COLUMN kind TEXT;
ALTER TABLE audit_events ADD COLUMN at INTEGER;
ALTER TABLE audit_events ADD COLUMN idx INTEGER;
ALTER TABLE audit_events ADD COLUMN attempt INTEGER;
CREATE INDEX audit_events_by_at ON audit_events(at);
-- backfill
UPDATE audit_events SET kind = json_extract(entry, '$.kind'), at = json_extract(entry, '$.at'), idx = json_extract(entry, '$.idx'), attempt = json_extract(entry, '$.attempt') WHERE json_valid(entry);
-- migration 7: record_batches: the ids of the writer's transactions, for replays of the local journal
CREATE TABLE record_batches(
    batch_id TEXT PRIMARY KEY,
    at INTEGER NOT NULL);
-- sqlite_master of a new file
index attempts_by_message: CREATE INDEX attempts_by_message ON attempts(queue_id, idx);
index audit_events_by_at: CREATE INDEX audit_events_by_at ON audit_events(at);
index audit_events_by_message: CREATE INDEX audit_events_by_message ON audit_events(queue_id);
index messages_by_received: CREATE INDEX messages_by_received ON messages(received_at);
index recipients_by_status: CREATE INDEX recipients_by_status ON recipients(status);
index sqlite_autoindex_audit_cursors_1: ;
index sqlite_autoindex_messages_1: ;
index sqlite_autoindex_policy_versions_1: ;
index sqlite_autoindex_recipients_1: ;
index sqlite_autoindex_record_batches_1: ;
index sqlite_autoindex_tls_reports_1: ;
index sqlite_autoindex_tls_sessions_1: ;
table attempts: CREATE TABLE attempts(
    queue_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    at INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    method TEXT,
    rule TEXT,
    policy_sha256 TEXT,
    mx_host TEXT,
    mx_address TEXT,
    tls_protocol TEXT,
    tls_cipher TEXT,
    certificate TEXT,
    reply TEXT, classes TEXT, key_fingerprint TEXT);
table audit_checkpoints: CREATE TABLE audit_checkpoints(
    id INTEGER PRIMARY KEY,
    seq INTEGER NOT NULL,
    head TEXT NOT NULL,
    at INTEGER NOT NULL,
    key_id TEXT NOT NULL,
    statement TEXT NOT NULL,
    signature TEXT NOT NULL);
table audit_cursors: CREATE TABLE audit_cursors(
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL);
table audit_events: CREATE TABLE audit_events(
    seq INTEGER PRIMARY KEY,
    queue_id TEXT,
    entry TEXT NOT NULL,
    prev TEXT NOT NULL,
    hash TEXT NOT NULL, kind TEXT, at INTEGER, idx INTEGER, attempt INTEGER);
table messages: CREATE TABLE messages(
    queue_id TEXT PRIMARY KEY,
    received_at INTEGER NOT NULL,
    listener TEXT NOT NULL,
    client_address TEXT NOT NULL,
    helo TEXT NOT NULL,
    auth_user TEXT,
    tls_protocol TEXT,
    tls_cipher TEXT,
    sender TEXT NOT NULL,
    recipients INTEGER NOT NULL,
    size INTEGER NOT NULL, message_id TEXT, relay_class TEXT);
table policy_versions: CREATE TABLE policy_versions(
    sha256 TEXT PRIMARY KEY,
    first_loaded INTEGER NOT NULL,
    file TEXT NOT NULL,
    text BLOB NOT NULL);
table recipients: CREATE TABLE recipients(
    queue_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    address TEXT NOT NULL,
    domain TEXT NOT NULL,
    status TEXT NOT NULL,
    method TEXT,
    rule TEXT,
    policy_sha256 TEXT,
    mx_host TEXT,
    mx_address TEXT,
    tls_protocol TEXT,
    tls_cipher TEXT,
    certificate TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    reply TEXT,
    updated_at INTEGER NOT NULL,
    final_at INTEGER, classes TEXT, key_fingerprint TEXT,
    PRIMARY KEY(queue_id, idx));
table record_batches: CREATE TABLE record_batches(
    batch_id TEXT PRIMARY KEY,
    at INTEGER NOT NULL);
table schema_version: CREATE TABLE schema_version(
    version INTEGER NOT NULL);
table tls_reports: CREATE TABLE tls_reports(
    day TEXT NOT NULL,
    policy_domain TEXT NOT NULL,
    destination TEXT NOT NULL,
    result TEXT NOT NULL,
    at INTEGER NOT NULL,
    PRIMARY KEY(day, policy_domain, destination));
table tls_sessions: CREATE TABLE tls_sessions(
    day TEXT NOT NULL,
    policy_domain TEXT NOT NULL,
    policy_type TEXT NOT NULL,
    mx_host TEXT NOT NULL,
    address TEXT NOT NULL,
    result_type TEXT NOT NULL,
    sessions INTEGER NOT NULL,
    PRIMARY KEY(day, policy_domain, policy_type, mx_host, address, result_type));
