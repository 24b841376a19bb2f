// See message_content.hpp. pread(2) at an offset: transfers of one message may
// read the same descriptor at once without sharing a file position.
#include "gateway/mail/message_content.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace sealgate::gateway {

std::shared_ptr<const message_content> message_content::in_memory(std::string bytes) {
  auto c = std::make_shared<message_content>();
  c->prefix_ = std::move(bytes);
  return c;
}

std::shared_ptr<const message_content> message_content::from_file(std::shared_ptr<const shared_fd> file,
                                                                   uint64_t offset, uint64_t length,
                                                                   std::string prefix) {
  auto c = std::make_shared<message_content>();
  c->prefix_ = std::move(prefix);
  c->file_ = std::move(file);
  c->offset_ = offset;
  c->length_ = length;
  return c;
}

std::shared_ptr<const message_content> message_content::with_start_replaced(size_t n, std::string bytes) const {
  auto c = std::make_shared<message_content>(*this);
  n = static_cast<size_t>(std::min<uint64_t>(n, size()));
  if (n <= prefix_.size()) {
    c->prefix_ = std::move(bytes) + prefix_.substr(n);
  } else {
    uint64_t skip = n - prefix_.size();
    c->prefix_ = std::move(bytes);
    c->offset_ = offset_ + skip;
    c->length_ = length_ - skip;
  }
  return c;
}

bool message_content::read(uint64_t at, size_t n, std::string& out) const {
  out.clear();
  if (at >= size()) return true;
  n = static_cast<size_t>(std::min<uint64_t>(n, size() - at));
  out.resize(n);
  size_t done = 0;
  if (at < prefix_.size()) {
    done = std::min(n, prefix_.size() - static_cast<size_t>(at));
    std::copy_n(prefix_.data() + at, done, out.data());
  }
  while (done < n) {
    uint64_t file_at = offset_ + (at + done - prefix_.size());
    ssize_t got = ::pread(file_->get(), out.data() + done, n - done, static_cast<off_t>(file_at));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      out.clear();
      return false;
    }
    done += static_cast<size_t>(got);
  }
  return true;
}

}  // namespace sealgate::gateway
