// Durable spool; see spool.hpp. Ordering that matters, in file mode: content
// fdatasync'd before the rename, rename before the directory fsync, directory
// fsync before any completion handler runs (and so before any 250). In journal
// mode: the queue/ file complete (mode 0600) and the journal record fdatasync'd
// before the handler runs; the files of a group written before its segment can
// be closed (append holds rotate() off), and a segment retired only after a
// syncfs that began after it was closed.
#include "gateway/spool/spool.hpp"

#include "common/metrics.hpp"
#include "common/unique_fd.hpp"

#include "common/file_io.hpp"
#include "common/log.hpp"

#include <dirent.h>
#include <openssl/rand.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/append.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <fstream>
#include <latch>
#include <stdexcept>

namespace sealgate::gateway {
namespace {

boost::system::error_code errno_code() { return {errno, boost::system::system_category()}; }

void make_private_dir(const std::filesystem::path& p) {
  std::filesystem::create_directories(p);
  if (::chmod(p.c_str(), 0700) != 0) throw std::runtime_error(p.string() + ": chmod: " + std::strerror(errno));
}

// Reads just the envelope header (it ends at the first "\n.\n").
bool envelope_readable(const std::filesystem::path& p) {
  unique_fd fd(::open(p.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return false;
  std::string head;
  char buf[8192];
  while (head.size() < (1u << 22) && head.find("\n.\n") == std::string::npos) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n <= 0) break;
    head.append(buf, static_cast<size_t>(n));
  }
  fd.reset();
  spooled_envelope e;
  size_t offset = 0;
  return decode_envelope(head, e, offset);
}

}  // namespace

bool spool_file_complete(const std::filesystem::path& p) {
  struct stat st{};
  return ::stat(p.c_str(), &st) == 0 && (st.st_mode & 0777) != 0;
}

std::string encode_envelope(const spooled_envelope& e) {
  std::string h = "sealgate-spool 1\n";
  auto field = [&](std::string_view name, std::string_view value) {
    h += name;
    h += ' ';
    h += xtext_encode(value);
    h += '\n';
  };
  field("id", e.queue_id);
  h += "received " + std::to_string(e.received) + "\n";
  field("listener", e.listener);
  field("client", e.client_address);
  field("helo", e.helo);
  if (!e.auth_user.empty()) field("auth", e.auth_user);
  if (!e.relay_class.empty()) field("class", e.relay_class);
  if (!e.tls_protocol.empty()) h += "tls " + xtext_encode(e.tls_protocol) + " " + xtext_encode(e.tls_cipher) + "\n";
  field("sender", e.sender);
  if (!e.params.body.empty()) field("body", e.params.body);
  if (e.params.smtputf8) h += "smtputf8 1\n";
  if (e.params.requiretls) h += "requiretls 1\n";
  if (!e.params.ret.empty()) field("ret", e.params.ret);
  if (!e.params.envid.empty()) h += "envid " + e.params.envid + "\n";  // already xtext
  for (const auto& r : e.recipients) {
    h += "rcpt " + xtext_encode(r.recipient) + " " + (r.params.notify.empty() ? "-" : r.params.notify) + " " +
         (r.params.orcpt.empty() ? "-" : r.params.orcpt) + "\n";
  }
  h += ".\n";
  return h;
}

bool decode_envelope(std::string_view file, spooled_envelope& e, size_t& content_offset) {
  size_t pos = 0;
  auto next_line = [&](std::string_view& line) {
    size_t nl = file.find('\n', pos);
    if (nl == std::string_view::npos) return false;
    line = file.substr(pos, nl - pos);
    pos = nl + 1;
    return true;
  };
  std::string_view line;
  if (!next_line(line) || line != "sealgate-spool 1") return false;
  while (next_line(line)) {
    if (line == ".") {
      content_offset = pos;
      return !e.queue_id.empty() && !e.recipients.empty();
    }
    auto sp = line.find(' ');
    std::string_view key = line.substr(0, sp);
    std::string_view value = sp == std::string_view::npos ? std::string_view{} : line.substr(sp + 1);
    if (key == "id") e.queue_id = xtext_decode(value);
    else if (key == "received") std::from_chars(value.data(), value.data() + value.size(), e.received);
    else if (key == "listener") e.listener = xtext_decode(value);
    else if (key == "client") e.client_address = xtext_decode(value);
    else if (key == "helo") e.helo = xtext_decode(value);
    else if (key == "auth") e.auth_user = xtext_decode(value);
    else if (key == "class") e.relay_class = xtext_decode(value);
    else if (key == "tls") {
      auto s2 = value.find(' ');
      if (s2 == std::string_view::npos) return false;
      e.tls_protocol = xtext_decode(value.substr(0, s2));
      e.tls_cipher = xtext_decode(value.substr(s2 + 1));
    } else if (key == "sender") e.sender = xtext_decode(value);
    else if (key == "body") e.params.body = xtext_decode(value);
    else if (key == "smtputf8") e.params.smtputf8 = value == "1";
    else if (key == "requiretls") e.params.requiretls = value == "1";
    else if (key == "ret") e.params.ret = xtext_decode(value);
    else if (key == "envid") e.params.envid = std::string(value);
    else if (key == "rcpt") {
      auto a = value.find(' ');
      if (a == std::string_view::npos) return false;
      auto b = value.find(' ', a + 1);
      if (b == std::string_view::npos) return false;
      parsed_rcpt r;
      r.recipient = xtext_decode(value.substr(0, a));
      auto notify = value.substr(a + 1, b - a - 1);
      auto orcpt = value.substr(b + 1);
      if (notify != "-") r.params.notify = std::string(notify);
      if (orcpt != "-") r.params.orcpt = std::string(orcpt);
      e.recipients.push_back(std::move(r));
    } else {
      return false;
    }
  }
  return false;
}

spool::spool(std::filesystem::path dir, sync_mode mode)
    : dir_(std::move(dir)), incoming_(dir_ / "incoming"), queue_(dir_ / "queue"), mode_(mode),
      sync_threads_(sync_thread_count) {}

spool::~spool() {
  stop();
}

std::vector<std::string> spool::recover() {
  make_private_dir(dir_);
  make_private_dir(incoming_);
  make_private_dir(queue_);
  // Leftovers in incoming/ never got a 250: the client still has them.
  for (const auto& entry : std::filesystem::directory_iterator(incoming_)) std::filesystem::remove(entry.path());
  if (!queue_fd_) queue_fd_.reset(::open(queue_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!queue_fd_) throw std::runtime_error(queue_.string() + ": open: " + std::strerror(errno));
  replay_journal();
  // Per-recipient status (queue_state.hpp). A status file whose message is
  // gone belongs to a message that finished just before a crash.
  make_private_dir(dir_ / "status");
  for (const auto& entry : std::filesystem::directory_iterator(dir_ / "status"))
    if (!std::filesystem::exists(queue_ / entry.path().filename())) std::filesystem::remove(entry.path());
  std::vector<std::string> ids;
  for (const auto& entry : std::filesystem::directory_iterator(queue_)) {
    // Mode 0: a journal-mode file whose writing a crash cut short. Its record
    // was never appended, so no 250 covered it (after a reboot the journal
    // replay above has already rewritten every file that had a record).
    if (!spool_file_complete(entry.path())) {
      std::filesystem::remove(entry.path());
      continue;
    }
    // A complete file in queue/ whose envelope does not parse was damaged
    // since. Keep it for an operator, out of the way.
    if (envelope_readable(entry.path())) {
      ids.push_back(entry.path().filename().string());
    } else {
      make_private_dir(dir_ / "corrupt");
      std::filesystem::rename(entry.path(), dir_ / "corrupt" / entry.path().filename());
      corrupt_.push_back(entry.path().filename().string());
    }
  }
  std::sort(ids.begin(), ids.end());
  if (!committer_.joinable()) committer_ = std::thread([this] { run_committer(); });
  if (journal_ && !checkpointer_.joinable()) checkpointer_ = std::thread([this] { run_checkpointer(); });
  return ids;
}

void spool::replay_journal() {
  // A journal left by an earlier run is read whatever the mode is now: its
  // records may be the only durable copy of acknowledged messages.
  const auto journal_dir = dir_ / "journal";
  if (mode_ != sync_mode::journal && !std::filesystem::exists(journal_dir)) return;
  auto journal = std::make_unique<spool_journal>(journal_dir);
  uint64_t replayed = 0;
  auto left = journal->recover([&](const spool_journal::record& r) {
    // The digest vouches for the record; the id still becomes a file name.
    if (r.id.size() != 16 || !std::all_of(r.id.begin(), r.id.end(), [](char c) { return std::isxdigit(c); })) return;
    const auto final_path = queue_ / std::string(r.id);
    // There and complete (a mode change lost with the power counts as missing).
    if (spool_file_complete(final_path) && read_file(final_path) == r.content) return;
    const auto temp = incoming_ / std::string(r.id);
    unique_fd fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    bool ok = fd && write_all(fd.get(), r.content);
    ok = fd.close() == 0 && ok;
    if (!ok || ::rename(temp.c_str(), final_path.c_str()) != 0)
      throw std::runtime_error(final_path.string() + ": cannot restore from the journal: " + std::strerror(errno));
    ++replayed;
  });
  if (!left.segments.empty()) {
    // Whatever was restored, and every queue/ file the segments covered, is
    // durable before the segments go.
    if (::syncfs(queue_fd_.get()) != 0) throw std::runtime_error(dir_.string() + ": syncfs: " + std::strerror(errno));
    if (auto ec = journal->retire(left.segments))
      throw std::runtime_error(journal_dir.string() + ": cannot remove replayed segments: " + ec.message());
  }
  std::lock_guard lock(mutex_);
  stats_.replayed += replayed;
  if (mode_ == sync_mode::journal) journal_ = std::move(journal);
}

std::string spool::next_id() {
  // 16 hex digits: microseconds since the epoch in the high 52 bits (until
  // the year 2112) keep ids sortable by arrival; then the node's number (6
  // bits) and a sequence (6 bits) for ids made in the same microsecond, 64 at
  // most, after which the id borrows the next microsecond.
  uint64_t us = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
  std::lock_guard lock(mutex_);
  if (us > last_microsecond_) {
    sequence_ = 0;
  } else if (++sequence_ == 64) {
    sequence_ = 0;
    us = last_microsecond_ + 1;
  } else {
    us = last_microsecond_;
  }
  last_microsecond_ = us;
  uint64_t id = (us << 12) | (uint64_t{node_number_} << 6) | sequence_;
  char buf[17];
  static constexpr char hex[] = "0123456789ABCDEF";
  for (int i = 15; i >= 0; --i) {
    buf[i] = hex[id & 15];
    id >>= 4;
  }
  buf[16] = 0;
  return buf;
}

void spool::set_node_number(unsigned number) {
  if (number > 63) throw std::invalid_argument("node number " + std::to_string(number) + " is not 0 to 63");
  std::lock_guard lock(mutex_);
  node_number_ = number;
}

std::string spool_node_id(const std::filesystem::path& dir, const std::string& configured) {
  auto file = dir / "node-id";
  if (auto kept = read_file(file)) {
    std::string id = *kept;
    while (!id.empty() && (id.back() == '\n' || id.back() == ' ')) id.pop_back();
    if (!valid_node_id(id)) throw std::runtime_error(file.string() + ": not a node id: '" + id + "'");
    if (!configured.empty() && configured != id)
      throw std::runtime_error(file.string() + ": this spool belongs to node " + id + ", not " + configured +
                               " (node.id): a spool is delivered by the node that accepted it, or moved with "
                               "sealgate queue export and import");
    return id;
  }
  std::string id = configured;
  if (id.empty()) {
    unsigned char random[4];
    if (RAND_bytes(random, sizeof random) != 1) throw std::runtime_error("node id: no random bytes");
    static constexpr char hex[] = "0123456789abcdef";
    for (unsigned char b : random) {
      id += hex[b >> 4];
      id += hex[b & 15];
    }
  }
  // Written whole or not at all, and durable before the node accepts with it.
  // A first start names the node before recover() has made the spool.
  make_private_dir(dir);
  auto partial = dir / "node-id.new";
  unique_fd fd(::open(partial.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!fd || !write_all(fd.get(), id + "\n") || ::fsync(fd.get()) != 0 || ::rename(partial.c_str(), file.c_str()) != 0)
    throw std::runtime_error(file.string() + ": cannot write: " + std::strerror(errno));
  unique_fd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (d) ::fsync(d.get());
  return id;
}

std::unique_ptr<spool::message> spool::begin() {
  std::unique_ptr<message> m(new message);
  m->id_ = next_id();
  m->incoming_ = incoming_ / m->id_;
  m->final_ = queue_ / m->id_;
  return m;
}

spool::message::~message() { abort(); }

bool spool::message::write(std::string_view bytes) {
  if (failed_) return false;
  buffer_.append(bytes);
  // Small messages stay in memory until the committer writes them; a large one
  // spills to incoming/ so that memory stays flat whatever its size.
  if (buffer_.size() >= memory_limit) return spill();
  return true;
}

bool spool::message::open_file() {
  fd_.reset(::open(incoming_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd_) failed_ = true;
  return !failed_;
}

bool spool::message::spill() {
  if (failed_ || (!fd_ && !open_file())) return false;
  if (!write_all(fd_.get(), buffer_)) failed_ = true;
  buffer_.clear();
  return !failed_;
}

boost::system::error_code spool::message::persist(bool sync_data) {
  // Runs on a sync thread: the content reaches the disk under its incoming/
  // name, then takes its queue/ name (made durable by the caller's directory fsync).
  if (!spill()) return {EIO, boost::system::system_category()};
  if (sync_data && ::fdatasync(fd_.get()) != 0) return errno_code();
  if (fd_.close() != 0) return errno_code();
  if (::rename(incoming_.c_str(), final_.c_str()) != 0) return errno_code();
  return {};
}

boost::system::error_code spool::message::write_unsynced() {
  // Journal mode: the journal record is what makes the bytes durable; the
  // buffer stays for it. The file is written under its queue/ name at once
  // (no incoming/ file and rename: a third of the cost of a small message's
  // file), created with mode 0 and given its 0600 only once complete, as
  // Postfix marks finished queue files by their mode: recover() removes a
  // file with mode 0 (a crash while it was written; never acknowledged).
  if (failed_) return {EIO, boost::system::system_category()};
  fd_.reset(::open(final_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0));
  if (!fd_) return errno_code();
  boost::system::error_code ec;
  if (!write_all(fd_.get(), buffer_) || ::fchmod(fd_.get(), spool_file_mode) != 0) ec = errno_code();
  if (fd_.close() != 0 && !ec) ec = errno_code();
  if (ec) {
    if (ec.value() == 0) ec = {EIO, boost::system::system_category()};
    ::unlink(final_.c_str());
  }
  return ec;
}

void spool::message::abort() {
  buffer_.clear();
  if (fd_) {
    fd_.reset();
    ::unlink(incoming_.c_str());
  }
}

void spool::enqueue(std::unique_ptr<message> m, boost::asio::any_io_executor ex,
                    boost::asio::any_completion_handler<void(boost::system::error_code)> h) {
  {
    std::lock_guard lock(mutex_);
    if (!stopping_) {
      waiting_.push_back(pending{std::move(m), std::move(ex), std::move(h)});
      wake_.notify_one();
      return;
    }
  }
  boost::asio::post(ex, boost::asio::append(std::move(h), boost::asio::error::operation_aborted));
}

void spool::run_committer() {
  std::vector<pending> batch;
  while (true) {
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !waiting_.empty(); });
      if (waiting_.empty() && stopping_) return;
      batch.swap(waiting_);
    }
    std::vector<boost::system::error_code> results(batch.size());
    std::vector<spooled_envelope> committed;
    uint64_t file_syncs = 0, dir_syncs = 0, fs_syncs = 0;
    bool dir_ok = true;
    int dir_errno = 0;
    if (mode_ == sync_mode::journal) {
      // Large messages already spilled to a file keep the file path (their
      // own fdatasync, on the sync threads); the others are written to queue/
      // here and then journalled as one group with one fdatasync.
      std::vector<size_t> spilled, small;
      for (size_t i = 0; i < batch.size(); ++i) {
        // A message whose bytes could not all be kept (its incoming/ file
        // could not be created or written) is refused, and never journaled:
        // a record of its first part, with a valid digest, would be restored
        // after a power loss and delivered cut short.
        if (batch[i].msg->failed_) results[i] = {EIO, boost::system::system_category()};
        else (batch[i].msg->fd_ ? spilled : small).push_back(i);
      }
      std::latch persisted(static_cast<std::ptrdiff_t>(spilled.size()));
      for (size_t i : spilled)
        boost::asio::post(sync_threads_, [&, i] {
          results[i] = batch[i].msg->persist(true);
          persisted.count_down();
        });
      // The queue/ files are written while the journal's pages go to the
      // disk (append's while_flushing): the group waits for the longer of the
      // two, not for both. append holds off a checkpoint's rotate() until
      // they are written, so the syncfs that retires the segment covers them.
      // A file that cannot be written fails its message (451), but its record
      // is in the journal by then: a replay after a reboot would deliver it
      // although the client was told to retry (a duplicate, never a loss).
      std::vector<spool_journal::record> records;
      for (size_t i : small) records.push_back({batch[i].msg->id_, batch[i].msg->buffer_});
      if (!records.empty()) {
        ++file_syncs;
        auto write_files = [&] {
          for (size_t i : small) results[i] = batch[i].msg->write_unsynced();
        };
        // The group's journal append, its fdatasync included: the wait every
        // 250 of the group shares (sealgate_journal_fsync_seconds).
        auto appended_from = std::chrono::steady_clock::now();
        auto ec = journal_->append(records, write_files);
        metrics::get().journal_fsync(std::chrono::steady_clock::now() - appended_from);
        if (ec)
          for (size_t i : small)
            if (!results[i]) results[i] = ec;
      }
      persisted.wait();
      if (!spilled.empty()) {
        file_syncs += spilled.size();
        ++dir_syncs;
        dir_ok = ::fsync(queue_fd_.get()) == 0;
        dir_errno = errno;
        // Only the spilled messages' renames depend on this fsync.
        if (!dir_ok)
          for (size_t i : spilled)
            if (!results[i]) results[i] = {dir_errno, boost::system::system_category()};
        dir_ok = true;
      }
    } else {
      // 1. content durable and 2. renamed into queue/, for all messages of the
      // group at once: concurrent fdatasyncs share the file system's journal
      // commits, where one after the other each would wait for its own.
      std::latch persisted(static_cast<std::ptrdiff_t>(batch.size()));
      for (size_t i = 0; i < batch.size(); ++i) {
        boost::asio::post(sync_threads_, [&, i] {
          results[i] = batch[i].msg->persist(mode_ == sync_mode::file);
          persisted.count_down();
        });
      }
      persisted.wait();
      if (mode_ == sync_mode::file) file_syncs = batch.size();
      // 3. one directory fsync makes every rename of the group durable.
      // In filesystem mode syncfs makes the contents and the renames durable at
      // once (and reports writeback errors since Linux 5.8).
      dir_ok = (mode_ == sync_mode::file ? ::fsync(queue_fd_.get()) : ::syncfs(queue_fd_.get())) == 0;
      dir_errno = errno;
      (mode_ == sync_mode::file ? dir_syncs : fs_syncs) = 1;
    }
    for (size_t i = 0; i < batch.size(); ++i) {
      auto& p = batch[i];
      if (!results[i] && !dir_ok) results[i] = {dir_errno, boost::system::system_category()};
      if (results[i]) {
        // Not acknowledged: remove whichever name it has.
        ::unlink(p.msg->final_.c_str());
        p.msg->abort();
      } else {
        committed.push_back(std::move(p.msg->envelope));
      }
    }
    {
      // Counted before any session hears back, so a reader of stats() after
      // its 250 sees its own commit.
      std::lock_guard lock(mutex_);
      stats_.commits += committed.size();
      stats_.file_syncs += file_syncs;
      stats_.dir_syncs += dir_syncs;
      stats_.fs_syncs += fs_syncs;
    }
    for (size_t i = 0; i < batch.size(); ++i)
      boost::asio::post(batch[i].executor, boost::asio::append(std::move(batch[i].handler), results[i]));
    for (size_t i = 0; i < batch.size(); ++i)
      if (!results[i] && !batch[i].msg->accepted_log.empty()) log(log_level::info, batch[i].msg->id_, batch[i].msg->accepted_log);
    if (on_committed_ && !committed.empty()) on_committed_(std::move(committed));
    batch.clear();
  }
}

spool_stats spool::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

void spool::run_checkpointer() {
  std::unique_lock lock(mutex_);
  while (!checkpoint_stopping_) {
    checkpoint_wake_.wait_for(lock, checkpoint_interval, [&] { return checkpoint_stopping_; });
    lock.unlock();
    checkpoint();  // also the last one, after the committer has stopped
    lock.lock();
  }
}

void spool::checkpoint() {
  // rotate() first: every queue/ file of a closed segment was written before
  // its record was appended, so a syncfs that starts now covers them all.
  auto segments = journal_->rotate();
  if (segments.empty()) return;
  std::string failure;
  if (::syncfs(queue_fd_.get()) != 0)
    failure = std::string("syncfs: ") + std::strerror(errno);
  else if (auto ec = journal_->retire(segments))
    failure = "removing journal segments: " + ec.message();
  bool first_failure = false;
  {
    std::lock_guard lock(mutex_);
    ++stats_.fs_syncs;
    if (!failure.empty()) first_failure = stats_.checkpoint_failures++ == 0 || checkpoint_ok_;
    checkpoint_ok_ = failure.empty();
  }
  // The segments stay and the next checkpoint tries again; said once per run
  // of failures, since the journal then grows until one succeeds.
  if (first_failure) log_error("spool " + dir_.string() + ": journal checkpoint failed (" + failure + "); retrying");
}

void spool::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    wake_.notify_one();
  }
  if (committer_.joinable()) committer_.join();
  sync_threads_.join();
  {
    std::lock_guard lock(mutex_);
    checkpoint_stopping_ = true;
    checkpoint_wake_.notify_one();
  }
  if (checkpointer_.joinable()) checkpointer_.join();
}

std::optional<spooled_envelope> spool::read_envelope(const std::string& id) const {
  std::ifstream in(queue_ / id, std::ios::binary);
  std::string head(64 * 1024, '\0');
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  head.resize(static_cast<size_t>(in.gcount()));
  spooled_envelope e;
  size_t offset = 0;
  if (!decode_envelope(head, e, offset)) return std::nullopt;
  std::error_code ec;
  auto size = std::filesystem::file_size(queue_ / id, ec);
  e.content_size = ec ? 0 : size - offset;
  return e;
}

}  // namespace sealgate::gateway
