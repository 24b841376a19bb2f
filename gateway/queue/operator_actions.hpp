// What an operator does to a queued message from the command line, done the
// way the queue does it: under the message's lock (queue_lock, as a delivery
// pass takes it), status lines before records, records before the files go.
// Never sends anything and never writes a DSN: an operator's act is not a
// delivery failure.
#pragma once
#include <cstddef>
#include <filesystem>
#include <string_view>

#include "common/sql.hpp"

namespace sealgate::gateway {

struct deletion {
  enum class result { deleted, no_such_message, being_delivered };
  result outcome = result::no_such_message;
  size_t recipients_deleted = 0;  // those still waiting, now recorded as deleted
};

// Removes a message from the queue: each recipient still waiting becomes
// "deleted by an operator" in its status file and in the record, then the
// message's files are removed. Throws std::runtime_error (or
// std::system_error) when the status lines or the record cannot be written;
// the message then stays in the queue, and if its status lines were written
// the gateway records the deletion at its next pass.
// actor (who asked, a Unix user name) goes into the audit chain's entries.
deletion delete_queued_message(const std::filesystem::path& spool_dir, const sql::location& database_location,
                               std::string_view id, const std::string& actor = {});

}  // namespace sealgate::gateway
