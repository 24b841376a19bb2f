// Status records, the retry schedule and reading queued messages; see
// queue_state.hpp.
#include "gateway/spool/queue_state.hpp"

#include "common/unique_fd.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <system_error>
#include <utility>

#include "common/file_io.hpp"
#include "gateway/mail/smtp_syntax.hpp"

namespace sealgate::gateway {

namespace {
constexpr std::pair<rcpt_state, std::string_view> state_names[] = {
    {rcpt_state::pending, "pending"}, {rcpt_state::delivered, "delivered"}, {rcpt_state::bounced, "bounced"},
    {rcpt_state::expired, "expired"}, {rcpt_state::deleted, "deleted"}};

std::string dash_or_xtext(const std::string& s) { return s.empty() ? "-" : xtext_encode(s); }
std::string from_dash(std::string_view s) { return s == "-" ? "" : xtext_decode(s); }

template <typename T>
bool number(std::string_view s, T& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc{} && p == s.data() + s.size();
}

// Files up to this size are read whole, with one pread, when a pass opens them.
constexpr uint64_t read_whole_limit = 1024 * 1024;
}  // namespace

std::string_view to_string(rcpt_state s) {
  for (auto& [v, n] : state_names)
    if (v == s) return n;
  return "pending";
}

std::optional<rcpt_state> rcpt_state_from(std::string_view s) {
  for (auto& [v, n] : state_names)
    if (n == s) return v;
  return std::nullopt;
}

std::string encode_status_record(size_t index, const rcpt_status& s) {
  return std::to_string(index) + " " + std::string(to_string(s.state)) + " " + std::to_string(s.time) + " " +
         std::to_string(s.attempts) + " " + std::to_string(s.next_try) + " " + (s.delay_warned ? "1" : "0") + " " +
         dash_or_xtext(s.method) + " " + dash_or_xtext(s.detail) + "\n";
}

std::vector<std::string_view> split_fields(std::string_view line) {
  std::vector<std::string_view> f;
  for (size_t pos = 0; pos <= line.size();) {
    size_t sp = line.find(' ', pos);
    if (sp == std::string_view::npos) sp = line.size();
    f.push_back(line.substr(pos, sp - pos));
    pos = sp + 1;
  }
  return f;
}

bool decode_status_record(std::string_view line, size_t& index, rcpt_status& out) {
  auto f = split_fields(line);
  if (f.size() != 8) return false;
  rcpt_status s;
  auto state = rcpt_state_from(f[1]);
  if (!state || !number(f[0], index) || !number(f[2], s.time) || !number(f[3], s.attempts) ||
      !number(f[4], s.next_try) || (f[5] != "0" && f[5] != "1"))
    return false;
  s.state = *state;
  s.delay_warned = f[5] == "1";
  s.method = from_dash(f[6]);
  s.detail = from_dash(f[7]);
  out = std::move(s);
  return true;
}

std::vector<rcpt_status> load_status(const std::filesystem::path& file, size_t recipients) {
  std::vector<rcpt_status> out(recipients);
  std::string data = read_file(file).value_or("");  // no status file yet: nothing done
  size_t pos = 0;
  while (pos < data.size()) {
    size_t nl = data.find('\n', pos);
    if (nl == std::string::npos) break;  // a torn last record: the write never finished
    size_t index = 0;
    rcpt_status s;
    if (decode_status_record(std::string_view(data).substr(pos, nl - pos), index, s) && index < recipients)
      out[index] = std::move(s);
    pos = nl + 1;
  }
  return out;
}

void append_status(const std::filesystem::path& file, const std::vector<std::pair<size_t, rcpt_status>>& records) {
  std::string text;
  for (const auto& [i, s] : records) text += encode_status_record(i, s);
  unique_fd fd(::open(file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
  if (!fd) throw std::system_error(errno, std::generic_category(), file.string());
  std::string_view rest = text;
  while (!rest.empty()) {
    ssize_t n = ::write(fd.get(), rest.data(), rest.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw std::system_error(errno, std::generic_category(), file.string());
    rest.remove_prefix(static_cast<size_t>(n));
  }
}

std::chrono::seconds retry_delay(unsigned attempts, std::chrono::seconds retry_min, std::chrono::seconds retry_max,
                                 double random01) {
  double base = static_cast<double>(retry_min.count());
  double cap = static_cast<double>(retry_max.count());
  double wait = std::min(cap, base * std::pow(2.0, attempts > 0 ? std::min(attempts - 1, 30u) : 0u));
  double jitter = 0.5 + 0.5 * std::clamp(random01, 0.0, 1.0);
  return std::chrono::seconds(std::max<int64_t>(1, static_cast<int64_t>(wait * jitter)));
}

bool queued_message::complete() const {
  return std::all_of(status.begin(), status.end(), [](const rcpt_status& s) { return is_final(s.state); });
}

std::filesystem::path queue_file(const std::filesystem::path& spool_dir, std::string_view id) {
  return spool_dir / "queue" / std::string(id);
}

std::filesystem::path status_file(const std::filesystem::path& spool_dir, std::string_view id) {
  return spool_dir / "status" / std::string(id);
}

bool valid_queue_id(std::string_view id) {
  return id.size() == 16 &&
         std::all_of(id.begin(), id.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); });
}

queue_lock queue_lock::try_lock(const std::filesystem::path& spool_dir, std::string_view id) {
  if (!valid_queue_id(id)) return queue_lock(state::no_such_message, unique_fd());
  unique_fd fd(::open(queue_file(spool_dir, id).c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return queue_lock(state::no_such_message, unique_fd());
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) return queue_lock(state::busy, unique_fd());
  // Between the open and the lock, the holder of the lock may have finished
  // the message and removed it: then this descriptor names a file that is no
  // longer queued, and acting on it would deliver or delete it a second time.
  if (!names_file(fd.get(), queue_file(spool_dir, id))) return queue_lock(state::no_such_message, unique_fd());
  return queue_lock(state::held, std::move(fd));
}

std::optional<queued_message> load_queued(const std::filesystem::path& spool_dir, std::string_view id) {
  if (!valid_queue_id(id)) return std::nullopt;
  unique_fd fd(::open(queue_file(spool_dir, id).c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return std::nullopt;
  return read_queued(fd.get(), spool_dir, id, nullptr);
}

std::optional<queued_message> read_queued(int fd, const std::filesystem::path& spool_dir, std::string_view id,
                                          std::string* content) {
  if (content) content->clear();
  if (!valid_queue_id(id)) return std::nullopt;
  struct stat st {};
  if (::fstat(fd, &st) != 0) return std::nullopt;
  uint64_t size = static_cast<uint64_t>(st.st_size);
  // The envelope is at the start and ends at the first "\n.\n". A small file
  // is read whole (one read for envelope and content); otherwise 64 KiB hold
  // a thousand recipients with room to spare, and more is read if needed.
  std::string head;
  size_t offset = 0;
  for (size_t want = size <= read_whole_limit ? static_cast<size_t>(size) : 65536;; want *= 4) {
    head.resize(want);
    ssize_t n = ::pread(fd, head.data(), want, 0);
    head.resize(n > 0 ? static_cast<size_t>(n) : 0);
    queued_message m;
    if (decode_envelope(head, m.envelope, offset)) {
      m.content_offset = offset;
      m.file_size = size;
      m.envelope.content_size = m.file_size - offset;
      m.status = load_status(status_file(spool_dir, id), m.envelope.recipients.size());
      if (content && head.size() == size) {
        head.erase(0, offset);
        *content = std::move(head);
      }
      return m;
    }
    if (head.size() < want || head.size() >= size) break;  // the whole file was read and did not parse
  }
  return std::nullopt;
}

std::vector<std::string> list_queue(const std::filesystem::path& spool_dir) {
  std::vector<std::string> ids;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(spool_dir / "queue", ec))
    if (spool_file_complete(entry.path())) ids.push_back(entry.path().filename().string());  // not one being written
  std::sort(ids.begin(), ids.end());
  return ids;
}

void remove_queued(const std::filesystem::path& spool_dir, std::string_view id) {
  std::error_code ec;
  // The message file goes first: stopping between the two leaves an orphan
  // status file (removed at start), never a message whose status is lost and
  // whose recipients would all be delivered again.
  std::filesystem::remove(queue_file(spool_dir, id), ec);
  std::filesystem::remove(status_file(spool_dir, id), ec);
}

}  // namespace sealgate::gateway
