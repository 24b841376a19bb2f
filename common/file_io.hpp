// Whole-file reads and complete writes with plain system calls, for the spool,
// its journal and the status files.
#pragma once
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace sealgate {

// write(2) until all of data is written or an error (not EINTR); false on error.
bool write_all(int fd, std::string_view data);

// The whole file; nullopt when it cannot be opened or read.
std::optional<std::string> read_file(const std::filesystem::path& p);

// True while the open descriptor fd is the file at p: not unlinked, not
// replaced by another file of that name.
bool names_file(int fd, const std::filesystem::path& p);

}  // namespace sealgate
