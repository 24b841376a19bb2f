// The record's local journal of batches not yet committed; see record_journal.hpp.
#include "gateway/record/record_journal.hpp"

#include <fcntl.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "common/file_io.hpp"
#include "common/log.hpp"
#include "common/text.hpp"
#include "common/unique_fd.hpp"

namespace sealgate::gateway {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view header_tag = "sealgate-record-batch 1 ";
constexpr std::string_view batch_suffix = ".batch";

class field_writer {
 public:
  void text(std::string_view s) {
    auto n = static_cast<uint32_t>(s.size());
    for (int k = 0; k < 4; ++k) out_ += static_cast<char>((n >> (8 * k)) & 0xFF);
    out_.append(s);
  }
  void number(int64_t v) { text(std::to_string(v)); }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

class field_reader {
 public:
  explicit field_reader(std::string_view in) : in_(in) {}
  bool text(std::string& out) {
    if (in_.size() < 4) return false;
    uint32_t n = 0;
    for (int k = 0; k < 4; ++k) n |= static_cast<uint32_t>(static_cast<unsigned char>(in_[static_cast<size_t>(k)])) << (8 * k);
    if (in_.size() - 4 < n) return false;
    out.assign(in_.substr(4, n));
    in_.remove_prefix(4 + n);
    return true;
  }
  template <typename Int>
  bool number(Int& out) {
    std::string s;
    if (!text(s) || s.empty()) return false;
    size_t used = 0;
    try {
      auto v = std::stoll(s, &used);
      out = static_cast<Int>(v);
    } catch (const std::exception&) {
      return false;
    }
    return used == s.size();
  }
  bool done() const { return in_.empty(); }

 private:
  std::string_view in_;
};

// The number in a file name "NNNN.batch"; nullopt for any other name.
std::optional<uint64_t> batch_number(const fs::path& p) {
  std::string name = p.filename().string();
  if (name.size() != 16 + batch_suffix.size() || !name.ends_with(batch_suffix)) return std::nullopt;
  uint64_t n = 0;
  for (char c : name.substr(0, 16)) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  return n;
}

std::error_code last_error() { return {errno, std::generic_category()}; }

}  // namespace

std::string new_batch_id() {
  unsigned char random[16];
  if (RAND_bytes(random, sizeof random) != 1) throw std::runtime_error("record batch id: no random bytes");
  static constexpr char hex[] = "0123456789abcdef";
  std::string id;
  for (unsigned char b : random) {
    id += hex[b >> 4];
    id += hex[b & 15];
  }
  return id;
}

std::string encode_batch(const record_batch& b) {
  field_writer w;
  w.text(b.id);
  w.number(static_cast<int64_t>(b.accepted.size()));
  for (const auto& m : b.accepted) {
    for (const std::string* s : {&m.queue_id, &m.listener, &m.client_address, &m.helo, &m.auth_user, &m.tls_protocol,
                                 &m.tls_cipher, &m.relay_class, &m.sender, &m.message_id})
      w.text(*s);
    w.number(m.received);
    w.number(static_cast<int64_t>(m.content_size));
    w.number(static_cast<int64_t>(m.recipients.size()));
    for (const auto& r : m.recipients) w.text(r.recipient);
  }
  w.number(static_cast<int64_t>(b.message_ids.size()));
  for (const auto& [queue_id, message_id] : b.message_ids) {
    w.text(queue_id);
    w.text(message_id);
  }
  w.number(static_cast<int64_t>(b.rows.size()));
  for (const auto& r : b.rows) {
    for (const std::string* s : {&r.queue_id, &r.address, &r.outcome, &r.method, &r.rule, &r.policy_sha256, &r.mx_host,
                                 &r.mx_address, &r.tls_protocol, &r.tls_cipher, &r.certificate, &r.reply, &r.classes,
                                 &r.key_fingerprint, &r.actor})
      w.text(*s);
    w.number(static_cast<int64_t>(r.index));
    w.number(r.at);
    w.number(r.attempted ? 1 : 0);
  }
  w.number(static_cast<int64_t>(b.tls_sessions.size()));
  for (const auto& t : b.tls_sessions)
    for (const std::string* s : {&t.day, &t.policy_domain, &t.policy_type, &t.mx_host, &t.address, &t.result_type})
      w.text(*s);
  return w.take();
}

std::optional<record_batch> decode_batch(std::string_view bytes) {
  field_reader r(bytes);
  record_batch b;
  size_t count = 0;
  if (!r.text(b.id) || !r.number(count)) return std::nullopt;
  for (size_t i = 0; i < count; ++i) {
    spooled_envelope m;
    for (std::string* s : {&m.queue_id, &m.listener, &m.client_address, &m.helo, &m.auth_user, &m.tls_protocol,
                           &m.tls_cipher, &m.relay_class, &m.sender, &m.message_id})
      if (!r.text(*s)) return std::nullopt;
    size_t recipients = 0;
    if (!r.number(m.received) || !r.number(m.content_size) || !r.number(recipients)) return std::nullopt;
    for (size_t k = 0; k < recipients; ++k) {
      parsed_rcpt rcpt;
      if (!r.text(rcpt.recipient)) return std::nullopt;
      m.recipients.push_back(std::move(rcpt));
    }
    b.accepted.push_back(std::move(m));
  }
  if (!r.number(count)) return std::nullopt;
  for (size_t i = 0; i < count; ++i) {
    std::pair<std::string, std::string> id;
    if (!r.text(id.first) || !r.text(id.second)) return std::nullopt;
    b.message_ids.push_back(std::move(id));
  }
  if (!r.number(count)) return std::nullopt;
  for (size_t i = 0; i < count; ++i) {
    attempt_row row;
    for (std::string* s : {&row.queue_id, &row.address, &row.outcome, &row.method, &row.rule, &row.policy_sha256,
                           &row.mx_host, &row.mx_address, &row.tls_protocol, &row.tls_cipher, &row.certificate,
                           &row.reply, &row.classes, &row.key_fingerprint, &row.actor})
      if (!r.text(*s)) return std::nullopt;
    int attempted = 0;
    if (!r.number(row.index) || !r.number(row.at) || !r.number(attempted)) return std::nullopt;
    row.attempted = attempted != 0;
    b.rows.push_back(std::move(row));
  }
  if (!r.number(count)) return std::nullopt;
  for (size_t i = 0; i < count; ++i) {
    tls_session_row t;
    for (std::string* s : {&t.day, &t.policy_domain, &t.policy_type, &t.mx_host, &t.address, &t.result_type})
      if (!r.text(*s)) return std::nullopt;
    b.tls_sessions.push_back(std::move(t));
  }
  if (!r.done()) return std::nullopt;
  return b;
}

record_journal::record_journal(fs::path dir) : dir_(std::move(dir)) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) throw std::runtime_error(dir_.string() + ": cannot create: " + ec.message());
  ::chmod(dir_.c_str(), 0700);
  for (const auto& p : waiting()) next_ = std::max(next_, *batch_number(p) + 1);
}

std::vector<fs::path> record_journal::waiting() const {
  std::vector<std::pair<uint64_t, fs::path>> found;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir_, ec))
    if (auto n = batch_number(entry.path())) found.emplace_back(*n, entry.path());
  std::sort(found.begin(), found.end());
  std::vector<fs::path> out;
  for (auto& [n, p] : found) out.push_back(std::move(p));
  return out;
}

uint64_t record_journal::bytes() const {
  uint64_t total = 0;
  std::error_code ec;
  for (const auto& p : waiting()) total += fs::file_size(p, ec);
  return total;
}

std::error_code record_journal::append(const record_batch& b) {
  std::string body = encode_batch(b);
  std::string data = std::string(header_tag) + sha256_hex(body) + "\n" + body;
  char name[32];
  std::snprintf(name, sizeof name, "%016llu", static_cast<unsigned long long>(next_));
  fs::path final_name = dir_ / (std::string(name) + std::string(batch_suffix));
  fs::path partial = dir_ / (std::string(name) + ".tmp");
  {
    unique_fd fd(::open(partial.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!fd) return last_error();
    if (!write_all(fd.get(), data) || ::fdatasync(fd.get()) != 0) {
      auto ec = last_error();
      ::unlink(partial.c_str());
      return ec;
    }
  }
  if (::rename(partial.c_str(), final_name.c_str()) != 0) {
    auto ec = last_error();
    ::unlink(partial.c_str());
    return ec;
  }
  unique_fd d(::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!d || ::fsync(d.get()) != 0) return last_error();
  ++next_;
  return {};
}

std::optional<record_batch> record_journal::read(const fs::path& file) const {
  auto data = read_file(file);
  std::optional<record_batch> batch;
  if (data && data->starts_with(header_tag)) {
    auto newline = data->find('\n');
    if (newline != std::string::npos) {
      std::string_view digest(data->data() + header_tag.size(), newline - header_tag.size());
      std::string_view body(data->data() + newline + 1, data->size() - newline - 1);
      if (digest == sha256_hex(body)) batch = decode_batch(body);
    }
  }
  if (!batch) {
    auto aside = file;
    aside.replace_extension(".corrupt");
    std::error_code ec;
    fs::rename(file, aside, ec);
    log_error("record journal: " + file.string() + " is damaged; set aside as " + aside.filename().string() +
              " (its records are not in the database)");
  }
  return batch;
}

void record_journal::remove(const fs::path& file) {
  std::error_code ec;
  fs::remove(file, ec);
  if (ec) log_error("record journal: cannot remove " + file.string() + ": " + ec.message());
}

}  // namespace sealgate::gateway
