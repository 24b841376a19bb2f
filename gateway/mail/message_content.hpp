// The content of one outbound transfer, read in pieces as it is sent: bytes
// held in memory (a small message, a rewritten header block, an encrypted
// message) followed by a region of the message's spool file. A large message
// is never held whole in memory for the time a slow MX takes to read it.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/unique_fd.hpp"

namespace sealgate::gateway {

// An open file descriptor, closed with its last owner. The delivery pass
// opens (and locks) the queue file once; its transfers read through it.
class shared_fd {
 public:
  explicit shared_fd(int fd) : fd_(fd) {}
  shared_fd(const shared_fd&) = delete;
  shared_fd& operator=(const shared_fd&) = delete;
  int get() const { return fd_.get(); }

 private:
  unique_fd fd_;
};

class message_content {
 public:
  // The whole content in memory.
  static std::shared_ptr<const message_content> in_memory(std::string bytes);
  // `prefix` (may be empty) then `length` bytes of `file` from `offset`.
  static std::shared_ptr<const message_content> from_file(std::shared_ptr<const shared_fd> file, uint64_t offset,
                                                          uint64_t length, std::string prefix = {});

  uint64_t size() const { return prefix_.size() + length_; }
  // Up to n bytes starting at `at` into out (replacing what it held). False
  // when the file cannot be read (or ends early): the transfer must not
  // pretend to have sent the message.
  bool read(uint64_t at, size_t n, std::string& out) const;
  // The whole content, for what needs it at once (encryption); nullopt on a
  // read error.
  bool read_all(std::string& out) const { return read(0, static_cast<size_t>(size()), out); }
  // The same content with its first n bytes replaced by `bytes` (a rewritten
  // header block); the rest is still read from where it was.
  std::shared_ptr<const message_content> with_start_replaced(size_t n, std::string bytes) const;
  // The content when it is all in memory (no file part), else nullptr.
  const std::string* memory() const { return file_ ? nullptr : &prefix_; }

 private:
  std::string prefix_;
  std::shared_ptr<const shared_fd> file_;
  uint64_t offset_ = 0, length_ = 0;
};

}  // namespace sealgate::gateway
