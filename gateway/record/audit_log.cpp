// The audit log's hashing, signing and verification; see audit_log.hpp.
#include "gateway/record/audit_log.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <iterator>
#include <map>
#include <stdexcept>
#include <string_view>
#include <vector>

#include "common/file_io.hpp"
#include "common/sql.hpp"
#include "common/text.hpp"
#include "common/unique_fd.hpp"
#include "gateway/record/schema.hpp"

namespace sealgate::gateway::audit {

namespace {

// A row's text against the value its entry holds: the same bytes, or what
// PostgreSQL stores for them (sql::storable_text: TEXT there is valid UTF-8
// without NUL, so a remote reply's odd byte is U+FFFD in the row, while the
// entry keeps the byte).
bool same_text(const std::string& row, const std::string& entry) {
  return row == entry || row == sql::storable_text(entry);
}

}  // namespace

namespace {

std::string time_text(int64_t t) { return utc_time(t, "%Y-%m-%d %H:%M:%S UTC"); }

}  // namespace

std::string link_hash(std::string_view prev, std::string_view entry) {
  std::string bytes;
  bytes.reserve(prev.size() + entry.size());
  bytes.append(prev).append(entry);
  return sha256_hex(bytes);
}

// --- events ---

event::event(std::string_view kind, int64_t at, std::string_view queue_id) {
  text_ = "{\"kind\":" + json_string(kind) + ",\"at\":" + std::to_string(at);
  if (!queue_id.empty()) text_ += ",\"queue_id\":" + json_string(queue_id);
}

event& event::add(std::string_view name, std::string_view text) {
  text_ += "," + json_string(name) + ":" + json_string(text);
  return *this;
}

event& event::add(std::string_view name, int64_t number) {
  text_ += "," + json_string(name) + ":" + std::to_string(number);
  return *this;
}

event& event::add(std::string_view name, const std::vector<std::string>& texts) {
  text_ += "," + json_string(name) + ":[";
  for (size_t i = 0; i < texts.size(); ++i) text_ += (i ? "," : "") + json_string(texts[i]);
  text_ += "]";
  return *this;
}

event& event::add_known(std::string_view name, std::string_view text) {
  return text.empty() ? *this : add(name, text);
}

// --- reading entries back ---

namespace {

// Reads what event writes, and nothing more general: one object whose
// members are texts, integers or arrays of them. A \u00XX escape is the
// octet XX (json_string writes octets >= 0x80 so, one by one), so a text
// reads back to exactly the bytes written, NUL included; a larger code point
// (never written) becomes its UTF-8.
class flat_json_reader {
 public:
  explicit flat_json_reader(std::string_view json) : in_(json) {}

  bool object(std::map<std::string, entry_fields::value, std::less<>>& members) {
    if (!take('{')) return false;
    if (take('}')) return at_end();
    do {
      std::string name;
      entry_fields::value v;
      if (!text(name) || !take(':') || !value(v)) return false;
      members.emplace(std::move(name), std::move(v));  // a name given twice (never written): the first
    } while (take(','));
    return take('}') && at_end();
  }

 private:
  void skip_space() {
    while (pos_ < in_.size() && (in_[pos_] == ' ' || in_[pos_] == '\t' || in_[pos_] == '\n' || in_[pos_] == '\r'))
      ++pos_;
  }
  bool take(char c) {
    skip_space();
    if (pos_ >= in_.size() || in_[pos_] != c) return false;
    ++pos_;
    return true;
  }
  bool at_end() {
    skip_space();
    return pos_ == in_.size();
  }
  bool value(entry_fields::value& v) {
    skip_space();
    if (pos_ < in_.size() && in_[pos_] == '[') {
      ++pos_;
      v.type = entry_fields::value::is_array;
      if (take(']')) return true;
      do {
        entry_fields::value item;
        if (!scalar(item)) return false;
        ++v.items;
      } while (take(','));
      return take(']');
    }
    return scalar(v);
  }
  bool scalar(entry_fields::value& v) {
    skip_space();
    if (pos_ < in_.size() && in_[pos_] == '"') {
      v.type = entry_fields::value::is_text;
      return text(v.text);
    }
    v.type = entry_fields::value::is_integer;
    return integer(v.number);
  }
  bool integer(int64_t& n) {
    size_t start = pos_;
    if (pos_ < in_.size() && in_[pos_] == '-') ++pos_;
    size_t digits = pos_;
    while (pos_ < in_.size() && in_[pos_] >= '0' && in_[pos_] <= '9') ++pos_;
    if (pos_ == digits || pos_ - digits > 18) return false;  // within int64_t, as every number written
    n = std::stoll(std::string(in_.substr(start, pos_ - start)));
    return true;
  }
  bool hex4(uint32_t& cp) {
    if (in_.size() - pos_ < 4) return false;
    cp = 0;
    for (int i = 0; i < 4; ++i) {
      char c = in_[pos_++];
      int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
      if (d < 0) return false;
      cp = cp * 16 + static_cast<uint32_t>(d);
    }
    return true;
  }
  bool text(std::string& out) {
    if (!take('"')) return false;
    while (pos_ < in_.size()) {
      char c = in_[pos_++];
      if (c == '"') return true;
      if (static_cast<unsigned char>(c) < 0x20) return false;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= in_.size()) return false;
      switch (char e = in_[pos_++]) {
        case '"': case '\\': case '/': out += e; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          uint32_t cp = 0;
          if (!hex4(cp)) return false;
          if (cp <= 0xff) {
            out += static_cast<char>(cp);
          } else if (cp < 0x800) {
            out += static_cast<char>(0xc0 | (cp >> 6));
            out += static_cast<char>(0x80 | (cp & 0x3f));
          } else {  // surrogates are not paired here: never written
            out += static_cast<char>(0xe0 | (cp >> 12));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
            out += static_cast<char>(0x80 | (cp & 0x3f));
          }
          break;
        }
        default: return false;
      }
    }
    return false;
  }

  std::string_view in_;
  size_t pos_ = 0;
};

}  // namespace

std::optional<entry_fields> entry_fields::parse(std::string_view json) {
  entry_fields e;
  if (!flat_json_reader(json).object(e.members_)) return std::nullopt;
  return e;
}

std::string entry_fields::text(std::string_view name) const {
  auto it = members_.find(name);
  if (it == members_.end()) return "";
  if (it->second.type == value::is_text) return it->second.text;
  if (it->second.type == value::is_integer) return std::to_string(it->second.number);
  return "";
}

std::optional<int64_t> entry_fields::integer(std::string_view name) const {
  auto it = members_.find(name);
  if (it == members_.end() || it->second.type != value::is_integer) return std::nullopt;
  return it->second.number;
}

std::optional<size_t> entry_fields::array_size(std::string_view name) const {
  auto it = members_.find(name);
  if (it == members_.end() || it->second.type != value::is_array) return std::nullopt;
  return it->second.items;
}

lookup_columns lookup_columns_of(const entry_fields& e) {
  return {e.text("queue_id"), e.text("kind"), e.integer("at"), e.integer("idx"), e.integer("attempt")};
}

// --- the key ---

struct ed25519_key::pkey {
  EVP_PKEY* p = nullptr;
  ~pkey() { EVP_PKEY_free(p); }
};

ed25519_key ed25519_key::generate() {
  EVP_PKEY* p = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  if (!p) throw std::runtime_error("Ed25519 key generation failed");
  ed25519_key k;
  k.key_ = std::make_shared<pkey>();
  k.key_->p = p;
  k.has_private_ = true;
  return k;
}

ed25519_key ed25519_key::from_pem(std::string_view pem) {
  ed25519_key k;
  k.key_ = std::make_shared<pkey>();
  for (bool private_key : {true, false}) {
    BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
    if (!bio) break;
    k.key_->p = private_key ? PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr)
                            : PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr);
    BIO_free(bio);
    if (k.key_->p) {
      k.has_private_ = private_key;
      break;
    }
  }
  if (!k.key_->p) throw std::runtime_error("not a PEM private or public key");
  if (!EVP_PKEY_is_a(k.key_->p, "ED25519")) throw std::runtime_error("not an Ed25519 key");
  return k;
}

ed25519_key ed25519_key::load(const std::filesystem::path& file) {
  auto bytes = read_file(file);
  if (!bytes) throw std::runtime_error(file.string() + ": cannot read the audit key");
  try {
    return from_pem(*bytes);
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(file.string() + ": " + e.what());
  }
}

namespace {
void write_new_file(const std::filesystem::path& file, const std::string& text, mode_t mode) {
  if (file.has_parent_path()) std::filesystem::create_directories(file.parent_path());
  unique_fd fd(::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
  if (!fd || ::fchmod(fd.get(), mode) != 0 || !write_all(fd.get(), text) || ::fsync(fd.get()) != 0)
    throw std::runtime_error(file.string() + ": cannot write");
}
}  // namespace

ed25519_key ed25519_key::load_or_create(const std::filesystem::path& private_file,
                                        const std::filesystem::path& public_file) {
  if (std::filesystem::exists(private_file)) {
    auto k = load(private_file);
    if (!k.can_sign()) throw std::runtime_error(private_file.string() + ": a public key, the gateway needs the private one");
    // The public half beside it, for auditors, if it went missing.
    if (!public_file.empty() && !std::filesystem::exists(public_file)) write_new_file(public_file, k.public_pem(), 0644);
    return k;
  }
  auto k = generate();
  // The public key first: a crash between the two leaves no private key
  // without its public half (the next start makes a new pair).
  if (!public_file.empty()) write_new_file(public_file, k.public_pem(), 0644);
  write_new_file(private_file, k.private_pem(), 0600);
  return k;
}

std::string ed25519_key::sign(std::string_view message) const {
  if (!has_private_) throw std::runtime_error("the audit key is a public key: it cannot sign");
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  unsigned char sig[64];
  size_t n = sizeof sig;
  bool ok = ctx && EVP_DigestSignInit(ctx, nullptr, nullptr, nullptr, key_->p) == 1 &&
            EVP_DigestSign(ctx, sig, &n, reinterpret_cast<const unsigned char*>(message.data()), message.size()) == 1;
  EVP_MD_CTX_free(ctx);
  if (!ok) throw std::runtime_error("Ed25519 signing failed");
  return std::string(reinterpret_cast<char*>(sig), n);
}

bool ed25519_key::verify(std::string_view message, std::string_view signature) const {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  bool ok = ctx && EVP_DigestVerifyInit(ctx, nullptr, nullptr, nullptr, key_->p) == 1 &&
            EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
                             reinterpret_cast<const unsigned char*>(message.data()), message.size()) == 1;
  EVP_MD_CTX_free(ctx);
  return ok;
}

namespace {
std::string pem_of(EVP_PKEY* p, bool private_key) {
  BIO* bio = BIO_new(BIO_s_mem());
  if (!bio) throw std::runtime_error("out of memory");
  int ok = private_key ? PEM_write_bio_PrivateKey(bio, p, nullptr, nullptr, 0, nullptr, nullptr)
                       : PEM_write_bio_PUBKEY(bio, p);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(n));
  BIO_free(bio);
  if (ok != 1) throw std::runtime_error("cannot write the key as PEM");
  return out;
}
}  // namespace

std::string ed25519_key::private_pem() const {
  if (!has_private_) throw std::runtime_error("a public key has no private half");
  return pem_of(key_->p, true);
}

std::string ed25519_key::public_pem() const { return pem_of(key_->p, false); }

std::string ed25519_key::key_id() const {
  unsigned char raw[32];
  size_t n = sizeof raw;
  if (EVP_PKEY_get_raw_public_key(key_->p, raw, &n) != 1) throw std::runtime_error("no Ed25519 public key");
  return sha256_hex(std::string_view(reinterpret_cast<char*>(raw), n));
}

// --- checkpoints ---

std::string checkpoint_statement(int64_t seq, std::string_view head, int64_t at) {
  return "sealgate-audit-checkpoint v1 seq=" + std::to_string(seq) + " head=" + std::string(head) +
         " at=" + std::to_string(at);
}

std::string witness_line(const checkpoint& c) {
  return c.statement + " key=" + c.key_id + " sig=" + c.signature;
}

std::optional<checkpoint> parse_witness_line(std::string_view line) {
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  auto key_at = line.find(" key=");
  auto sig_at = line.find(" sig=");
  if (key_at == std::string_view::npos || sig_at == std::string_view::npos || sig_at < key_at) return std::nullopt;
  checkpoint c;
  c.statement = std::string(line.substr(0, key_at));
  c.key_id = std::string(line.substr(key_at + 5, sig_at - key_at - 5));
  c.signature = std::string(line.substr(sig_at + 5));
  // The statement's own fields, which must read back to the same statement.
  long long seq = 0, at = 0;
  char head[65] = {};
  if (std::sscanf(c.statement.c_str(), "sealgate-audit-checkpoint v1 seq=%lld head=%64[0-9a-f] at=%lld", &seq, head,
                  &at) != 3)
    return std::nullopt;
  c.seq = seq;
  c.head = head;
  c.at = at;
  if (checkpoint_statement(c.seq, c.head, c.at) != c.statement) return std::nullopt;
  return c;
}

// --- verification ---

namespace {

struct chain_row {
  int64_t seq = 0;
  std::string entry, prev, hash;
  lookup_columns columns;               // as stored beside the entry
  std::optional<entry_fields> fields;   // the entry read; nullopt when it is not ours
  bool content_ok() const { return link_hash(prev, entry) == hash; }
};

// The lookup columns that do not say what the entry says.
std::vector<std::string_view> columns_unlike_entry(const chain_row& r) {
  auto expected = lookup_columns_of(*r.fields);
  std::vector<std::string_view> out;
  if (r.columns.queue_id != expected.queue_id) out.push_back("queue_id");
  if (r.columns.kind != expected.kind) out.push_back("kind");
  if (r.columns.at != expected.at) out.push_back("at");
  if (r.columns.idx != expected.idx) out.push_back("idx");
  if (r.columns.attempt != expected.attempt) out.push_back("attempt");
  return out;
}

// Reads the chain in order with one row of lookahead.
class chain_reader {
 public:
  chain_reader(sql::connection* db, int64_t from)
      : rows_(db,
              "SELECT seq, queue_id, kind, at, idx, attempt, entry, prev, hash"
              " FROM audit_events WHERE seq >= :from ORDER BY seq") {
    rows_.bind("from", from);
    advance();
  }
  const chain_row* peek() const { return next_ ? &*next_ : nullptr; }
  std::optional<chain_row> take() {
    auto r = std::move(next_);
    advance();
    return r;
  }

 private:
  void advance() {
    next_.reset();
    if (done_ || !rows_.next_row()) {
      done_ = true;
      return;
    }
    chain_row r;
    r.seq = rows_.integer("seq");
    r.columns = {rows_.text("queue_id"), rows_.text("kind"), rows_.optional_integer("at"),
                 rows_.optional_integer("idx"), rows_.optional_integer("attempt")};
    r.entry = rows_.blob("entry");
    r.prev = rows_.text("prev");
    r.hash = rows_.text("hash");
    r.fields = entry_fields::parse(r.entry);
    next_ = std::move(r);
  }
  sql::statement rows_;
  std::optional<chain_row> next_;
  bool done_ = false;
};

}  // namespace

namespace {

// The detail columns an attempt entry carries under the same names (absent
// when the attempt did not know them, NULL in the row).
constexpr const char* detail_columns[] = {"method",      "rule",       "policy_sha256", "mx_host",
                                          "mx_address",  "tls_protocol", "tls_cipher",  "certificate",
                                          "reply",       "classes",    "key_fingerprint"};

// The rows of the record against their entries. A row is as trustworthy as
// the entry it matches: the chain protects the entries, this ties the rows
// (which reports and the evidence show) to them. Entries are found by their
// lookup columns and read here, in C++ (entry_fields), not with SQL's JSON
// functions.
void verify_records(sql::connection* db, const verify_options& o, int64_t log_start, verify_report& report) {
  auto problem = [&](int64_t seq, std::string what) { report.problems.push_back({seq, std::move(what)}); };
  auto entry_of = [](const sql::statement& q, std::string_view column) {
    return entry_fields::parse(q.blob(column)).value_or(entry_fields{});
  };
  const std::string only = o.queue_id.empty() ? "" : " AND m.queue_id = :queue_id";
  auto bind = [&](sql::statement& q) {
    q.bind("since", o.since);
    if (!o.queue_id.empty()) q.bind("queue_id", o.queue_id);
  };
  // Messages: each row equals its "accepted" entry (the Message-ID read
  // later: its first "message-id" entry).
  {
    static constexpr const char* fields[] = {"listener", "client_address", "helo", "auth_user", "relay_class",
                                             "tls_protocol", "tls_cipher", "sender"};
    std::string sql = "SELECT m.queue_id, m.received_at, m.size, m.recipients, m.message_id, e.seq AS seq,"
                      " e.entry AS entry, (SELECT x.entry FROM audit_events x WHERE x.queue_id = m.queue_id"
                      "   AND x.kind = 'message-id' ORDER BY x.seq LIMIT 1) AS message_id_entry";
    for (const char* f : fields) sql += std::string(", m.") + f;
    sql += " FROM messages m LEFT JOIN audit_events e ON e.queue_id = m.queue_id AND e.kind = 'accepted'"
           " WHERE m.received_at >= :since" + only;
    sql::statement q(db, sql);
    bind(q);
    while (q.next_row()) {
      std::string id = q.text("queue_id");
      if (q.is_null("seq")) {
        if (q.integer("received_at") < log_start) ++report.rows_before_log;
        else problem(0, "inserted: the messages row of " + id + " has no audit entry");
        continue;
      }
      ++report.rows_checked;
      int64_t seq = q.integer("seq");
      auto e = entry_of(q, "entry");
      std::string message_id = e.has("message_id") ? e.text("message_id") : entry_of(q, "message_id_entry").text("message_id");
      std::vector<std::string> changed;
      for (const char* f : fields)
        if (!same_text(q.text(f), e.text(f))) changed.push_back(f);
      if (q.integer("received_at") != e.integer("at").value_or(0)) changed.push_back("received_at");
      if (q.integer("size") != e.integer("size").value_or(0)) changed.push_back("size");
      if (q.integer("recipients") != static_cast<int64_t>(e.array_size("recipients").value_or(0)))
        changed.push_back("recipients");
      if (!q.is_null("message_id") && !same_text(q.text("message_id"), message_id)) changed.push_back("message_id");
      for (const auto& c : changed)
        problem(seq, "altered: the messages row of " + id + " says another " + c + " than its audit entry " +
                         std::to_string(seq));
    }
  }
  // Attempts: each row equals the entry that names it.
  {
    const std::string row_id = "a." + std::string(schema::attempt_id);
    std::string sql = "SELECT " + row_id + " AS row_id, a.queue_id, a.idx, a.at, a.outcome, e.seq AS seq,"
                      " e.entry AS entry, m.received_at";
    for (const char* c : detail_columns) sql += std::string(", a.") + c;
    sql += " FROM attempts a JOIN messages m ON m.queue_id = a.queue_id"
           " LEFT JOIN audit_events e ON e.queue_id = a.queue_id AND e.attempt = " + row_id +
           " WHERE m.received_at >= :since" + only;
    sql::statement q(db, sql);
    bind(q);
    while (q.next_row()) {
      std::string where = "the attempts row " + std::to_string(q.integer("row_id")) + " of " + q.text("queue_id");
      if (q.is_null("seq")) {
        if (q.integer("received_at") < log_start) ++report.rows_before_log;
        else problem(0, "inserted: " + where + " has no audit entry");
        continue;
      }
      ++report.rows_checked;
      int64_t seq = q.integer("seq");
      auto e = entry_of(q, "entry");
      std::vector<std::string> changed;
      for (const char* c : detail_columns)
        if (!same_text(q.text(c), e.text(c))) changed.push_back(c);
      if (q.text("outcome") != e.text("kind")) changed.push_back("outcome");
      if (q.integer("at") != e.integer("at").value_or(0)) changed.push_back("at");
      if (q.integer("idx") != e.integer("idx").value_or(0)) changed.push_back("idx");
      for (const auto& c : changed)
        problem(seq, "altered: " + where + " says another " + c + " than its audit entry " + std::to_string(seq));
    }
  }
  // Recipients: the state the entries leave behind (the newest entry's kind,
  // and of each detail the newest entry that knew it), folded in seq order.
  {
    struct recipient {
      std::string queue_id, status;
      int64_t idx = 0, received_at = 0;
      std::vector<std::string> row;  // detail_columns, as the row says them
      int64_t seq = 0;               // the newest entry; 0 for none
      std::string entry_status;
      std::vector<std::string> entries;  // detail_columns, as the entries leave them
    };
    auto check = [&](const recipient& r) {
      std::string where = "the recipients row " + r.queue_id + " #" + std::to_string(r.idx);
      if (!r.seq) {
        // Nothing happened to it yet: it must still say so.
        if (r.status != "queued" && r.received_at >= log_start)
          problem(0, "altered: " + where + " says " + r.status + " but no audit entry says anything happened");
        return;
      }
      ++report.rows_checked;
      std::vector<std::string> changed;
      if (r.status != r.entry_status) changed.push_back("status");
      for (size_t i = 0; i < std::size(detail_columns); ++i)
        if (!same_text(r.row[i], r.entries[i])) changed.push_back(detail_columns[i]);
      for (const auto& c : changed)
        problem(r.seq, "altered: " + where + " says another " + c + " than its audit entries (the newest is " +
                           std::to_string(r.seq) + ")");
    };
    std::string sql = "SELECT r.queue_id, r.idx, r.status, m.received_at, e.seq AS seq, e.entry AS entry";
    for (const char* c : detail_columns) sql += std::string(", r.") + c;
    sql += " FROM recipients r JOIN messages m ON m.queue_id = r.queue_id"
           " LEFT JOIN audit_events e ON e.queue_id = r.queue_id AND e.idx = r.idx"
           " WHERE m.received_at >= :since" + only + " ORDER BY r.queue_id, r.idx, e.seq";
    sql::statement q(db, sql);
    bind(q);
    std::optional<recipient> current;
    while (q.next_row()) {
      std::string queue_id = q.text("queue_id");
      int64_t idx = q.integer("idx");
      if (!current || current->queue_id != queue_id || current->idx != idx) {
        if (current) check(*current);
        current = recipient{queue_id, q.text("status"), idx, q.integer("received_at"), {}, 0, {},
                            std::vector<std::string>(std::size(detail_columns))};
        for (const char* c : detail_columns) current->row.push_back(q.text(c));
      }
      if (q.is_null("seq")) continue;
      auto e = entry_of(q, "entry");
      current->seq = q.integer("seq");
      current->entry_status = e.text("kind");
      for (size_t i = 0; i < std::size(detail_columns); ++i)
        if (e.has(detail_columns[i])) current->entries[i] = e.text(detail_columns[i]);
    }
    if (current) check(*current);
  }
}

}  // namespace

verify_report verify_chain(const sql::location& database, const ed25519_key& key,
                           const verify_options& options) {
  auto db = open_record_read_only(database);
  verify_report report;
  auto problem = [&](int64_t seq, std::string what) { report.problems.push_back({seq, std::move(what)}); };

  // The checkpoints: each must be signed by this key over its own fields.
  std::vector<checkpoint> valid;
  {
    sql::statement q(db.get(), select_statement(schema::audit_checkpoints, "ORDER BY seq, id"));
    const std::string our_key = key.key_id();
    while (q.next_row()) {
      checkpoint c{q.integer("id"), q.integer("seq"), q.text("head"), q.integer("at"),
                   q.text("key_id"), q.text("statement"), q.text("signature")};
      bool decoded = false;
      std::string sig = base64_decode(c.signature, decoded);
      std::string when = "checkpoint of " + time_text(c.at);
      if (c.statement != checkpoint_statement(c.seq, c.head, c.at))
        problem(c.seq, "checkpoint altered: the " + when + " names entry " + std::to_string(c.seq) +
                           " but its signed statement says otherwise");
      else if (c.key_id != our_key)
        problem(c.seq, "checkpoint: the " + when + " is signed by another key (" + c.key_id.substr(0, 16) + "...)");
      else if (!decoded || !key.verify(c.statement, sig))
        problem(c.seq, "checkpoint forged: the signature of the " + when + " does not verify");
      else
        valid.push_back(std::move(c));
    }
  }
  std::multimap<int64_t, const checkpoint*> by_seq;
  for (const auto& c : valid) by_seq.emplace(c.seq, &c);

  int64_t first = 0, last = 0;
  {
    sql::statement q(db.get(), "SELECT MIN(seq) AS first, MAX(seq) AS last FROM audit_events");
    if (q.next_row()) {
      first = q.optional_integer("first").value_or(0);
      last = q.optional_integer("last").value_or(0);
    }
  }
  if (first == 0) {
    if (!valid.empty()) problem(valid.back().seq, "deleted: the chain is empty but checkpoints cover entries");
    return report;
  }

  // Where to start: the first entry, linked to nothing (seq 1) or to the
  // checkpoint a purge left; or, for part of the chain, a valid checkpoint.
  std::string expected_prev(genesis);
  int64_t start = first;
  bool anchored = false;
  if (first > 1) {
    report.purged_up_to = first - 1;
    auto anchor = by_seq.find(first - 1);
    if (anchor == by_seq.end()) {
      problem(first, "deleted: entries 1 to " + std::to_string(first - 1) +
                         " are missing and no signed checkpoint anchors the rest (a purge leaves one)");
      expected_prev = "";
    } else {
      expected_prev = anchor->second->head;
    }
  }
  const checkpoint* start_anchor = nullptr;
  for (const auto& c : valid) {
    if (c.seq < first - 1 || c.seq >= last) continue;
    bool before_since = options.since && c.at <= options.since;
    bool before_entry = options.from_seq && c.seq < options.from_seq;
    if (before_since || before_entry) start_anchor = &c;
  }
  if (start_anchor && start_anchor->seq + 1 > start) {
    start = start_anchor->seq + 1;
    expected_prev = start_anchor->head;
    anchored = true;
    report.last_signed = *start_anchor;
  }
  int64_t stop = 0;  // the entry to stop after; 0: the head
  if (options.to_seq)
    for (const auto& c : valid)
      if (c.seq >= options.to_seq && (!stop || c.seq < stop)) stop = c.seq;

  chain_reader reader(db.get(), start);
  std::string before_expected;  // the hash of the entry before the last good one
  int64_t last_seq = start - 1;
  bool purge_recorded = false;
  std::vector<finding> column_problems;
  while (auto r = reader.take()) {
    const chain_row* next = reader.peek();
    bool content_ok = r->content_ok();
    bool link_ok = expected_prev.empty() || r->prev == expected_prev;
    if (!report.entries) report.first_seq = r->seq;
    ++report.entries;
    report.last_seq = r->seq;
    if ((!content_ok || !link_ok) && next && !expected_prev.empty() && next->prev == expected_prev &&
        next->content_ok()) {
      // The next entry links to the one before this: this one was put in.
      problem(r->seq, "inserted: entry " + std::to_string(r->seq) + " is not part of the chain (entry " +
                          std::to_string(next->seq) + " links past it)");
      last_seq = r->seq;  // its number is taken; the links skip it
      continue;
    }
    if (!content_ok) {
      problem(r->seq, "altered: the content of entry " + std::to_string(r->seq) + " does not match its hash");
    } else if (!link_ok) {
      if (!before_expected.empty() && r->prev == before_expected)
        problem(last_seq, "inserted: entry " + std::to_string(last_seq) + " is not part of the chain (entry " +
                              std::to_string(r->seq) + " links past it)");
      else if (r->seq == last_seq + 1)
        problem(last_seq, "altered: entry " + std::to_string(last_seq) + " was changed and its hash recomputed (entry " +
                              std::to_string(r->seq) + " no longer links to it)");
      else
        problem(r->seq, "deleted: entries " + std::to_string(last_seq + 1) + " to " + std::to_string(r->seq - 1) +
                            " are missing (entry " + std::to_string(r->seq) + " links to an entry that is gone)");
    } else if (r->seq != last_seq + 1) {
      problem(r->seq, "renumbered: the sequence jumps from " + std::to_string(last_seq) + " to " +
                          std::to_string(r->seq) + " while the links hold");
    }
    // The lookup columns are not hashed: each must say what its entry says.
    // Named after what the links say (a broken link says more).
    if (!r->fields) {
      if (content_ok)
        column_problems.push_back(
            {r->seq, "altered: entry " + std::to_string(r->seq) + " is not an event as sealgate writes them"});
    } else {
      for (auto column : columns_unlike_entry(*r))
        column_problems.push_back({r->seq, "altered: the " + std::string(column) + " column of entry " +
                                               std::to_string(r->seq) + " does not match the entry"});
      if (r->fields->text("kind") == "purged" && r->fields->integer("up_to").value_or(0) == report.purged_up_to)
        purge_recorded = true;
    }
    auto [lo, hi] = by_seq.equal_range(r->seq);
    for (auto it = lo; it != hi; ++it) {
      if (it->second->head != r->hash) {
        problem(r->seq, "rewritten: the chain up to entry " + std::to_string(r->seq) + " does not match the checkpoint of " +
                            time_text(it->second->at) + " (entries before it were changed and rehashed)");
      } else {
        ++report.checkpoints;
        report.last_signed = *it->second;
      }
    }
    before_expected = expected_prev;
    expected_prev = r->hash;
    last_seq = r->seq;
    if (stop && r->seq >= stop) break;
  }
  report.problems.insert(report.problems.end(), column_problems.begin(), column_problems.end());
  if (!stop) {
    for (const auto& c : valid)
      if (c.seq > last)
        problem(c.seq, "deleted: the checkpoint of " + time_text(c.at) + " covers entry " + std::to_string(c.seq) +
                           " but the chain ends at " + std::to_string(last));
    report.unsigned_entries = report.last_signed ? last - std::max(report.last_signed->seq, start - 1) : report.entries;
  }
  if (options.check_records) {
    // Rows of messages received before the first entry there is cannot be
    // compared: a record older than the audit log (or than a purge).
    // From the entry, which is hashed, not from its at column.
    int64_t log_start = 0;
    sql::statement q(db.get(), "SELECT entry FROM audit_events ORDER BY seq LIMIT 1");
    while (q.next_row())
      if (auto first_entry = entry_fields::parse(q.blob("entry"))) log_start = first_entry->integer("at").value_or(0);
    verify_records(db.get(), options, log_start, report);
  }
  if (report.purged_up_to && !anchored && !purge_recorded && start == first)
    problem(first, "deleted: entries 1 to " + std::to_string(first - 1) + " are gone and no purge of them is recorded");
  for (const auto& w : options.witness) {
    if (w.seq < report.purged_up_to) continue;  // purged since, with its checkpoint
    bool found = false;
    for (const auto& c : valid)
      if (c.statement == w.statement && c.signature == w.signature) found = true;
    if (found) {
      ++report.witnessed;
      continue;
    }
    bool decoded = false;
    std::string sig = base64_decode(w.signature, decoded);
    if (!decoded || !key.verify(w.statement, sig))
      problem(w.seq, "witness: a line for entry " + std::to_string(w.seq) + " does not verify with the key");
    else
      problem(w.seq, "deleted: the witness holds a checkpoint of " + time_text(w.at) + " (entry " +
                         std::to_string(w.seq) + ") that the database does not");
  }
  return report;
}

}  // namespace sealgate::gateway::audit
