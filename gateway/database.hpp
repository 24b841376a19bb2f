// The audit database (SQLite, the embedded default store): one row per accepted
// message now; the delivery work adds one per recipient outcome. Written off the
// reply path: the spool, not this file, is what a 250 promises.
// Never stores message content.
#pragma once
#include <sqlite3.h>

#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

#include "gateway/spool.hpp"

namespace sealgate::gateway {

class database {
 public:
  // Opens or creates the file (0600) and its schema. Throws std::runtime_error.
  explicit database(const std::filesystem::path& file);
  ~database();
  database(const database&) = delete;
  database& operator=(const database&) = delete;

  // One transaction for the whole group.
  void record_accepted(const std::vector<const spooled_envelope*>& messages);

  int64_t accepted_count();

  // After a crash the rows of the last group may be missing (they are written
  // after the 250): re-creates them from the spool files. Returns how many.
  size_t restore_from_spool(const std::filesystem::path& queue_dir, const std::vector<std::string>& ids);

 private:
  void exec(const char* sql);
  sqlite3* db_ = nullptr;
  sqlite3_stmt* insert_ = nullptr;
  std::mutex mutex_;
};

}  // namespace sealgate::gateway
