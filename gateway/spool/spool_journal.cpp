// The spool's write-ahead journal; see spool_journal.hpp.
#include "gateway/spool/spool_journal.hpp"

#include "common/unique_fd.hpp"

#include "common/file_io.hpp"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <utility>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <stdexcept>

namespace sealgate::gateway {
namespace {

constexpr std::string_view header_prefix = "sealgate-journal 2 ";
constexpr std::string_view spare_prefix = "spare-";
// Retired segments kept for reuse: overwriting a file's existing blocks needs
// no metadata change, so its fdatasync is one data write and a flush, where an
// append also commits the new size and blocks (about half the latency here).
constexpr size_t max_spares = 2;
constexpr std::string_view record_magic = "SGJR";
constexpr size_t record_fixed = 4 + 4 + 8;  // magic, id length, content length
constexpr size_t digest_size = 32;
// A group's records are written in slices of about this size.
constexpr size_t write_slice = 1 << 20;

boost::system::error_code errno_code() { return {errno, boost::system::system_category()}; }

void put_le(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint64_t get_le(std::string_view in, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(in[static_cast<size_t>(i)]);
  return v;
}

// SHA-256 over the parts, one after the other.
std::string digest(std::initializer_list<std::string_view> parts) {
  static EVP_MD* sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);  // fetched once: implicit fetches cost
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  bool ok = ctx && sha256 && EVP_DigestInit_ex(ctx, sha256, nullptr) == 1;
  for (auto p : parts) ok = ok && EVP_DigestUpdate(ctx, p.data(), p.size()) == 1;
  ok = ok && EVP_DigestFinal_ex(ctx, md, &len) == 1;
  EVP_MD_CTX_free(ctx);
  if (!ok || len != digest_size) throw std::runtime_error("journal: SHA-256 failed");
  return std::string(reinterpret_cast<const char*>(md), len);
}

// Segment names are 16 hex digits, in the order they were opened.
bool segment_name(const std::string& name, uint64_t& seq) {
  if (name.size() != 16) return false;
  auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), seq, 16);
  return ec == std::errc{} && end == name.data() + name.size();
}

}  // namespace

std::string current_boot_id() {
  char buf[64] = {};
  unique_fd fd(::open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC));
  ssize_t n = fd ? ::read(fd.get(), buf, sizeof buf - 1) : -1;
  // A UUID and a newline: anything else means the file is not what we think it is.
  if (n != 37 || buf[36] != '\n') return {};
  for (int i = 0; i < 36; ++i)
    if (!std::isxdigit(static_cast<unsigned char>(buf[i])) && buf[i] != '-') return {};
  return std::string(buf, 36);
}

spool_journal::spool_journal(std::filesystem::path dir) : dir_(std::move(dir)), boot_id_(current_boot_id()) {
  if (boot_id_.empty())
    throw std::runtime_error("spool_sync journal: cannot read /proc/sys/kernel/random/boot_id (needed to tell a "
                             "process crash from a reboot); use spool_sync: file");
  std::filesystem::create_directories(dir_);
  if (::chmod(dir_.c_str(), 0700) != 0) throw std::runtime_error(dir_.string() + ": chmod: " + std::strerror(errno));
  dir_fd_.reset(::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir_fd_) throw std::runtime_error(dir_.string() + ": open: " + std::strerror(errno));
}

spool_journal::~spool_journal() = default;

spool_journal::leftovers spool_journal::recover(const std::function<void(const record&)>& restore) {
  std::vector<std::pair<uint64_t, std::filesystem::path>> found;
  for (const auto& entry : std::filesystem::directory_iterator(dir_)) {
    uint64_t seq = 0;
    const std::string name = entry.path().filename().string();
    if (segment_name(name, seq)) {
      found.emplace_back(seq, entry.path());
    } else if (name.starts_with(spare_prefix) && segment_name(name.substr(spare_prefix.size()), seq)) {
      // A spare was made unreadable (header zeroed and synced) before it got
      // its spare name: nothing in it can be replayed. Reuse it.
      next_segment_ = std::max(next_segment_, seq + 1);
      if (spares_.size() < max_spares) spares_.push_back(entry.path());
      else std::filesystem::remove(entry.path());
    }
  }
  std::sort(found.begin(), found.end());
  leftovers out;
  for (const auto& [seq, path] : found) {
    next_segment_ = std::max(next_segment_, seq + 1);
    out.segments.push_back(path);
    const auto whole = read_file(path);
    if (!whole) throw std::runtime_error(path.string() + ": cannot read: " + std::strerror(errno));
    const std::string& data = *whole;
    std::string_view rest(data);
    auto nl = rest.find('\n');
    // A segment without its header line never held a record that was synced:
    // the header goes out with the first group.
    if (nl == std::string_view::npos || !rest.starts_with(header_prefix)) continue;
    // "BOOT_ID NONCE": records of an earlier use of a recycled file carry
    // another nonce in their digests, so they end the segment.
    const std::string_view ids = rest.substr(header_prefix.size(), nl - header_prefix.size());
    const auto sp = ids.find(' ');
    if (sp == std::string_view::npos) continue;
    const bool same_boot = ids.substr(0, sp) == boot_id_;
    const std::string_view nonce = ids.substr(sp + 1);
    out.same_boot = out.same_boot && same_boot;
    rest.remove_prefix(nl + 1);
    while (rest.size() >= record_fixed && rest.starts_with(record_magic)) {
      const uint64_t id_len = get_le(rest.substr(4), 4);
      const uint64_t content_len = get_le(rest.substr(8), 8);
      if (id_len > 255 || content_len > rest.size() || record_fixed + id_len + content_len + digest_size > rest.size())
        break;
      const std::string_view head = rest.substr(0, record_fixed);
      const std::string_view id = rest.substr(record_fixed, id_len);
      const std::string_view content = rest.substr(record_fixed + id_len, content_len);
      const std::string_view stored = rest.substr(record_fixed + id_len + content_len, digest_size);
      if (digest({nonce, head, id, content}) != stored) break;  // torn tail, or an earlier use's record
      ++out.records;
      if (!same_boot) restore(record{id, content});
      rest.remove_prefix(record_fixed + id_len + content_len + digest_size);
    }
  }
  return out;
}

boost::system::error_code spool_journal::open_segment() {
  char name[17];
  std::snprintf(name, sizeof name, "%016llx", static_cast<unsigned long long>(next_segment_++));
  current_ = dir_ / name;
  fd_.reset();
  while (!fd_ && !spares_.empty()) {
    auto spare = spares_.back();
    spares_.pop_back();
    if (::rename(spare.c_str(), current_.c_str()) == 0) fd_.reset(::open(current_.c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd_) ::unlink(spare.c_str());
  }
  if (!fd_) fd_.reset(::open(current_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd_) return errno_code();
  unsigned char random[16];
  if (RAND_bytes(random, sizeof random) != 1) {
    fd_.reset();
    closed_.push_back(current_);
    return {EIO, boost::system::system_category()};
  }
  static constexpr char hexdigits[] = "0123456789abcdef";
  nonce_.clear();
  for (unsigned char c : random) nonce_ += {hexdigits[c >> 4], hexdigits[c & 15]};
  // The header reaches the disk with the first group's fdatasync; the name
  // needs the directory's fsync, once per segment.
  const std::string header = std::string(header_prefix) + boot_id_ + " " + nonce_ + "\n";
  offset_ = 0;
  if (!write_at(header) || ::fsync(dir_fd_.get()) != 0) {
    auto ec = errno_code();
    fd_.reset();
    closed_.push_back(current_);
    return ec;
  }
  return {};
}

bool spool_journal::write_at(std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::pwrite(fd_.get(), data.data(), data.size(), static_cast<off_t>(offset_));
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<size_t>(n));
    offset_ += static_cast<uint64_t>(n);
  }
  return true;
}

boost::system::error_code spool_journal::append(std::span<const record> group,
                                                const std::function<void()>& while_flushing) {
  std::lock_guard lock(mutex_);
  if (!fd_) {
    if (auto ec = open_segment()) return ec;
  }
  std::string buffer;
  bool ok = true;
  for (const auto& r : group) {
    std::string head(record_magic);
    put_le(head, r.id.size(), 4);
    put_le(head, r.content.size(), 8);
    buffer += head;
    buffer += r.id;
    buffer += r.content;
    buffer += digest({nonce_, head, r.id, r.content});
    if (buffer.size() >= write_slice) {
      ok = ok && write_at(buffer);
      buffer.clear();
    }
  }
  ok = ok && write_at(buffer);
  if (ok && while_flushing) {
    // Start the writeback now (asynchronous: it only queues the pages), so
    // that the disk works while the caller does; fdatasync then waits for it
    // and flushes. A failure shows in fdatasync, so the result is not needed.
    ::sync_file_range(fd_.get(), 0, 0, SYNC_FILE_RANGE_WRITE);
    while_flushing();
  }
  ok = ok && ::fdatasync(fd_.get()) == 0;
  if (!ok) {
    // After a failed write or fdatasync the file's state is unknown (the
    // kernel may have dropped the dirty pages): never append to it again.
    auto ec = errno_code();
    fd_.reset();
    closed_.push_back(current_);
    return ec;
  }
  return {};
}

std::vector<std::filesystem::path> spool_journal::rotate() {
  std::lock_guard lock(mutex_);
  if (fd_) {
    fd_.reset();
    closed_.push_back(current_);
  }
  return closed_;
}

boost::system::error_code spool_journal::retire(const std::vector<std::filesystem::path>& segments) {
  size_t room;
  {
    std::lock_guard lock(mutex_);
    room = max_spares - std::min(max_spares, spares_.size());
  }
  std::vector<std::filesystem::path> kept;
  for (const auto& s : segments) {
    if (kept.size() < room) {
      // Made unreadable before it is renamed (the zeroed header is synced
      // first): whatever a crash leaves, a spare never replays old records.
      static const std::string zeros(header_prefix.size() + 8, '\0');
      unique_fd fd(::open(s.c_str(), O_WRONLY | O_CLOEXEC));
      bool ok = fd && ::pwrite(fd.get(), zeros.data(), zeros.size(), 0) == static_cast<ssize_t>(zeros.size()) &&
                ::fdatasync(fd.get()) == 0;
      fd.reset();
      auto spare = dir_ / (std::string(spare_prefix) + s.filename().string());
      if (ok && ::rename(s.c_str(), spare.c_str()) == 0) {
        kept.push_back(spare);
        continue;
      }
    }
    if (::unlink(s.c_str()) != 0 && errno != ENOENT) return errno_code();
  }
  if (::fsync(dir_fd_.get()) != 0) return errno_code();
  std::lock_guard lock(mutex_);
  std::erase_if(closed_, [&](const auto& p) { return std::find(segments.begin(), segments.end(), p) != segments.end(); });
  for (auto& k : kept) spares_.push_back(std::move(k));
  return {};
}

}  // namespace sealgate::gateway
