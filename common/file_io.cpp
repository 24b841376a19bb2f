// See file_io.hpp.
#include "common/file_io.hpp"

#include "common/unique_fd.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

namespace sealgate {

bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

std::optional<std::string> read_file(const std::filesystem::path& p) {
  unique_fd file(::open(p.c_str(), O_RDONLY | O_CLOEXEC));
  if (!file) return std::nullopt;
  const int fd = file.get();
  std::string out;
  // One read when the size is known (a status file is read once per delivery pass).
  struct stat st {};
  size_t want = ::fstat(fd, &st) == 0 && st.st_size > 0 ? static_cast<size_t>(st.st_size) : 4096;
  bool ok = true;
  for (;;) {
    size_t have = out.size();
    out.resize(have + want);
    ssize_t n = ::read(fd, out.data() + have, want);
    if (n < 0 && errno == EINTR) {
      out.resize(have);
      continue;
    }
    out.resize(have + (n > 0 ? static_cast<size_t>(n) : 0));
    if (n <= 0) {
      ok = n == 0;
      break;
    }
    want = 4096;
  }
  if (!ok) return std::nullopt;
  return out;
}

bool names_file(int fd, const std::filesystem::path& p) {
  struct stat open_file {}, named {};
  if (::fstat(fd, &open_file) != 0 || open_file.st_nlink == 0) return false;
  if (::stat(p.c_str(), &named) != 0) return false;
  return open_file.st_dev == named.st_dev && open_file.st_ino == named.st_ino;
}

}  // namespace sealgate
