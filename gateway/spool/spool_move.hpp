// Moving a spool to another node (`sealgate queue export` and `import`): a
// node that does not come back keeps its spool, and an operator carries its
// messages to a live node, each delivered once. Must never leave a message
// deliverable in two spools: the export file is durable before the messages
// leave queue/, and an import writes nothing until the whole file checks out.
//
// The file: a header line, then per message one line and the bytes of its
// queue file and its status file, then a trailer; every count and digest
// is checked before anything is written:
//   sealgate-export 1 NODE
//   message ID QUEUE_SIZE QUEUE_SHA256 STATUS_SIZE STATUS_SHA256
//   <QUEUE_SIZE octets><STATUS_SIZE octets>
//   ...
//   end COUNT SHA256
// The trailer's SHA-256 is of every line before it: the header, and the
// message lines, which carry the digests of their bytes, so it covers those
// too and tells a message dropped or added, or a file cut short.
#pragma once
#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "gateway/mail/envelope.hpp"

namespace sealgate::gateway {

// A spool that cannot be exported, or a file that cannot be imported; what()
// says why. Nothing was moved or written.
struct spool_move_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct export_summary {
  std::string node;                  // the source node's id, or "unknown"
  std::vector<std::string> ids;      // exported, now in exported/
  std::vector<std::string> corrupt;  // set aside in corrupt/ by the recovery, not exported
  uint64_t bytes = 0;                // of the export file
};

// Exports every message of the spool in spool_dir to out (created; an
// existing file is refused): runs the spool's start-up recovery first, so
// that what goes is what a restart would deliver, holds each message's
// queue_lock until it has left queue/, makes out durable, then moves the
// messages with their status files to spool_dir/exported/ and makes that
// durable too. node: the source node's id for the header. The caller makes
// sure no gateway runs on the spool. Throws spool_move_error.
export_summary export_spool(const std::filesystem::path& spool_dir, const std::filesystem::path& out,
                            const std::string& node);

// One message of a verified export file: where its bytes are.
struct exported_message {
  std::string id;
  uint64_t queue_offset = 0, queue_size = 0;
  uint64_t status_offset = 0, status_size = 0;
  std::string queue_sha256, status_sha256;
};

struct export_index {
  std::string node;
  std::vector<exported_message> messages;
};

// Reads the whole file and checks its header, every digest, each queue
// file's envelope (its id is the message's), and the trailer. Throws
// spool_move_error naming the first problem (damaged, truncated).
export_index verify_export(const std::filesystem::path& file);

struct import_summary {
  std::string node;  // the source node
  std::vector<std::string> imported;
  std::vector<spooled_envelope> envelopes;                    // of the imported messages
  std::vector<std::pair<std::string, std::string>> refused;   // id, why ("already imported")
};

// Verifies file (verify_export) and writes each message it holds into the
// spool in spool_dir the way an accepted message becomes durable (written
// under incoming/, fdatasync'd, renamed, the directory fsync'd), its status
// file first, then marks it in spool_dir/imported/. A message whose id is
// already in this spool (queue/, exported/, imported/) is refused and the
// others still go. Throws spool_move_error before writing anything when the
// file does not verify, and when a write fails (what was written stays,
// complete and durable; a second import refuses it and carries on).
import_summary import_spool(const std::filesystem::path& spool_dir, const std::filesystem::path& file);

}  // namespace sealgate::gateway
