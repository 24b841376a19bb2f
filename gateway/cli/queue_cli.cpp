// The queue and report commands; see queue_cli.hpp.
#include "gateway/cli/queue_cli.hpp"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <iomanip>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>

#include "gateway/config/config.hpp"
#include "gateway/daemon/control.hpp"
#include "gateway/record/database.hpp"
#include "gateway/spool/queue_state.hpp"
#include "gateway/cli/cli_args.hpp"
#include "gateway/cli/cli_text.hpp"

namespace sealgate::gateway {

const char* const queue_usage_lines =
    "  queue list --config FILE [--json]      messages waiting, with each recipient's state and last reply\n"
    "  queue show --config FILE ID [--json]   one message: envelope, recipients and every attempt\n"
    "  queue flush --config FILE [ID]         ask the running gateway to try again now\n"
    "  queue delete --config FILE ID          remove a message; its waiting recipients are recorded as deleted\n"
    "  report --config FILE [--since T] [--by method|recipient-domain|sender|day] [--format table|csv|json]\n"
    "  report --config FILE --message ID [--format table|json]\n"
    "                               delivery counts per method and status, or one message's story\n";

namespace {

struct usage_error {
  std::string what;
};

struct options {
  std::string config_file;
  std::vector<std::string> positional;
  bool json = false;
  std::string since, by = "method", format = "table", message;
};

options parse(const std::vector<std::string>& args, bool report) {
  cli_args a;
  try {
    a = report ? parse_cli(args, 0, {.values = {"--since", "--by", "--format", "--message"}, .flags = {"--json"}})
               : parse_cli(args, 0, {.values = {}, .flags = {"--json"}});
  } catch (const cli_usage_error& e) {
    throw usage_error{e.what()};
  }
  options o;
  o.config_file = a.value("--config");
  o.positional = a.positional;
  o.json = a.has("--json");
  o.since = a.value("--since");
  o.by = a.value("--by", o.by);
  o.format = o.json ? "json" : a.value("--format", o.format);
  o.message = a.value("--message");
  return o;
}

int usage(const std::string& problem) {
  std::cerr << "sealgate: " << problem << "\nusage:\n" << queue_usage_lines;
  return 2;
}

std::string time_text(int64_t t) {
  if (t <= 0) return "-";
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string state_text(const rcpt_status& s) {
  if (s.state == rcpt_state::pending) {
    if (s.next_try == std::numeric_limits<int64_t>::max()) return "held";
    return s.attempts == 0 ? "queued" : "deferred";
  }
  return std::string(to_string(s.state));
}

std::string recipient_json(const std::string& address, const rcpt_status& s) {
  std::ostringstream o;
  o << "{\"address\": " << json_string(address) << ", \"state\": " << json_string(state_text(s))
    << ", \"attempts\": " << s.attempts;
  if (s.state == rcpt_state::pending && s.next_try > 0 && s.next_try != std::numeric_limits<int64_t>::max())
    o << ", \"next_try\": " << json_string(time_text(s.next_try));
  o << ", \"method\": " << json_string(s.method) << ", \"last_reply\": " << json_string(s.detail) << "}";
  return o.str();
}

int cmd_list(const config& cfg, const options& o) {
  auto ids = list_queue(cfg.spool);
  std::ostringstream out;
  size_t messages = 0, recipients = 0;
  uint64_t bytes = 0;
  if (o.json) out << "{\"messages\": [";
  for (const auto& id : ids) {
    auto m = load_queued(cfg.spool, id);
    if (!m) continue;  // delivered meanwhile
    if (o.json && messages) out << ", ";
    ++messages;
    bytes += m->envelope.content_size;
    const auto& e = m->envelope;
    if (o.json) {
      out << "{\"id\": " << json_string(id) << ", \"size\": " << e.content_size << ", \"arrival\": "
          << json_string(time_text(e.received)) << ", \"sender\": " << json_string(e.sender) << ", \"recipients\": [";
    } else {
      out << std::left << std::setw(18) << id << std::right << std::setw(9) << e.content_size << "  "
          << time_text(e.received) << "  <" << e.sender << ">\n";
    }
    bool first = true;
    for (size_t i = 0; i < e.recipients.size(); ++i) {
      const auto& s = m->status[i];
      if (is_final(s.state)) continue;
      ++recipients;
      if (o.json) {
        out << (first ? "" : ", ") << recipient_json(e.recipients[i].recipient, s);
      } else {
        out << "    <" << e.recipients[i].recipient << "> " << state_text(s);
        if (s.attempts) out << ", " << s.attempts << (s.attempts == 1 ? " attempt" : " attempts");
        if (s.state == rcpt_state::pending && s.next_try > 0 && s.next_try != std::numeric_limits<int64_t>::max())
          out << ", next " << time_text(s.next_try);
        if (!s.detail.empty()) out << ": " << s.detail;
        out << "\n";
      }
      first = false;
    }
    if (o.json) out << "]}";
  }
  if (o.json)
    out << "], \"total\": {\"messages\": " << messages << ", \"recipients\": " << recipients << ", \"bytes\": " << bytes
        << "}}\n";
  else if (messages == 0)
    out << "Mail queue is empty\n";
  else
    out << "-- " << messages << (messages == 1 ? " message, " : " messages, ") << recipients
        << (recipients == 1 ? " recipient" : " recipients") << " waiting, " << (bytes + 1023) / 1024 << " KiB\n";
  std::cout << out.str();
  return 0;
}

// Rows of a query with text parameters; NULL columns as "".
std::vector<std::vector<std::string>> query(sqlite3* db, const std::string& sql, const std::vector<std::string>& params) {
  std::vector<std::vector<std::string>> out;
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) != SQLITE_OK)
    throw std::runtime_error(std::string("database: ") + sqlite3_errmsg(db));
  for (size_t i = 0; i < params.size(); ++i)
    sqlite3_bind_text(st, static_cast<int>(i + 1), params[i].c_str(), -1, SQLITE_TRANSIENT);
  while (sqlite3_step(st) == SQLITE_ROW) {
    std::vector<std::string> row;
    for (int c = 0; c < sqlite3_column_count(st); ++c) {
      auto* t = sqlite3_column_text(st, c);
      row.push_back(t ? reinterpret_cast<const char*>(t) : "");
    }
    out.push_back(std::move(row));
  }
  sqlite3_finalize(st);
  return out;
}

struct db_reader {
  sqlite3* db = nullptr;
  explicit db_reader(const std::filesystem::path& file) {
    if (sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
      std::string why = db ? sqlite3_errmsg(db) : "cannot open";
      sqlite3_close(db);
      throw std::runtime_error(file.string() + ": " + why);
    }
    sqlite3_busy_timeout(db, 5000);
  }
  ~db_reader() { sqlite3_close(db); }
};

const char* const attempt_columns[] = {"at", "outcome", "method", "rule", "policy_sha256", "mx_host", "mx_address",
                                       "tls_protocol", "tls_cipher", "certificate", "reply"};

std::string attempts_sql() {
  std::string sql = "SELECT idx";
  for (const char* c : attempt_columns) sql += std::string(", ") + c;
  return sql + " FROM attempts WHERE queue_id=? ORDER BY at, rowid";
}

// One message's story: from the spool when it is still there, and from the
// database for everything that happened to it.
int show_message(const config& cfg, const std::string& id, bool json) {
  auto m = load_queued(cfg.spool, id);
  std::vector<std::vector<std::string>> message_row, recipient_rows, attempt_rows;
  if (std::filesystem::exists(cfg.database)) {
    db_reader r(cfg.database);
    message_row = query(r.db,
                        "SELECT received_at, listener, client_address, helo, auth_user, tls_protocol, tls_cipher, sender,"
                        " recipients, size, message_id FROM messages WHERE queue_id=?",
                        {id});
    recipient_rows = query(r.db,
                           "SELECT idx, address, status, method, rule, policy_sha256, mx_host, mx_address, tls_protocol,"
                           " tls_cipher, certificate, attempts, reply, final_at FROM recipients WHERE queue_id=? ORDER BY idx",
                           {id});
    attempt_rows = query(r.db, attempts_sql(), {id});
  }
  if (!m && message_row.empty()) {
    std::cerr << "sealgate: " << id << ": no such message in the queue or the record\n";
    return 1;
  }
  std::ostringstream o;
  auto field = [&](const char* name, const std::string& value, bool last = false) {
    if (json) o << json_string(name) << ": " << json_string(value) << (last ? "" : ", ");
    else if (!value.empty()) o << std::left << std::setw(16) << (std::string(name) + ":") << value << "\n";
  };
  if (json) o << "{";
  field("id", id);
  field("in_queue", m ? "yes" : "no");
  if (!message_row.empty()) {
    const auto& r = message_row[0];
    field("received", time_text(std::stoll(r[0])));
    field("listener", r[1]);
    field("client", r[2]);
    field("helo", r[3]);
    field("auth_user", r[4]);
    field("tls", r[5].empty() ? "" : r[5] + " " + r[6]);
    field("sender", r[7]);
    field("size", r[9]);
    field("message_id", r[10]);
  } else if (m) {
    field("received", time_text(m->envelope.received));
    field("sender", m->envelope.sender);
  }
  if (json) o << "\"recipients\": [";
  else o << "recipients:\n";
  for (size_t i = 0; i < recipient_rows.size(); ++i) {
    const auto& r = recipient_rows[i];
    std::string status = r[2];
    if (m && static_cast<size_t>(std::stoul(r[0])) < m->status.size() && !is_final(m->status[std::stoul(r[0])].state))
      status = state_text(m->status[std::stoul(r[0])]);
    if (json) {
      o << (i ? ", " : "") << "{\"address\": " << json_string(r[1]) << ", \"status\": " << json_string(status)
        << ", \"method\": " << json_string(r[3]) << ", \"rule\": " << json_string(r[4])
        << ", \"policy_sha256\": " << json_string(r[5]) << ", \"mx_host\": " << json_string(r[6])
        << ", \"mx_address\": " << json_string(r[7]) << ", \"tls_protocol\": " << json_string(r[8])
        << ", \"tls_cipher\": " << json_string(r[9]) << ", \"certificate\": " << json_string(r[10])
        << ", \"attempts\": " << (r[11].empty() ? "0" : r[11]) << ", \"reply\": " << json_string(r[12])
        << ", \"final_at\": " << json_string(r[13].empty() ? "" : time_text(std::stoll(r[13]))) << "}";
    } else {
      o << "  <" << r[1] << "> " << status;
      if (!r[3].empty()) o << " method=" << r[3];
      if (!r[4].empty()) o << " rule=" << r[4];
      if (!r[6].empty()) o << " relay=" << r[6] << "[" << r[7] << "]";
      if (!r[8].empty()) o << " tls=" << r[8] << " cipher=" << r[9];
      if (!r[10].empty()) o << " certificate=" << r[10];
      if (!r[12].empty()) o << " (" << r[12] << ")";
      o << "\n";
    }
  }
  if (json) o << "], \"attempts\": [";
  else if (!attempt_rows.empty()) o << "attempts:\n";
  for (size_t i = 0; i < attempt_rows.size(); ++i) {
    const auto& r = attempt_rows[i];
    size_t idx = std::stoul(r[0]);
    std::string address = idx < recipient_rows.size() ? recipient_rows[idx][1] : "";
    if (json) {
      o << (i ? ", " : "") << "{\"recipient\": " << json_string(address);
      for (size_t c = 0; c < std::size(attempt_columns); ++c) {
        std::string v = c == 0 ? time_text(std::stoll(r[1])) : r[c + 1];
        o << ", " << json_string(attempt_columns[c]) << ": " << json_string(v);
      }
      o << "}";
    } else {
      o << "  " << time_text(std::stoll(r[1])) << " <" << address << "> " << r[2];
      if (!r[3].empty()) o << " method=" << r[3];
      if (!r[6].empty()) o << " relay=" << r[6] << "[" << r[7] << "]";
      if (!r[8].empty()) o << " tls=" << r[8];
      if (!r[10].empty()) o << " certificate=" << r[10];
      if (!r[11].empty()) o << " (" << r[11] << ")";
      o << "\n";
    }
  }
  if (json) o << "]}\n";
  std::cout << o.str();
  return 0;
}

int cmd_delete(const config& cfg, const std::string& id) {
  auto path = queue_file(cfg.spool, id);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    std::cerr << "sealgate: " << id << ": no such message in the queue\n";
    return 1;
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    std::cerr << "sealgate: " << id << ": being delivered right now; try again in a moment\n";
    return 1;
  }
  // Read under the lock: a pass that ended just before may have delivered
  // recipients (or removed the message) since the file was opened.
  auto m = load_queued(cfg.spool, id);
  if (!m) {
    ::close(fd);
    std::cerr << "sealgate: " << id << ": no such message in the queue\n";
    return 1;
  }
  int64_t now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  std::vector<std::pair<size_t, rcpt_status>> changes;
  std::vector<attempt_row> rows;
  for (size_t i = 0; i < m->status.size(); ++i) {
    if (is_final(m->status[i].state)) continue;
    rcpt_status s = m->status[i];
    s.state = rcpt_state::deleted;
    s.time = now;
    s.detail = "deleted by an operator";
    changes.emplace_back(i, s);
    attempt_row r;
    r.queue_id = id;
    r.index = i;
    r.address = m->envelope.recipients[i].recipient;
    r.at = now;
    r.outcome = "deleted";
    r.attempted = false;
    r.reply = s.detail;
    rows.push_back(r);
  }
  // Status lines first: if the record cannot be written, the message is
  // still final in the spool and the gateway records it at its next pass.
  append_status(status_file(cfg.spool, id), changes);
  try {
    database db(cfg.database);
    db.record_attempts(rows);
  } catch (const std::exception& e) {
    std::cerr << "sealgate: " << e.what() << "\n";
    ::close(fd);
    return 1;
  }
  remove_queued(cfg.spool, id);
  ::close(fd);
  std::cout << id << ": deleted (" << changes.size() << (changes.size() == 1 ? " recipient" : " recipients")
            << " recorded as deleted)\n";
  return 0;
}

int cmd_flush(const config& cfg, const std::vector<std::string>& ids) {
  std::string command = ids.empty() ? "flush" : "flush " + ids[0];
  std::string reply = control_request(cfg.spool, command);
  if (reply.empty()) {
    std::cerr << "sealgate: the gateway is not running (no answer on " << (cfg.spool / "control").string() << ")\n";
    return 1;
  }
  if (reply != "ok") {
    std::cerr << "sealgate: " << reply << "\n";
    return 1;
  }
  std::cout << (ids.empty() ? "flush requested for every waiting message\n" : "flush requested for " + ids[0] + "\n");
  return 0;
}

bool load(const std::string& file, config& cfg) {
  try {
    cfg = load_config(file);
    return true;
  } catch (const config_error& e) {
    std::cerr << e.what() << "\n";
    return false;
  }
}

// --since: an ISO date or date-time (UTC), or a duration back from now (24h, 7d).
std::optional<int64_t> parse_since(const std::string& s) {
  if (s.empty()) return 0;
  std::tm tm{};
  for (const char* fmt : {"%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"}) {
    tm = {};
    const char* end = strptime(s.c_str(), fmt, &tm);
    if (end && *end == 0) return static_cast<int64_t>(timegm(&tm));
  }
  size_t used = 0;
  long long n = 0;
  try {
    n = std::stoll(s, &used);
  } catch (...) {
    return std::nullopt;
  }
  std::string unit = s.substr(used);
  int64_t factor = unit == "s" ? 1 : unit == "m" ? 60 : unit == "h" ? 3600 : unit == "d" ? 86400 : 0;
  if (!factor || n < 0) return std::nullopt;
  int64_t now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  return now - n * factor;
}

int cmd_report(const config& cfg, const options& o) {
  if (o.format != "table" && o.format != "csv" && o.format != "json")
    return usage("--format must be table, csv or json");
  if (!o.message.empty()) return show_message(cfg, o.message, o.format == "json");
  std::string key;
  if (o.by == "method") key = "COALESCE(r.method, '-')";
  else if (o.by == "recipient-domain") key = "r.domain";
  else if (o.by == "sender") key = "m.sender";
  else if (o.by == "day") key = "date(m.received_at, 'unixepoch')";
  else return usage("--by must be method, recipient-domain, sender or day");
  auto since = parse_since(o.since);
  if (!since) return usage("--since must be a date (2026-11-01), a date-time (2026-11-01T08:00:00) or a duration (24h, 7d)");
  if (!std::filesystem::exists(cfg.database)) {
    std::cerr << "sealgate: " << cfg.database.string() << ": no database yet\n";
    return 1;
  }
  db_reader r(cfg.database);
  // Secured: delivered end to end (pgp, smime), through the portal, or over
  // TLS. Queued counts held recipients too; bounced counts expired ones.
  std::string sql =
      "SELECT " + key +
      ", COUNT(*),"
      " SUM(r.status = 'delivered'),"
      " SUM(r.status = 'delivered' AND (r.method IN ('pgp','smime','portal') OR r.tls_protocol IS NOT NULL)),"
      " SUM(r.status IN ('queued','held')),"
      " SUM(r.status IN ('deferred','method-failed')),"
      " SUM(r.status IN ('bounced','expired')),"
      " SUM(r.status = 'deleted')"
      " FROM recipients r JOIN messages m ON m.queue_id = r.queue_id"
      " WHERE m.received_at >= CAST(? AS INTEGER) GROUP BY 1 ORDER BY 2 DESC, 1";
  auto rows = query(r.db, sql, {std::to_string(*since)});
  long long total = 0;
  for (const auto& row : rows) total += std::stoll(row[1]);
  auto pct = [&](const std::string& n, long long of) {
    std::ostringstream s;
    s << std::fixed << std::setprecision(1) << (of ? 100.0 * static_cast<double>(std::stoll(n)) / static_cast<double>(of) : 0.0);
    return s.str();
  };
  const char* names[] = {"recipients", "delivered", "secured", "queued", "deferred", "bounced", "deleted"};
  std::ostringstream out;
  if (o.format == "json") {
    out << "{\"by\": " << json_string(o.by) << ", \"since\": " << json_string(*since ? time_text(*since) : "")
        << ", \"total\": " << total << ", \"groups\": [";
    for (size_t i = 0; i < rows.size(); ++i) {
      out << (i ? ", " : "") << "{\"key\": " << json_string(rows[i][0]);
      for (size_t c = 0; c < 7; ++c) out << ", " << json_string(names[c]) << ": " << rows[i][c + 1];
      out << ", \"share_percent\": " << pct(rows[i][1], total)
          << ", \"secured_percent\": " << pct(rows[i][3], std::stoll(rows[i][1])) << "}";
    }
    out << "]}\n";
  } else if (o.format == "csv") {
    out << o.by;
    for (const char* n : names) out << "," << n;
    out << ",share_percent,secured_percent\n";
    for (const auto& row : rows) {
      std::string k = row[0];
      if (k.find_first_of(",\"\n") != std::string::npos) {  // RFC 4180 quoting
        std::string q = "\"";
        for (char c : k) q += c == '"' ? std::string("\"\"") : std::string(1, c);
        k = q + "\"";
      }
      out << k;
      for (size_t c = 1; c <= 7; ++c) out << "," << row[c];
      out << "," << pct(row[1], total) << "," << pct(row[3], std::stoll(row[1])) << "\n";
    }
  } else {
    out << std::left << std::setw(28) << o.by << std::right;
    for (const char* n : names) out << std::setw(11) << n;
    out << std::setw(8) << "share" << std::setw(10) << "secured" << "\n";
    long long sums[7] = {};
    for (const auto& row : rows) {
      out << std::left << std::setw(28) << row[0] << std::right;
      for (size_t c = 1; c <= 7; ++c) {
        out << std::setw(11) << row[c];
        sums[c - 1] += std::stoll(row[c]);
      }
      out << std::setw(7) << pct(row[1], total) << "%" << std::setw(9) << pct(row[3], std::stoll(row[1])) << "%\n";
    }
    out << std::left << std::setw(28) << "total" << std::right;
    for (long long s : sums) out << std::setw(11) << s;
    out << std::setw(7) << (total ? "100.0" : "0.0") << "%" << std::setw(9) << pct(std::to_string(sums[2]), total) << "%\n";
  }
  std::cout << out.str();
  return 0;
}

}  // namespace

int run_queue_command(const std::vector<std::string>& args) {
  if (args.empty()) return usage("queue needs list, show, flush or delete");
  try {
    std::vector<std::string> rest(args.begin() + 1, args.end());
    options o = parse(rest, false);
    config cfg;
    if (!load(o.config_file, cfg)) return 1;
    const std::string& sub = args[0];
    if (sub == "list") {
      if (!o.positional.empty()) return usage("queue list takes no arguments");
      return cmd_list(cfg, o);
    }
    if (sub == "show") {
      if (o.positional.size() != 1) return usage("queue show takes one ID");
      return show_message(cfg, o.positional[0], o.json);
    }
    if (sub == "flush") {
      if (o.positional.size() > 1) return usage("queue flush takes at most one ID");
      return cmd_flush(cfg, o.positional);
    }
    if (sub == "delete") {
      if (o.positional.size() != 1) return usage("queue delete takes one ID");
      return cmd_delete(cfg, o.positional[0]);
    }
    return usage("unknown queue command " + sub);
  } catch (const usage_error& e) {
    return usage(e.what);
  } catch (const std::exception& e) {
    std::cerr << "sealgate: " << e.what() << "\n";
    return 1;
  }
}

int run_report_command(const std::vector<std::string>& args) {
  try {
    options o = parse(args, true);
    if (!o.positional.empty()) return usage("report takes no arguments");
    config cfg;
    if (!load(o.config_file, cfg)) return 1;
    return cmd_report(cfg, o);
  } catch (const usage_error& e) {
    return usage(e.what);
  } catch (const std::exception& e) {
    std::cerr << "sealgate: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace sealgate::gateway
