// What the record's writer could not commit, kept on local disk until it can.
//
// A 250 depends on the spool only, and a message's files go once its rows are
// recorded. When the database cannot take a transaction (PostgreSQL
// unreachable or restarting, a lock held past its timeout, a full disk), the
// writer appends the transaction's batch here instead and reports it
// recorded: durable in the record or in this journal. It replays the journal,
// oldest first, before anything newer, so acceptances still come before
// their attempts, and deletes each file once its transaction committed.
//
// Every batch carries an id of 128 random bits, inserted in the same
// transaction as its rows (record_batches): a batch whose COMMIT reached the
// server but whose reply did not (PostgreSQL's 08007) is journaled too, and
// its replay finds the id and skips it.
//
// One file per batch in DIR (spool/records/, 0700): "NNNNNNNNNNNNNNNN.batch",
// written as ".tmp", fdatasync'd, then renamed and the directory fsync'd, so
// a name that ends in .batch always holds a whole batch. The file: a line
// "sealgate-record-batch 1 SHA256\n" (of what follows), then the batch's
// fields, each a little-endian u32 length and its bytes. A file that fails its
// digest is set aside as ".corrupt" and logged, never replayed or dropped
// silently.
#pragma once
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "gateway/mail/envelope.hpp"
#include "gateway/record/record_rows.hpp"

namespace sealgate::gateway {

// One transaction of the writer: what it records, in the order it records it.
struct record_batch {
  std::string id;  // 32 hex digits
  std::vector<spooled_envelope> accepted;
  std::vector<std::pair<std::string, std::string>> message_ids;  // (queue id, Message-ID)
  std::vector<attempt_row> rows;
  std::vector<tls_session_row> tls_sessions;

  bool empty() const { return accepted.empty() && message_ids.empty() && rows.empty() && tls_sessions.empty(); }
};

// A new batch id: 128 random bits in hex.
std::string new_batch_id();

// The journal's file format, without the header line: every field the
// record's transaction reads, nothing else (no content of a message).
std::string encode_batch(const record_batch& b);
std::optional<record_batch> decode_batch(std::string_view bytes);

class record_journal {
 public:
  // Creates dir (0700) when missing. Throws std::runtime_error when it cannot.
  explicit record_journal(std::filesystem::path dir);

  // Writes a batch durably after every batch already here. Returns an error
  // when the disk refuses (the caller then keeps it in memory and retries).
  std::error_code append(const record_batch& b);

  // The files waiting, oldest first.
  std::vector<std::filesystem::path> waiting() const;
  bool empty() const { return waiting().empty(); }
  // Their total size in bytes (for a metric and an alert).
  uint64_t bytes() const;

  // The batch in a waiting file; nullopt when it is damaged, after setting it
  // aside as NAME.corrupt.
  std::optional<record_batch> read(const std::filesystem::path& file) const;
  // Deletes a file whose batch committed.
  void remove(const std::filesystem::path& file);

  const std::filesystem::path& directory() const { return dir_; }

 private:
  std::filesystem::path dir_;
  uint64_t next_ = 0;  // the number of the next file
};

}  // namespace sealgate::gateway
