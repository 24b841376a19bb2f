// One owner for a file descriptor: closed when the owner goes, moved, never
// copied, so that no early return leaks one (an accept loop that leaks a
// descriptor per error runs out within a day). Where the result of close(2)
// matters (a file whose write must be durable), call close() and look.
#pragma once
#include <unistd.h>

#include <cerrno>
#include <utility>

namespace sealgate {

class unique_fd {
 public:
  unique_fd() = default;
  explicit unique_fd(int fd) : fd_(fd) {}
  ~unique_fd() { reset(); }
  unique_fd(unique_fd&& other) noexcept : fd_(other.release()) {}
  unique_fd& operator=(unique_fd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  unique_fd(const unique_fd&) = delete;
  unique_fd& operator=(const unique_fd&) = delete;

  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  // Gives the descriptor up without closing it.
  int release() { return std::exchange(fd_, -1); }
  // Closes the descriptor held (if any) and holds fd instead.
  void reset(int fd = -1) {
    int old = std::exchange(fd_, fd);
    if (old >= 0) ::close(old);
  }
  // Closes now; 0, or the errno of a failed close(2) (the descriptor is gone either way).
  int close() {
    int old = release();
    if (old < 0) return 0;
    return ::close(old) == 0 ? 0 : errno;
  }

 private:
  int fd_ = -1;
};

}  // namespace sealgate
