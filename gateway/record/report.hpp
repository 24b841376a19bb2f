// The queries that read the record, beside its schema: one message's story
// (`sealgate queue show`, `report --message`) and the delivery counts of
// `sealgate report`. They return plain values; formatting is the caller's.
// They open the file read-only and never create or upgrade it.
#pragma once
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/sql.hpp"

namespace sealgate::gateway {

// A row of `messages`. Text columns that are NULL read as "".
struct message_record {
  std::string queue_id;
  int64_t received_at = 0;
  std::string listener, client_address, helo, auth_user, tls_protocol, tls_cipher, sender;
  std::string relay_class;
  int64_t recipients = 0, size = 0;
  std::string message_id;
};

// A row of `recipients`: a recipient's current state.
struct recipient_record {
  size_t index = 0;
  std::string address, domain, status, method, rule, policy_sha256;
  std::string mx_host, mx_address, tls_protocol, tls_cipher, certificate;
  std::string classes, key_fingerprint;
  int64_t attempts = 0;
  std::string reply;
  int64_t updated_at = 0;
  std::optional<int64_t> final_at;  // none while the recipient may still change
};

// A row of `attempts`: one delivery attempt of one recipient.
struct attempt_record {
  size_t index = 0;  // the recipient's position in the envelope
  int64_t at = 0;
  std::string outcome, method, rule, policy_sha256, mx_host, mx_address, tls_protocol, tls_cipher, certificate, reply;
  std::string classes, key_fingerprint;
};

// Everything the record holds on one message.
struct message_story {
  std::optional<message_record> message;  // none when only recipient rows exist, or nothing does
  std::vector<recipient_record> recipients;  // by index
  std::vector<attempt_record> attempts;      // in the order they happened
};

// Throws std::runtime_error when the file cannot be read or its schema is not
// this sealgate's (an older one is upgraded by starting the gateway).
message_story read_message_story(const sql::location& database, std::string_view queue_id);

// What `sealgate report` groups recipients by.
enum class report_grouping { method, recipient_domain, sender, day };
// "method", "recipient-domain", "sender", "day" (as the command line spells them).
std::optional<report_grouping> report_grouping_from(std::string_view name);

// Recipients of one group, by status. Secured: delivered end to end (pgp,
// smime), through the portal, or over TLS. queued counts held recipients
// too, deferred counts method failures, bounced counts expired ones.
struct delivery_counts {
  std::string key;  // the method ("-" when none was chosen), domain, sender or day (YYYY-MM-DD, UTC)
  int64_t recipients = 0, delivered = 0, secured = 0, queued = 0, deferred = 0, bounced = 0, deleted = 0;
};

// Recipients of messages received at or after since (unix seconds), one
// entry per group, the largest first (then by key). Throws as
// read_message_story.
std::vector<delivery_counts> count_deliveries(const sql::location& database, report_grouping by,
                                              int64_t since);

// The TLS sessions of one UTC day (YYYY-MM-DD), every policy domain or one,
// as the record counted them (tls_sessions), ordered by domain.
struct tls_session_count {
  std::string policy_domain, policy_type, mx_host, address, result_type;
  int64_t sessions = 0;
};
std::vector<tls_session_count> read_tls_sessions(const sql::location& database, std::string_view day,
                                                 std::string_view policy_domain = {});

// `sealgate report --find`: messages by Message-ID, sender, recipient and
// time received, newest first. Empty fields match anything; addresses and
// the Message-ID match exactly (case-insensitively for addresses).
struct message_search {
  std::string message_id, sender, recipient;
  int64_t since = 0, until = 0;  // unix seconds, [since, until); 0: open
  size_t limit = 100;
};
struct found_message {
  std::string queue_id, sender, message_id;
  int64_t received_at = 0;
  std::vector<std::pair<std::string, std::string>> recipients;  // (address, status), in envelope order
};
std::vector<found_message> find_messages(const sql::location& database, const message_search& search);

// One entry of the audit chain (audit_events).
struct audit_entry_record {
  int64_t seq = 0, at = 0;
  std::string kind, hash, entry;  // entry: the JSON text the hash covers
};
// A message's entries, in order.
std::vector<audit_entry_record> read_audit_entries(const sql::location& database,
                                                   std::string_view queue_id);

// A policy the gateway loaded (policy_versions): its bytes as loaded.
struct policy_version {
  std::string sha256, file, text;
  int64_t first_loaded = 0;
};
// By its hash or a prefix of it (8 hex digits or more) that names one
// version; nullopt when none does. Throws std::runtime_error when the file
// cannot be read, or the prefix names more than one.
std::optional<policy_version> read_policy_version(const sql::location& database, std::string_view sha256);

}  // namespace sealgate::gateway
