// The spool's write-ahead journal (spool_sync: journal). A group of accepted
// messages is appended to the current segment file and made durable with one
// fdatasync before their 250s: one disk flush per group, where one file per
// message costs a flush per message and one more for the directory. The
// messages' own queue/ files are written while the group's pages go to the
// disk, without a sync; a checkpoint (spool.cpp, about once a second) makes
// them durable with one syncfs(2) and then retires the segments that covered them.
//
// Replay. Every segment names the boot it was written in
// (/proc/sys/kernel/random/boot_id). While the kernel has not restarted, its
// page cache still holds every queue/ file a segment covers, so after a
// process crash nothing is replayed and a message delivered (and removed)
// since is not brought back. After a reboot (power loss, kernel crash) each
// record whose queue/ file is missing or differs is written again: a message
// delivered in the last second before the power went may then be delivered
// twice, as with Postfix, whose queue file removals are not synced either.
//
// Segment format: a line "sealgate-journal 2 BOOT_ID NONCE\n" (NONCE: 32
// random hex digits, new for every segment), then records
//   "SGJR" | u32 id length | u64 content length (little-endian) | id | content
//   | SHA-256 of NONCE and everything before it in the record
// A record that is short or fails its digest ends the segment: it is a torn
// write that no 250 covered, or a record from an earlier use of the file.
// Retired segments are kept (at most two) and overwritten by later segments,
// whose fdatasync then writes data only; a retired file's header is zeroed
// and synced before it gets its "spare-" name, so it can never be replayed.
#pragma once
#include <boost/system/error_code.hpp>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/unique_fd.hpp"

namespace sealgate::gateway {

// The running kernel's boot id; empty when it cannot be read.
std::string current_boot_id();

class spool_journal {
 public:
  struct record {
    std::string_view id;
    std::string_view content;  // the whole queue/ file
  };
  // What an earlier run left, as recover() found it.
  struct leftovers {
    std::vector<std::filesystem::path> segments;  // to retire once the queue/ files are durable
    size_t records = 0;                           // valid records in them
    bool same_boot = true;                        // no replay was needed
  };

  // dir is created (0700) if missing. Throws when the boot id cannot be read:
  // without it a restart could not tell a process crash from a power loss.
  explicit spool_journal(std::filesystem::path dir);
  ~spool_journal();
  spool_journal(const spool_journal&) = delete;
  spool_journal& operator=(const spool_journal&) = delete;

  // Reads the segments of earlier runs, oldest first. For segments written in
  // an earlier boot, calls restore(record) for every valid record. Throws on a
  // read error (the journal must not be skipped silently).
  leftovers recover(const std::function<void(const record&)>& restore);

  // Appends one group and fdatasyncs it (a new segment also fsyncs the
  // directory). After an error the segment is abandoned: the next append
  // starts a new one.
  // while_flushing, when given, runs once the group is written and its
  // writeback has started, before the wait for the disk (the caller's other
  // work for the group overlaps the flush); rotate() waits until it is done.
  boost::system::error_code append(std::span<const record> group, const std::function<void()>& while_flushing = {});

  // Closes the current segment (later appends open a new one) and returns every
  // closed segment not yet retired. Their queue/ files were written before
  // their records, so once the file system is synced they may go.
  std::vector<std::filesystem::path> rotate();
  // Removes these segments (or keeps them as spares for reuse) and fsyncs the directory.
  boost::system::error_code retire(const std::vector<std::filesystem::path>& segments);

 private:
  boost::system::error_code open_segment();
  bool write_at(std::string_view data);  // at offset_, which it advances
  std::filesystem::path dir_;
  std::string boot_id_;
  unique_fd dir_fd_;
  std::mutex mutex_;  // append against rotate
  unique_fd fd_;      // current segment; empty when none is open
  uint64_t next_segment_ = 1;
  uint64_t offset_ = 0;  // where the next record goes in the current segment
  std::string nonce_;    // the current segment's
  std::filesystem::path current_;
  std::vector<std::filesystem::path> closed_;
  std::vector<std::filesystem::path> spares_;  // retired, unreadable, ready for reuse
};

}  // namespace sealgate::gateway
