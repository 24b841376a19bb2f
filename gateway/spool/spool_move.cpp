// Export and import of a spool's messages; see spool_move.hpp. Ordering that
// matters: export: every message locked, the export file fsync'd (and its
// directory), then each queue file renamed out of queue/ before its status
// file (a crash between leaves an orphan status file, which recovery drops,
// never a queue file without its status, whose done recipients would go
// again), then the directories fsync'd. Import: the status file durable in
// status/ before the queue file takes its queue/ name, the queue file durable
// before the imported/ marker, and the marker last: a crash in between leaves
// either nothing deliverable or a queue/ file that a second import refuses.
#include "gateway/spool/spool_move.hpp"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <set>

#include "common/file_io.hpp"
#include "common/text.hpp"
#include "common/unique_fd.hpp"
#include "gateway/config/config.hpp"
#include "gateway/spool/queue_state.hpp"
#include "gateway/spool/spool.hpp"

namespace sealgate::gateway {
namespace {

constexpr std::string_view magic = "sealgate-export";
constexpr std::string_view version = "1";
constexpr size_t line_limit = 512;  // every line of the format is far shorter

[[noreturn]] void fail(const std::string& what) { throw spool_move_error(what); }
[[noreturn]] void fail_errno(const std::filesystem::path& p, std::string_view doing) {
  fail(p.string() + ": " + std::string(doing) + ": " + std::strerror(errno));
}

// Who the spool's files belong to. Run as root (the usual operator), new
// files and directories are given to the spool's owner, the gateway's user:
// a root-owned 0600 queue file is one the gateway cannot read.
struct spool_owner {
  bool change = false;
  uid_t uid = 0;
  gid_t gid = 0;
  void apply(int fd, const std::filesystem::path& p) const {
    if (change && ::fchown(fd, uid, gid) != 0) fail_errno(p, "chown");
  }
};

spool_owner owner_of(const std::filesystem::path& spool_dir) {
  spool_owner o;
  struct stat st {};
  if (::geteuid() == 0 && ::stat(spool_dir.c_str(), &st) == 0 && st.st_uid != 0) {
    o.change = true;
    o.uid = st.st_uid;
    o.gid = st.st_gid;
  }
  return o;
}

void make_dir(const std::filesystem::path& p, const spool_owner& owner) {
  if (::mkdir(p.c_str(), 0700) != 0) {
    if (errno == EEXIST && std::filesystem::is_directory(p)) return;
    fail_errno(p, "mkdir");
  }
  unique_fd d(::open(p.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!d) fail_errno(p, "open");
  owner.apply(d.get(), p);
}

void sync_dir(const std::filesystem::path& p) {
  unique_fd d(::open(p.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!d || ::fsync(d.get()) != 0) fail_errno(p, "fsync");
}

// A new file with data, durable under its name's directory entry once the
// caller fsyncs the directory.
void write_durable(const std::filesystem::path& p, std::string_view data, const spool_owner& owner) {
  unique_fd fd(::open(p.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, spool_file_mode));
  if (!fd) fail_errno(p, "create");
  owner.apply(fd.get(), p);
  if (!write_all(fd.get(), data) || ::fdatasync(fd.get()) != 0) {
    int e = errno;
    ::unlink(p.c_str());
    errno = e;
    fail_errno(p, "write");
  }
  if (int e = fd.close(); e != 0) {
    ::unlink(p.c_str());
    errno = e;
    fail_errno(p, "close");
  }
}

// Exactly size octets at offset; false when the file is shorter.
bool read_at(int fd, uint64_t offset, uint64_t size, std::string& out) {
  out.resize(size);
  uint64_t done = 0;
  while (done < size) {
    ssize_t n = ::pread(fd, out.data() + done, size - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<uint64_t>(n);
  }
  return true;
}

std::string read_whole(int fd, const std::filesystem::path& p) {
  struct stat st {};
  std::string out;
  if (::fstat(fd, &st) != 0 || !read_at(fd, 0, static_cast<uint64_t>(st.st_size), out)) fail_errno(p, "read");
  return out;
}

// Every message of the spool stays locked until it has left queue/: one
// descriptor each, so the soft limit is raised to the hard one if need be.
void make_room_for_descriptors(size_t messages) {
  constexpr rlim_t spare = 64;  // the export file, directories, the library's own
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return;
  rlim_t want = messages + spare;
  if (lim.rlim_cur != RLIM_INFINITY && lim.rlim_cur < want) {
    lim.rlim_cur = lim.rlim_max == RLIM_INFINITY ? want : std::min<rlim_t>(want, lim.rlim_max);
    ::setrlimit(RLIMIT_NOFILE, &lim);
  }
  if (lim.rlim_cur != RLIM_INFINITY && lim.rlim_cur < want)
    fail(std::to_string(messages) + " messages need " + std::to_string(want) + " open files, and the limit is " +
         std::to_string(lim.rlim_cur) + " (ulimit -n)");
}

bool number(std::string_view s, uint64_t& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return !s.empty() && ec == std::errc{} && p == s.data() + s.size();
}

bool sha256_like(std::string_view s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

// Reads an export file front to back.
class export_reader {
 public:
  explicit export_reader(const std::filesystem::path& file) : file_(file) {
    fd_.reset(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
    struct stat st {};
    if (!fd_ || ::fstat(fd_.get(), &st) != 0) fail_errno(file, "open");
    size_ = static_cast<uint64_t>(st.st_size);
  }
  uint64_t pos() const { return pos_; }
  uint64_t left() const { return size_ - pos_; }
  // The next line without its "\n"; false at the end of the file or when no
  // "\n" comes within line_limit octets.
  bool line(std::string& out) {
    std::string chunk;
    if (!read_at(fd_.get(), pos_, std::min<uint64_t>(line_limit, left()), chunk)) fail_errno(file_, "read");
    auto nl = chunk.find('\n');
    if (nl == std::string::npos) return false;
    out = chunk.substr(0, nl);
    pos_ += nl + 1;
    return true;
  }
  // The next size octets (the caller has checked that they are there).
  std::string bytes(uint64_t size) {
    std::string out;
    if (!read_at(fd_.get(), pos_, size, out)) fail(file_.string() + ": truncated");
    pos_ += size;
    return out;
  }

 private:
  std::filesystem::path file_;
  unique_fd fd_;
  uint64_t size_ = 0, pos_ = 0;
};

// Whether id is already in this spool, and how: queued, exported from
// here, or imported before (its marker outlives the delivery).
std::string already_here(const std::filesystem::path& spool_dir, const std::string& id) {
  if (std::filesystem::exists(spool_dir / "imported" / id)) return "already imported";
  if (std::filesystem::exists(queue_file(spool_dir, id))) return "already in this spool's queue";
  if (std::filesystem::exists(spool_dir / "exported" / id)) return "exported from this spool";
  return "";
}

}  // namespace

export_summary export_spool(const std::filesystem::path& spool_dir, const std::filesystem::path& out,
                            const std::string& node) {
  if (!std::filesystem::is_directory(spool_dir / "queue"))
    fail(spool_dir.string() + ": not a spool (no queue/ directory)");
  export_summary summary;
  summary.node = node;
  std::vector<std::string> ids;
  {
    // What a restart would find: the journal replayed after a reboot,
    // unfinished and unacknowledged files dropped, damaged ones set aside.
    spool recovered(spool_dir, sync_mode::file);
    ids = recovered.recover();
    summary.corrupt = recovered.corrupt();
  }
  make_room_for_descriptors(ids.size());
  const spool_owner owner = owner_of(spool_dir);
  unique_fd fd(::open(out.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd) fail_errno(out, "create");
  std::vector<unique_fd> held;  // the locks, until the messages have left queue/
  try {
    std::string lines;  // what the trailer's digest covers
    auto put = [&](std::string_view data) {
      if (!write_all(fd.get(), data)) fail_errno(out, "write");
      summary.bytes += data.size();
    };
    auto put_line = [&](const std::string& line) {
      put(line);
      lines += line;
    };
    put_line(std::string(magic) + " " + std::string(version) + " " + node + "\n");
    for (const auto& id : ids) {
      auto lock = queue_lock::try_lock(spool_dir, id);
      if (lock.status() == queue_lock::state::busy)
        fail(id + ": being delivered: a gateway is running on " + spool_dir.string() + "; stop it first");
      if (lock.status() == queue_lock::state::no_such_message) continue;
      std::string content = read_whole(lock.fd(), queue_file(spool_dir, id));
      std::string status = read_file(status_file(spool_dir, id)).value_or("");
      put_line("message " + id + " " + std::to_string(content.size()) + " " + sha256_hex(content) + " " +
               std::to_string(status.size()) + " " + sha256_hex(status) + "\n");
      put(content);
      put(status);
      held.push_back(lock.release());
      summary.ids.push_back(id);
    }
    put("end " + std::to_string(summary.ids.size()) + " " + sha256_hex(lines) + "\n");
    if (::fsync(fd.get()) != 0) fail_errno(out, "fsync");
    if (int e = fd.close(); e != 0) {
      errno = e;
      fail_errno(out, "close");
    }
    sync_dir(std::filesystem::absolute(out).parent_path());
  } catch (...) {
    ::unlink(out.c_str());
    throw;
  }
  // The file is durable: now the messages leave queue/, so that this node,
  // started again, can never deliver them.
  const auto exported = spool_dir / "exported";
  std::vector<std::string> moved;
  try {
    make_dir(exported, owner);
    for (const auto& id : summary.ids) {
      if (::rename(queue_file(spool_dir, id).c_str(), (exported / id).c_str()) != 0)
        fail_errno(queue_file(spool_dir, id), "rename to exported/");
      moved.push_back(id);
      auto status = status_file(spool_dir, id);
      if (::rename(status.c_str(), (exported / (id + ".status")).c_str()) != 0 && errno != ENOENT)
        fail_errno(status, "rename to exported/");
    }
    sync_dir(exported);
    sync_dir(spool_dir / "queue");
    sync_dir(spool_dir / "status");
  } catch (const spool_move_error& e) {
    // Put back what moved and withdraw the file: a message both in the file
    // and in queue/ could be delivered twice.
    for (const auto& id : moved) {
      ::rename((exported / (id + ".status")).c_str(), status_file(spool_dir, id).c_str());
      ::rename((exported / id).c_str(), queue_file(spool_dir, id).c_str());
    }
    ::unlink(out.c_str());
    for (const auto& d : {std::filesystem::absolute(out).parent_path(), spool_dir / "queue"}) {
      unique_fd dir(::open(d.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      if (dir) ::fsync(dir.get());
    }
    fail(std::string(e.what()) + "; nothing exported (" + out.string() + " removed, the messages stay in queue/)");
  }
  return summary;
}

export_index verify_export(const std::filesystem::path& file) {
  export_reader in(file);
  std::string lines;  // what the trailer's digest covers
  const std::string name = file.string();
  auto damaged = [&](const std::string& why) { fail(name + ": damaged: " + why); };
  auto truncated = [&](const std::string& why) { fail(name + ": truncated: " + why); };
  export_index index;
  std::string line;
  if (!in.line(line)) fail(name + ": not a sealgate export file");
  auto head = split_fields(line);
  if (head.size() != 3 || head[0] != magic) fail(name + ": not a sealgate export file");
  if (head[1] != version) fail(name + ": export format " + std::string(head[1]) + " is not supported (only 1)");
  if (head[2] != "unknown" && !valid_node_id(head[2])) damaged("bad node id in the header");
  index.node = std::string(head[2]);
  lines += line + "\n";
  std::set<std::string> seen;
  while (true) {
    if (!in.line(line)) {
      if (in.left() < line_limit) truncated("the trailer is missing after " + std::to_string(index.messages.size()) +
                                            " messages");
      damaged("a line is too long at offset " + std::to_string(in.pos()));
    }
    auto f = split_fields(line);
    if (f[0] == "end") {
      uint64_t count = 0;
      if (f.size() != 3 || !number(f[1], count) || !sha256_like(f[2])) damaged("bad trailer");
      if (count != index.messages.size())
        damaged("the trailer counts " + std::to_string(count) + " messages, the file holds " +
                std::to_string(index.messages.size()));
      if (f[2] != sha256_hex(lines)) damaged("digest mismatch in the trailer");
      if (in.left() != 0) damaged("data after the trailer");
      return index;
    }
    exported_message m;
    if (f[0] != "message" || f.size() != 6 || !valid_queue_id(f[1]) || !number(f[2], m.queue_size) ||
        !sha256_like(f[3]) || !number(f[4], m.status_size) || !sha256_like(f[5]))
      damaged("unexpected line at offset " + std::to_string(in.pos() - line.size() - 1));
    m.id = std::string(f[1]);
    if (!seen.insert(m.id).second) damaged(m.id + " appears twice");
    if (m.queue_size > in.left() || m.status_size > in.left() - m.queue_size)
      truncated(m.id + " is cut short");
    m.queue_sha256 = std::string(f[3]);
    m.status_sha256 = std::string(f[5]);
    lines += line + "\n";
    m.queue_offset = in.pos();
    std::string content = in.bytes(m.queue_size);
    m.status_offset = in.pos();
    std::string status = in.bytes(m.status_size);
    if (sha256_hex(content) != m.queue_sha256) damaged(m.id + ": digest mismatch (queue file)");
    if (sha256_hex(status) != m.status_sha256) damaged(m.id + ": digest mismatch (status file)");
    spooled_envelope e;
    size_t offset = 0;
    if (!decode_envelope(content, e, offset) || e.queue_id != m.id) damaged(m.id + ": not a spool file of that id");
    index.messages.push_back(std::move(m));
  }
}

import_summary import_spool(const std::filesystem::path& spool_dir, const std::filesystem::path& file) {
  export_index index = verify_export(file);
  if (!std::filesystem::is_directory(spool_dir / "queue"))
    fail(spool_dir.string() + ": not a spool (no queue/ directory: start the gateway on it once)");
  const spool_owner owner = owner_of(spool_dir);
  const auto incoming = spool_dir / "incoming", status_dir = spool_dir / "status", queue_dir = spool_dir / "queue",
             imported_dir = spool_dir / "imported";
  for (const auto& d : {incoming, status_dir, imported_dir}) make_dir(d, owner);
  unique_fd in(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  if (!in) fail_errno(file, "open");
  import_summary summary;
  summary.node = index.node;
  for (const auto& m : index.messages) {
    if (auto why = already_here(spool_dir, m.id); !why.empty()) {
      summary.refused.emplace_back(m.id, why);
      continue;
    }
    // Read again and checked again: the file was verified, but it is read a
    // second time, and what is written must be what was verified.
    std::string content, status;
    if (!read_at(in.get(), m.queue_offset, m.queue_size, content) ||
        !read_at(in.get(), m.status_offset, m.status_size, status) || sha256_hex(content) != m.queue_sha256 ||
        sha256_hex(status) != m.status_sha256)
      fail(file.string() + ": changed while it was imported (at " + m.id + ")");
    // Both written under incoming/ (recovery drops what a crash leaves
    // there), the status file in place before the queue file: a queue file
    // without its status would send its done recipients again.
    const auto status_temp = incoming / (m.id + ".status"), queue_temp = incoming / m.id;
    write_durable(status_temp, status, owner);
    write_durable(queue_temp, content, owner);
    if (::rename(status_temp.c_str(), status_file(spool_dir, m.id).c_str()) != 0) fail_errno(status_temp, "rename");
    sync_dir(status_dir);
    if (::rename(queue_temp.c_str(), queue_file(spool_dir, m.id).c_str()) != 0) fail_errno(queue_temp, "rename");
    sync_dir(queue_dir);
    write_durable(imported_dir / m.id, index.node + "\n", owner);
    sync_dir(imported_dir);
    spooled_envelope e;
    size_t offset = 0;
    decode_envelope(content, e, offset);  // verified above
    e.content_size = content.size() - offset;
    summary.envelopes.push_back(std::move(e));
    summary.imported.push_back(m.id);
  }
  return summary;
}

}  // namespace sealgate::gateway
