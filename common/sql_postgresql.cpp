// The PostgreSQL engine of sql.hpp, on libpq: one PGconn per sql::connection
// (libpq allows one thread at a time on it), statements prepared once per
// connection with typed parameters, results in binary.
//
// Why typed: an untyped "$1 = 0" is inferred as a 4-byte integer and fails for
// queue ids and times past 2^31, so each parameter is declared as what was
// bound (BIGINT, TEXT, BYTEA); a statement bound with other types is prepared
// again under another name.
#include <libpq-fe.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <map>

#include "common/sql.hpp"
#include "common/sql_engines.hpp"

namespace sealgate::sql {

namespace {

// Type OIDs (pg_type.dat); libpq's headers do not export them.
constexpr Oid bool_oid = 16, bytea_oid = 17, char_oid = 18, name_oid = 19, int8_oid = 20, int2_oid = 21,
              int4_oid = 23, text_oid = 25, oid_oid = 26, varchar_oid = 1043, bpchar_oid = 1042, unknown_oid = 705;

struct clear_result {
  void operator()(PGresult* r) const noexcept { PQclear(r); }
};
using result_ptr = std::unique_ptr<PGresult, clear_result>;

struct finish_connection {
  void operator()(PGconn* c) const noexcept { PQfinish(c); }
};

bool is_lost(const std::string& sqlstate) {
  // Class 08: connection exceptions (08007: the COMMIT's outcome is unknown);
  // 57P01-57P03: the server shut down or is starting.
  return sqlstate.rfind("08", 0) == 0 || sqlstate == "57P01" || sqlstate == "57P02" || sqlstate == "57P03";
}

bool is_retryable(const std::string& sqlstate) {
  // Serialisation failure, deadlock, lock timeout: the same transaction may
  // succeed when run again.
  return sqlstate == "40001" || sqlstate == "40P01" || sqlstate == "55P03";
}

// Each ":name" outside literals, identifiers and comments becomes "$n" (a
// repeated name keeps its number); "::" is a cast, not a parameter.
std::string numbered_parameters(const std::string& sql, std::vector<std::string>& names) {
  std::string out;
  out.reserve(sql.size());
  auto is_name_start = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; };
  auto is_name = [&](char c) { return is_name_start(c) || (c >= '0' && c <= '9'); };
  size_t i = 0;
  while (i < sql.size()) {
    char c = sql[i];
    if (c == '\'' || c == '"') {
      size_t end = i + 1;
      while (end < sql.size()) {
        if (sql[end] == c) {
          if (end + 1 < sql.size() && sql[end + 1] == c) {
            end += 2;  // a doubled quote inside
            continue;
          }
          break;
        }
        ++end;
      }
      end = std::min(end + 1, sql.size());
      out.append(sql, i, end - i);
      i = end;
    } else if (c == '-' && i + 1 < sql.size() && sql[i + 1] == '-') {
      size_t end = sql.find('\n', i);
      if (end == std::string::npos) end = sql.size();
      out.append(sql, i, end - i);
      i = end;
    } else if (c == ':' && i + 1 < sql.size() && sql[i + 1] == ':') {
      out.append("::");
      i += 2;
    } else if (c == ':' && i + 1 < sql.size() && is_name_start(sql[i + 1])) {
      size_t end = i + 1;
      while (end < sql.size() && is_name(sql[end])) ++end;
      std::string name = sql.substr(i + 1, end - i - 1);
      auto it = std::find(names.begin(), names.end(), name);
      if (it == names.end()) it = names.insert(names.end(), name);
      out += "$" + std::to_string(it - names.begin() + 1);
      i = end;
    } else {
      out += c;
      ++i;
    }
  }
  return out;
}

int64_t big_endian(const char* p, int n) {
  uint64_t v = 0;
  for (int k = 0; k < n; ++k) v = (v << 8) | static_cast<unsigned char>(p[k]);
  // Sign-extend the 2- and 4-byte integers.
  if (n < 8 && n > 0 && (static_cast<unsigned char>(p[0]) & 0x80)) v |= ~uint64_t{0} << (8 * n);
  return static_cast<int64_t>(v);
}

class pg_connection;

class pg_statement final : public statement_backend {
 public:
  pg_statement(pg_connection* db, const std::string& sql);
  const std::vector<std::string>& parameters() const override { return names_; }
  void bind_text(size_t i, std::string_view text) override { set(i, text_oid, storable_text(text)); }
  void bind_integer(size_t i, int64_t value) override {
    std::string be(8, '\0');
    auto v = static_cast<uint64_t>(value);
    for (int k = 7; k >= 0; --k, v >>= 8) be[static_cast<size_t>(k)] = static_cast<char>(v & 0xFF);
    set(i, int8_oid, std::move(be));
  }
  void bind_blob(size_t i, std::string_view bytes) override { set(i, bytea_oid, std::string(bytes)); }
  void bind_null(size_t i) override {
    types_[i] = 0;  // the server infers the type of a NULL
    values_[i].reset();
  }
  bool step() override;
  void reset() override {
    executed_ = false;
    result_.reset();
    row_ = 0;
    columns_.clear();
  }
  int64_t changes() const override { return changes_; }
  const std::vector<std::string>& columns() const override { return columns_; }
  bool is_null(size_t c) const override { return PQgetisnull(result_.get(), row_, column(c)) != 0; }
  int64_t integer(size_t c) const override;
  std::string text(size_t c) const override;
  std::string blob(size_t c) const override { return raw(c); }
  std::string sql() const override { return sql_; }

 private:
  void set(size_t i, Oid type, std::string value) {
    types_[i] = type;
    values_[i] = std::move(value);
  }
  static int column(size_t c) { return static_cast<int>(c); }
  std::string raw(size_t c) const {
    const char* v = PQgetvalue(result_.get(), row_, column(c));
    return std::string(v, static_cast<size_t>(PQgetlength(result_.get(), row_, column(c))));
  }
  pg_connection* db_;
  std::string sql_;       // as written, with :names
  std::string numbered_;  // with $n
  std::vector<std::string> names_;
  std::vector<Oid> types_;
  std::vector<std::optional<std::string>> values_;
  result_ptr result_;
  bool executed_ = false;
  int row_ = 0;
  int64_t changes_ = 0;
  std::vector<std::string> columns_;
};

class pg_connection final : public connection {
 public:
  pg_connection(const std::string& conninfo, access how, std::string_view schema)
      : schema_(schema), lock_key_(schema_lock_key(schema_)) {
    // Ours first, the operator's string (expanded from dbname) after it, and
    // the settings sealgate depends on last, so that they win.
    std::string options = "-c search_path=" + schema_ +
                          " -c lock_timeout=30s -c idle_in_transaction_session_timeout=60s"
                          " -c client_min_messages=warning";
    if (how == access::read_only) options += " -c default_transaction_read_only=on";
    const char* keys[] = {"connect_timeout", "application_name", "keepalives", "keepalives_idle",
                          "keepalives_interval", "keepalives_count", "dbname", "options", "client_encoding", nullptr};
    const char* values[] = {"5", "sealgate", "1", "10", "5", "3", conninfo.c_str(), options.c_str(), "UTF8", nullptr};
    conn_.reset(PQconnectdbParams(keys, values, 1));
    if (!conn_ || PQstatus(conn_.get()) != CONNECTION_OK)
      throw error(std::string("database: cannot connect to PostgreSQL: ") + (conn_ ? message() : "out of memory"),
                  "08001", true, false);
    if (how == access::read_write && !schema_exists()) {
      // Two nodes starting at once would both try to create it. Looked up
      // first: a role that may use the schema need not be allowed to create
      // one.
      exec("BEGIN; SELECT pg_advisory_xact_lock(" + std::to_string(lock_key_) + "); CREATE SCHEMA IF NOT EXISTS " +
           quoted(schema_) + "; COMMIT");
    }
  }

  sql::engine engine() const override { return engine::postgresql; }

  void exec(std::string_view sql) override {
    bool ending = sql == "COMMIT" || sql == "ROLLBACK";
    if (ending && lost_in_transaction_) {
      // The server ended it with the connection: nothing to roll back, and a
      // COMMIT cannot have happened.
      lost_in_transaction_ = false;
      begun_ = false;
      if (sql == "COMMIT") throw error("database: the connection to PostgreSQL was lost in a transaction", "08006", true, false);
      return;
    }
    usable();
    result_ptr r(PQexec(conn_.get(), std::string(sql).c_str()));
    if (ending) begun_ = false;
    check(r.get());
  }

  std::unique_ptr<statement_backend> prepare(const std::string& sql) override {
    return std::make_unique<pg_statement>(this, sql);
  }

  void begin(transaction_mode mode) override {
    exec("BEGIN");
    begun_ = true;
    if (mode == transaction_mode::immediate) exec("SELECT pg_advisory_xact_lock(" + std::to_string(lock_key_) + ")");
  }

  bool in_transaction() const override {
    if (lost_in_transaction_) return true;
    auto s = PQtransactionStatus(conn_.get());
    return s == PQTRANS_INTRANS || s == PQTRANS_INERROR || s == PQTRANS_ACTIVE;
  }

  std::string schema() const override { return schema_; }

  // Runs a prepared statement (preparing it first on this connection).
  result_ptr execute(const std::string& numbered, const std::vector<Oid>& types,
                     const std::vector<std::optional<std::string>>& values) {
    usable();
    std::string key = numbered;
    key.push_back('\0');
    for (Oid t : types) key += std::to_string(t) + ",";
    auto it = prepared_.find(key);
    if (it == prepared_.end()) {
      std::string name = "sealgate_" + std::to_string(prepared_.size() + 1);
      result_ptr p(PQprepare(conn_.get(), name.c_str(), numbered.c_str(), static_cast<int>(types.size()), types.data()));
      check(p.get());
      it = prepared_.emplace(key, name).first;
    }
    std::vector<const char*> pointers(values.size());
    std::vector<int> lengths(values.size()), formats(values.size(), 1);
    for (size_t i = 0; i < values.size(); ++i) {
      if (!values[i]) continue;
      // A zero-length value must not be a null pointer: that means NULL.
      pointers[i] = values[i]->empty() ? "" : values[i]->data();
      lengths[i] = static_cast<int>(values[i]->size());
    }
    result_ptr r(PQexecPrepared(conn_.get(), it->second.c_str(), static_cast<int>(values.size()), pointers.data(),
                                lengths.data(), formats.data(), 1));
    check(r.get());
    return r;
  }

 private:
  bool schema_exists() {
    pg_statement q(this, "SELECT 1 AS present FROM pg_namespace WHERE nspname = :schema");
    q.bind_text(0, schema_);
    return q.step();
  }

  std::string message() const {
    std::string m = PQerrorMessage(conn_.get());
    while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
    return m;
  }

  static std::string quoted(const std::string& identifier) {
    std::string q = "\"";
    for (char c : identifier) q += c == '"' ? std::string("\"\"") : std::string(1, c);
    return q + "\"";
  }

  // The transaction advisory lock that serialises this schema's writers:
  // FNV-1a of its name, the same number on every node.
  static int64_t schema_lock_key(const std::string& schema) {
    uint64_t h = 14695981039346656037ULL;
    for (char c : "sealgate schema " + schema) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ULL;
    return static_cast<int64_t>(h);
  }

  // Reconnects a connection the server closed, unless that happened inside a
  // transaction the caller has not ended yet: its next statements must fail
  // rather than run one by one outside it.
  void usable() {
    if (PQstatus(conn_.get()) == CONNECTION_OK) return;
    if (lost_in_transaction_)
      throw error("database: the connection to PostgreSQL was lost in a transaction", "08006", true, false);
    PQreset(conn_.get());
    prepared_.clear();
    if (PQstatus(conn_.get()) != CONNECTION_OK)
      throw error("database: cannot reconnect to PostgreSQL: " + message(), "08001", true, false);
  }

  void check(PGresult* r) {
    auto status = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return;
    std::string sqlstate;
    if (r && PQresultErrorField(r, PG_DIAG_SQLSTATE)) sqlstate = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    bool lost = PQstatus(conn_.get()) != CONNECTION_OK || is_lost(sqlstate);
    if (lost && begun_) {
      lost_in_transaction_ = true;
      begun_ = false;
    }
    std::string why = r && PQresultErrorMessage(r)[0] ? PQresultErrorMessage(r) : message();
    while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
    if (sqlstate.empty() && lost) sqlstate = "08006";
    throw error("database: " + why, sqlstate, lost, is_retryable(sqlstate));
  }

  std::unique_ptr<PGconn, finish_connection> conn_;
  std::string schema_;
  int64_t lock_key_;
  std::map<std::string, std::string> prepared_;  // numbered SQL and types → statement name
  bool begun_ = false;
  bool lost_in_transaction_ = false;
};

pg_statement::pg_statement(pg_connection* db, const std::string& sql) : db_(db), sql_(sql) {
  numbered_ = numbered_parameters(sql, names_);
  types_.assign(names_.size(), 0);
  values_.assign(names_.size(), std::nullopt);
}

bool pg_statement::step() {
  if (!executed_) {
    result_ = db_->execute(numbered_, types_, values_);
    executed_ = true;
    row_ = 0;
    const char* tuples = PQcmdTuples(result_.get());
    changes_ = tuples && *tuples ? std::stoll(tuples) : 0;
    columns_.clear();
    for (int c = 0; c < PQnfields(result_.get()); ++c) columns_.emplace_back(PQfname(result_.get(), c));
    return PQntuples(result_.get()) > 0;
  }
  ++row_;
  return row_ < PQntuples(result_.get());
}

int64_t pg_statement::integer(size_t c) const {
  if (is_null(c)) return 0;
  const char* v = PQgetvalue(result_.get(), row_, column(c));
  int n = PQgetlength(result_.get(), row_, column(c));
  switch (PQftype(result_.get(), column(c))) {
    case int8_oid:
    case int4_oid:
    case int2_oid:
      return big_endian(v, n);
    case oid_oid:
      return static_cast<int64_t>(static_cast<uint64_t>(big_endian(v, n)) & 0xFFFFFFFFu);
    case bool_oid:
      return n > 0 && v[0] != 0;
    case text_oid:
    case varchar_oid:
    case bpchar_oid:
    case name_oid:
    case unknown_oid: {
      // As SQLite reads a number stored as text.
      int64_t out = 0;
      std::from_chars(v, v + n, out);
      return out;
    }
    default:
      throw std::logic_error("database: column " + columns_[c] + " of " + sql_ +
                             " has a type sealgate does not read (write CAST(... AS BIGINT))");
  }
}

std::string pg_statement::text(size_t c) const {
  if (is_null(c)) return "";
  switch (PQftype(result_.get(), column(c))) {
    case int8_oid:
    case int4_oid:
    case int2_oid:
    case oid_oid:
    case bool_oid:
      return std::to_string(integer(c));
    case text_oid:
    case varchar_oid:
    case bpchar_oid:
    case name_oid:
    case char_oid:
    case unknown_oid:
    case bytea_oid:
      return raw(c);
    default:
      throw std::logic_error("database: column " + columns_[c] + " of " + sql_ + " has a type sealgate does not read");
  }
}

}  // namespace

connection_ptr open_postgresql(const std::string& conninfo, access how, std::string_view schema) {
  return std::make_unique<pg_connection>(conninfo, how, schema);
}

}  // namespace sealgate::sql
