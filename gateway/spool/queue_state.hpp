// Per-recipient delivery state of spooled messages, and the retry schedule.
// The spool file of a message never changes after its 250; what happened to
// each recipient is appended to spool/status/ID, one record per line, the
// last record of a recipient winning (as chasquid keeps per-recipient status
// in its queue item and Postfix marks done recipients in its queue file).
// Never holds message content.
#pragma once
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "gateway/spool/spool.hpp"

#include "common/unique_fd.hpp"

namespace sealgate::gateway {

// A recipient is pending until it reaches one of the final states.
enum class rcpt_state { pending, delivered, bounced, expired, deleted };
std::string_view to_string(rcpt_state s);
std::optional<rcpt_state> rcpt_state_from(std::string_view s);
inline bool is_final(rcpt_state s) { return s != rcpt_state::pending; }

struct rcpt_status {
  rcpt_state state = rcpt_state::pending;
  int64_t time = 0;        // of the last record (unix seconds)
  unsigned attempts = 0;   // delivery attempts so far
  int64_t next_try = 0;    // pending: not before this time (0: at once)
  bool delay_warned = false;
  std::string method;      // the method used or tried (tls, pgp, smime, portal, plain)
  std::string detail;      // the last reply or reason; never content
};

// One line of a status file: "INDEX STATE TIME ATTEMPTS NEXT_TRY WARNED METHOD DETAIL",
// METHOD and DETAIL xtext-encoded ("-" when empty).
std::string encode_status_record(size_t index, const rcpt_status& s);
// False for a malformed line (a torn last write after a crash is ignored).
bool decode_status_record(std::string_view line, size_t& index, rcpt_status& out);
// The fields of a line of the spool's formats, split at each space (two
// spaces make an empty field).
std::vector<std::string_view> split_fields(std::string_view line);

// Reads spool/status/ID for a message with `recipients` recipients; missing
// file: all pending. Records for indexes out of range are ignored.
std::vector<rcpt_status> load_status(const std::filesystem::path& status_file, size_t recipients);

// Appends records with one write(2) (O_APPEND). Not fsync'd: the record
// survives a crash of the process (it is in the page cache), and after a
// power loss the worst case is that a delivery is repeated, which is SMTP's
// usual at-least-once window. Throws std::system_error on failure.
void append_status(const std::filesystem::path& status_file,
                   const std::vector<std::pair<size_t, rcpt_status>>& records);

// The wait before the next attempt after `attempts` failed ones: retry_min
// doubled per attempt up to retry_max, then scaled by a jitter in [0.5, 1.0]
// (random01 in [0, 1)), so that a burst of deferrals does not come back as a
// burst. Pure.
std::chrono::seconds retry_delay(unsigned attempts, std::chrono::seconds retry_min, std::chrono::seconds retry_max,
                                 double random01);

// A spooled message as the queue sees it: envelope, where its content
// starts, and each recipient's state.
struct queued_message {
  spooled_envelope envelope;
  size_t content_offset = 0;
  uint64_t file_size = 0;
  std::vector<rcpt_status> status;
  bool complete() const;  // every recipient final
};

// Paths of a message's files under the spool directory.
std::filesystem::path queue_file(const std::filesystem::path& spool_dir, std::string_view id);
std::filesystem::path status_file(const std::filesystem::path& spool_dir, std::string_view id);

// A queued message's lock: flock(2) on its queue file, held as long as this
// object (its descriptor) lives. A delivery pass (deliver_pass, which takes
// the same flock through the descriptor it reads the message with) and an
// operator's `sealgate queue delete` both hold it, so that neither changes a
// message while the other acts on it. Never waits: a message being
// delivered is busy.
class queue_lock {
 public:
  enum class state { held, no_such_message, busy };
  // Opens the message's queue file and tries the lock.
  static queue_lock try_lock(const std::filesystem::path& spool_dir, std::string_view id);
  state status() const { return status_; }
  int fd() const { return fd_.get(); }  // the locked queue file; -1 unless held
  // Hands the locked descriptor (and with it the lock) to the caller.
  unique_fd release() { return std::move(fd_); }

 private:
  queue_lock(state s, unique_fd fd) : status_(s), fd_(std::move(fd)) {}
  state status_;
  unique_fd fd_;
};

// Reads a message's envelope and status. nullopt when the message is not
// (or no longer) in the queue or its envelope does not parse.
std::optional<queued_message> load_queued(const std::filesystem::path& spool_dir, std::string_view id);

// The same from fd, the message's queue file opened (and locked) by the
// caller. When the file is small (up to 1 MiB) it is read with one pread
// and *content gets the message content too; otherwise *content is left
// empty and the caller reads the content itself when it needs it.
std::optional<queued_message> read_queued(int fd, const std::filesystem::path& spool_dir, std::string_view id,
                                          std::string* content);

// A queue id as the spool makes them (16 hex digits): anything else is not
// ours, and must not become a path outside the spool.
bool valid_queue_id(std::string_view id);

// Ids of every message in spool/queue/, oldest first (reading only).
std::vector<std::string> list_queue(const std::filesystem::path& spool_dir);

// Removes a finished message's spool and status files.
void remove_queued(const std::filesystem::path& spool_dir, std::string_view id);

}  // namespace sealgate::gateway
