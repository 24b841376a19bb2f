// The audit log's pieces: an event's text, the hash chain's links, the
// Ed25519 key that signs checkpoints, and the verification that names the
// first entry altered, inserted or deleted. The database (database.hpp)
// appends entries in the same transaction as the rows they describe; the
// daemon signs checkpoints; `sealgate audit verify` runs verify_chain.
//
// The format is plain on purpose, so that an auditor can check it without
// sealgate (docs/audit.md): an entry's hash is SHA-256 over the previous
// entry's hash (64 hex digits) followed by the entry's JSON text, in hex; a
// checkpoint is a one-line statement signed with Ed25519 (openssl pkeyutl
// -verify -rawin).
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/sql.hpp"

namespace sealgate::gateway::audit {

// The prev of the first entry.
inline constexpr std::string_view genesis = "0000000000000000000000000000000000000000000000000000000000000000";

// SHA-256 over prev then entry, lower-case hex (common/text's sha256_hex):
// an entry's hash.
std::string link_hash(std::string_view prev, std::string_view entry);

// An event as the chain stores it: one JSON object whose first members are
// the kind, the time (unix seconds) and, for events of a message, its
// queue id. Values are text or integers; nothing of a message's content.
class event {
 public:
  event(std::string_view kind, int64_t at, std::string_view queue_id = {});
  event& add(std::string_view name, std::string_view text);
  event& add(std::string_view name, const char* text) { return add(name, std::string_view(text)); }
  event& add(std::string_view name, int64_t number);
  event& add(std::string_view name, const std::vector<std::string>& texts);  // a JSON array
  // Added only when not empty (a detail the event did not know).
  event& add_known(std::string_view name, std::string_view text);
  std::string text() const { return text_ + "}"; }

 private:
  std::string text_;
};

// An entry read back: the inverse of event, and only of what event writes
// (one flat object of texts, integers and arrays of them), so that no query
// needs a JSON function of its SQL dialect. A text reads back to exactly the
// bytes event was given (json_string writes an octet >= 0x80 as \u00XX).
class entry_fields {
 public:
  // nullopt for text that is not such an object.
  static std::optional<entry_fields> parse(std::string_view json);
  bool has(std::string_view name) const { return members_.find(name) != members_.end(); }
  // A text member, or an integer's decimal digits; "" when absent.
  std::string text(std::string_view name) const;
  std::optional<int64_t> integer(std::string_view name) const;     // nullopt unless an integer
  std::optional<size_t> array_size(std::string_view name) const;   // nullopt unless an array

  struct value {
    enum { is_text, is_integer, is_array } type = is_text;
    std::string text;
    int64_t number = 0;
    size_t items = 0;  // of an array
  };

 private:
  std::map<std::string, value, std::less<>> members_;
};

// The columns of audit_events that copy an entry's members for lookups
// (schema.hpp): what append writes, and what verify_chain expects of each.
struct lookup_columns {
  std::string queue_id, kind;  // "" is stored as NULL
  std::optional<int64_t> at, idx, attempt;
};
lookup_columns lookup_columns_of(const entry_fields& entry);

// The gateway's checkpoint key: Ed25519, a private key (which can sign) or a
// public one (which only verifies). Shared between threads read-only.
class ed25519_key {
 public:
  static ed25519_key generate();
  // A PEM file holding an Ed25519 private or public key. Throws std::runtime_error.
  static ed25519_key load(const std::filesystem::path& file);
  static ed25519_key from_pem(std::string_view pem);  // throws std::runtime_error
  // Creates private_file (0600) and public_file (0644) with a new key
  // unless private_file exists; then loads it.
  static ed25519_key load_or_create(const std::filesystem::path& private_file, const std::filesystem::path& public_file);

  bool can_sign() const { return has_private_; }
  std::string sign(std::string_view message) const;  // 64 raw bytes; throws without the private key
  bool verify(std::string_view message, std::string_view signature) const;
  std::string private_pem() const;
  std::string public_pem() const;
  // SHA-256 of the 32 raw public key bytes, hex: names the key in checkpoints.
  std::string key_id() const;

 private:
  struct pkey;
  std::shared_ptr<pkey> key_;
  bool has_private_ = false;
};

// The text a checkpoint signs: one line naming the entry and its hash.
std::string checkpoint_statement(int64_t seq, std::string_view head, int64_t at);

// A checkpoint as stored (audit_checkpoints) or as a witness copy holds it.
struct checkpoint {
  int64_t id = 0;
  int64_t seq = 0;
  std::string head;
  int64_t at = 0;
  std::string key_id, statement, signature;  // signature: base64
};
// The witness line: the statement, the signature and the key id, so that a
// witness copy alone can be checked against the key.
std::string witness_line(const checkpoint& c);
// nullopt for a line that is not one.
std::optional<checkpoint> parse_witness_line(std::string_view line);

// What `sealgate audit verify` finds. Intact when problems is empty.
struct finding {
  int64_t seq = 0;   // the entry (or checkpoint's entry) concerned
  std::string what;  // "altered: ...", "inserted: ...", "deleted: ...", "checkpoint ...", ...
};
struct verify_report {
  int64_t first_seq = 0, last_seq = 0;  // the entries checked
  int64_t entries = 0;
  int64_t checkpoints = 0;              // checkpoints whose signature and head were checked
  int64_t witnessed = 0;                // witness lines matched with a checkpoint
  std::optional<checkpoint> last_signed;  // the newest valid checkpoint within the range
  int64_t unsigned_entries = 0;         // entries after the newest checkpoint: chained, not yet signed
  int64_t purged_up_to = 0;             // entries up to this seq were purged (retention), 0 for none
  int64_t rows_checked = 0;             // record rows compared with their entries
  int64_t rows_before_log = 0;          // rows of messages received before the audit log began (not comparable)
  std::vector<finding> problems;
  bool intact() const { return problems.empty(); }
};

struct verify_options {
  int64_t since = 0;     // unix seconds: start at the newest valid checkpoint made at or before it (0: the start)
  int64_t from_seq = 0;  // or at the newest checkpoint before this entry (report --message); 0: unused
  int64_t to_seq = 0;    // stop at the first checkpoint at or after this entry; 0: the head
  std::vector<checkpoint> witness;  // copies kept elsewhere: each must equal the stored checkpoint
  // Also compare the record's rows (messages, recipients, attempts) with
  // their entries: a row edited, added or left without its entry is named.
  // Only messages received at or after since, and only queue_id's when set.
  bool check_records = true;
  std::string queue_id;  // only this message's rows (report --message); "": all
};

// Checks the chain in a record file (opened read-only) with the public key:
// every entry's hash, every link, the sequence, every checkpoint's
// signature and head, the witness copies, and a purge's anchor. Throws
// std::runtime_error when the file cannot be read.
verify_report verify_chain(const sql::location& database, const ed25519_key& key,
                           const verify_options& options = {});

}  // namespace sealgate::gateway::audit
