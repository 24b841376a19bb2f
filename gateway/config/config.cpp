// YAML configuration loader; see config.hpp. Every problem is collected with
// its position so that an operator fixes the file in one pass.
#include "gateway/config/config.hpp"

#include "common/file_io.hpp"

#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <set>
#include <sstream>

#include "common/yaml_reader.hpp"
#include "gateway/config/intake_config.hpp"

namespace sealgate::gateway {
namespace {

std::string default_hostname() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0 || !buf[0]) return "localhost";
  return buf;
}

// A list of CIDR networks (relay.networks, listeners[].proxy_from,
// portal.trusted_proxies), each refused with its position.
void load_networks(yaml_reader& r, const YAML::Node& nets, const std::string& key, std::vector<ip_network>& out) {
  if (!nets.IsSequence()) {
    r.error(nets.Mark(), key, "must be a list of CIDR networks");
    return;
  }
  for (size_t i = 0; i < nets.size(); ++i) {
    std::string item = key + "[" + std::to_string(i) + "]", v, why;
    if (!r.scalar(nets[i], item, v)) continue;
    if (auto net = ip_network::parse(v, &why)) out.push_back(*net);
    else r.error(nets[i].Mark(), item, "'" + v + "' is not a CIDR network: " + why);
  }
}

// The crypto: section (crypto/options.hpp holds the defaults).
void load_crypto(yaml_reader& r, const YAML::Node& cr, crypto::crypto_options& o) {
  if (!r.check_map(cr, "crypto", {"gnupg_home", "smime_certificates", "smime_ca_file", "pgp_signing_key",
                                  "smime_signing_certificate", "smime_signing_key", "smime_cipher", "rsa_padding",
                                  "subject", "protected_headers", "fold_plus_tag", "sources", "dns_require_secure",
                                  "cache_ttl", "wkd_port", "wkd_ca_file", "wkd_timeout"}))
    return;
  r.path_value(cr, "gnupg_home", "crypto", o.gnupg_home);
  r.path_value(cr, "smime_certificates", "crypto", o.smime_certificates);
  r.path_value(cr, "smime_ca_file", "crypto", o.smime_ca_file);
  r.string_value(cr, "pgp_signing_key", "crypto", o.pgp_signing_key);
  if (auto n = cr["pgp_signing_key"]; n && n.IsScalar()) {
    // A full fingerprint (v4: 40 hex digits, v5: 64): a short key ID can collide.
    const std::string& v = n.Scalar();
    bool hex = std::all_of(v.begin(), v.end(), [](char ch) { return std::isxdigit(static_cast<unsigned char>(ch)); });
    if (!v.empty() && (!hex || (v.size() != 40 && v.size() != 64))) {
      r.error(n.Mark(), "crypto.pgp_signing_key", "must be a full fingerprint (40 or 64 hex digits)");
      o.pgp_signing_key.clear();
    }
  }
  r.path_value(cr, "smime_signing_certificate", "crypto", o.smime_signing_certificate);
  r.path_value(cr, "smime_signing_key", "crypto", o.smime_signing_key);
  if (o.smime_signing_certificate.empty() != o.smime_signing_key.empty())
    r.error(cr.Mark(), "crypto", "smime_signing_certificate and smime_signing_key go together");
  r.enum_value(cr, "smime_cipher", "crypto", o.cipher,
               {{"aes-256-cbc", crypto::smime_cipher::aes_256_cbc}, {"aes-256-gcm", crypto::smime_cipher::aes_256_gcm}});
  r.enum_value(cr, "rsa_padding", "crypto", o.padding,
               {{"oaep", crypto::rsa_padding::oaep}, {"pkcs1v15", crypto::rsa_padding::pkcs1v15}});
  if (auto n = cr["subject"]) {
    std::string v;
    if (r.scalar(n, "crypto.subject", v)) {
      // It goes into a header field as it is: printable ASCII only (no CR/LF injection, no RFC 2047 needed).
      bool ok = !v.empty() && v.size() <= 200 &&
                std::all_of(v.begin(), v.end(), [](char ch) { return ch >= 0x20 && ch < 0x7f; });
      if (ok) o.subject = v;
      else r.error(n.Mark(), "crypto.subject", "must be 1 to 200 printable ASCII characters");
    }
  }
  r.bool_value(cr, "protected_headers", "crypto", o.protected_headers);
  r.bool_value(cr, "fold_plus_tag", "crypto", o.fold_plus_tag);
  r.bool_value(cr, "dns_require_secure", "crypto", o.dns_require_secure);
  r.duration_value(cr, "cache_ttl", "crypto", o.cache_ttl);
  r.integer_value(cr, "wkd_port", "crypto", o.wkd_port, 1, 65535);
  r.path_value(cr, "wkd_ca_file", "crypto", o.wkd_ca_file);
  r.duration_value(cr, "wkd_timeout", "crypto", o.wkd_timeout);
  if (auto s = cr["sources"]) {
    if (r.check_map(s, "crypto.sources", {"keyring", "smime_directory", "dns_openpgpkey", "dns_smimea", "wkd"})) {
      r.bool_value(s, "keyring", "crypto.sources", o.sources.keyring);
      r.bool_value(s, "smime_directory", "crypto.sources", o.sources.smime_directory);
      r.bool_value(s, "dns_openpgpkey", "crypto.sources", o.sources.dns_openpgpkey);
      r.bool_value(s, "dns_smimea", "crypto.sources", o.sources.dns_smimea);
      r.bool_value(s, "wkd", "crypto.sources", o.sources.wkd);
    }
  }
}

// A template goes into a mail: placeholders are {name} from valid, and "{{"
// / "}}" stand for braces; anything else in braces is refused here, so a typo
// never reaches a recipient as literal text.
void check_template(yaml_reader& r, const YAML::Node& n, const std::string& key, const std::vector<std::string>& valid) {
  const std::string& t = n.Scalar();
  for (size_t i = 0; i < t.size(); ++i) {
    if (t.compare(i, 2, "{{") == 0 || t.compare(i, 2, "}}") == 0) {
      ++i;
      continue;
    }
    if (t[i] == '}') {
      r.error(n.Mark(), key, "has a '}' without its '{' (write }} for a brace)");
      return;
    }
    if (t[i] != '{') continue;
    size_t end = t.find('}', i);
    if (end == std::string::npos) {
      r.error(n.Mark(), key, "has a '{' without its '}' (write {{ for a brace)");
      return;
    }
    std::string name = t.substr(i + 1, end - i - 1);
    if (std::find(valid.begin(), valid.end(), name) == valid.end()) {
      r.error(n.Mark(), key, unknown_message("unknown placeholder", name, valid));
      return;
    }
    i = end;
  }
}

// subject and text of parent (its other keys are the caller's).
void load_template(yaml_reader& r, const YAML::Node& parent, const std::string& path,
                   portal::notice_template& t, const std::vector<std::string>& placeholders) {
  for (auto [name, out] : {std::pair{"subject", &t.subject}, std::pair{"text", &t.text}}) {
    auto n = parent[name];
    if (!n) continue;
    std::string v;
    if (!r.nonempty(n, yaml_reader::join(path, name), v)) continue;
    if (std::string_view(name) == "subject" && v.find_first_of("\r\n") != std::string::npos) {
      r.error(n.Mark(), yaml_reader::join(path, name), "must be one line");
      continue;
    }
    size_t before = r.errors().size();
    check_template(r, n, yaml_reader::join(path, name), placeholders);
    if (r.errors().size() == before) *out = v;
  }
}

// The portal: section (portal/store/portal_config.hpp holds the defaults).
// A sender address the gateway writes into envelopes and From: fields
// (portal.from, tlsrpt.from): one plain address, nothing that could end a
// field or an SMTP command.
void check_plain_address(yaml_reader& r, const YAML::Node& map, const char* key, const char* where) {
  if (auto n = map[key]; n && n.IsScalar()) {
    const std::string& v = n.Scalar();
    bool ok = v.find('@') != std::string::npos && v.size() <= 254 &&
              std::all_of(v.begin(), v.end(), [](char ch) { return ch > 0x20 && ch < 0x7f && ch != '<' && ch != '>' && ch != '"'; });
    if (!ok) r.error(n.Mark(), where, "must be a plain mail address (user@domain)");
  }
}

// A database: a PostgreSQL connection string as written, or else a SQLite
// file, relative to the configuration file as every path.
void location_value(yaml_reader& r, const YAML::Node& parent, std::string_view name, const std::string& path,
                    sql::location& out) {
  std::string text;
  r.string_value(parent, name, path, text);
  if (text.empty()) return;
  auto where = sql::location::parse(text);
  if (!where.is_postgresql()) {
    std::filesystem::path file;
    r.path_value(parent, name, path, file);
    where = sql::location::sqlite_file(file);
  }
  out = std::move(where);
}

void load_portal(yaml_reader& r, const YAML::Node& p, portal::portal_config& o) {
  if (!r.check_map(p, "portal", {"store", "base_url", "listen", "port", "certificate", "private_key", "from",
                                 "organisation", "logo", "expire", "master_key", "outbox_key", "notification", "code",
                                 "session_lifetime", "reply_max_size", "requests_per_minute", "threads", "trusted_proxies"}))
    return;
  o.configured = true;
  location_value(r, p, "store", "portal", o.store);
  r.string_value(p, "base_url", "portal", o.base_url);
  if (auto n = p["base_url"]; n && n.IsScalar()) {
    const std::string& v = n.Scalar();
    bool ok = v.rfind("https://", 0) == 0 && v.size() > 8 && v.size() <= 200 &&
              std::all_of(v.begin(), v.end(), [](char ch) { return ch > 0x20 && ch < 0x7f && ch != '"' && ch != '<' && ch != '>'; });
    if (!ok) r.error(n.Mark(), "portal.base_url", "must be an https:// URL without spaces (the links point there)");
    while (!o.base_url.empty() && o.base_url.back() == '/') o.base_url.pop_back();
  } else if (!p["base_url"]) {
    r.error(p.Mark(), "portal.base_url", "is needed: the https:// address recipients open (e.g. https://portal.example.org)");
  }
  r.string_value(p, "listen", "portal", o.listen_address);
  if (auto a = p["listen"]; a && a.IsScalar()) {
    boost::system::error_code ec;
    boost::asio::ip::make_address(a.Scalar(), ec);
    if (ec) r.error(a.Mark(), "portal.listen", "'" + a.Scalar() + "' is not an IP address");
  }
  r.integer_value(p, "port", "portal", o.listen_port, 1, 65535);
  r.path_value(p, "certificate", "portal", o.certificate);
  r.path_value(p, "private_key", "portal", o.private_key);
  r.string_value(p, "from", "portal", o.from);
  check_plain_address(r, p, "from", "portal.from");
  r.string_value(p, "organisation", "portal", o.organisation);
  if (auto n = p["organisation"]; n && n.IsScalar() &&
      (n.Scalar().size() > 100 || n.Scalar().find_first_of("\r\n") != std::string::npos))
    r.error(n.Mark(), "portal.organisation", "must be one line of at most 100 characters");
  r.path_value(p, "logo", "portal", o.logo);
  r.duration_value(p, "expire", "portal", o.expire, 366);
  r.path_value(p, "master_key", "portal", o.master_key);
  r.path_value(p, "outbox_key", "portal", o.outbox_key);
  if (auto n = p["notification"]; n && r.check_map(n, "portal.notification", {"subject", "text"}))
    load_template(r, n, "portal.notification", o.notification,
                  {"sender", "sender_name", "recipient", "link", "expires", "organisation"});
  if (auto n = p["code"]) {
    if (r.check_map(n, "portal.code", {"subject", "text", "lifetime", "max_failures", "lockout", "per_hour"})) {
      load_template(r, n, "portal.code", o.code, {"code", "minutes", "organisation", "recipient"});
      std::chrono::seconds lifetime{o.codes.lifetime}, lockout{o.codes.lockout};
      r.duration_value(n, "lifetime", "portal.code", lifetime);
      r.duration_value(n, "lockout", "portal.code", lockout);
      o.codes.lifetime = lifetime.count();
      o.codes.lockout = lockout.count();
      r.integer_value(n, "max_failures", "portal.code", o.codes.max_failures, 1, 100);
      r.integer_value(n, "per_hour", "portal.code", o.codes.max_per_window, 1, 1000);
    }
  }
  r.duration_value(p, "session_lifetime", "portal", o.session_lifetime);
  r.size_value(p, "reply_max_size", "portal", o.reply_max_size);
  r.integer_value(p, "requests_per_minute", "portal", o.requests_per_minute, 1, 100000);
  r.integer_value(p, "threads", "portal", o.threads, 1, 64);
  if (auto n = p["trusted_proxies"]) load_networks(r, n, "portal.trusted_proxies", o.trusted_proxies);
}

}  // namespace

namespace {

// RFC 1123 2.1 host name: dot-separated labels of letters, digits and '-',
// 1-63 octets each, not starting or ending with '-'; 253 octets at most.
bool is_host_name(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  size_t start = 0;
  while (true) {
    size_t dot = s.find('.', start);
    auto label = s.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
    for (unsigned char c : label)
      if (!std::isalnum(c) && c != '-') return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

// listeners[].proxy_protocol and its company. With the header on, whoever
// may send it decides the client address relay authorisation sees, so the
// loader insists on naming them; proxy_from alone would look like an access
// list and is not one.
void load_proxy_settings(yaml_reader& r, const YAML::Node& n, const std::string& path, listener_config& l) {
  r.bool_value(n, "proxy_protocol", path, l.proxy_protocol);
  if (auto from = n["proxy_from"]) load_networks(r, from, path + ".proxy_from", l.proxy_from);
  r.duration_value(n, "proxy_timeout", path, l.proxy_timeout);
  if (l.proxy_protocol && l.proxy_from.empty() && !n["proxy_from"])
    r.error(n["proxy_protocol"].Mark(), path + ".proxy_protocol",
            "needs proxy_from: the load balancers' addresses (CIDR), the only peers allowed to name the client");
  else if (l.proxy_protocol && n["proxy_from"].IsSequence() && n["proxy_from"].size() == 0)
    r.error(n["proxy_from"].Mark(), path + ".proxy_from", "must name at least one network");
  // Only when proxy_protocol is off as written: a refused value has had its error.
  const bool written_off = !n["proxy_protocol"] || (n["proxy_protocol"].IsScalar() && n["proxy_protocol"].Scalar() == "false");
  if (written_off && (n["proxy_from"] || n["proxy_timeout"]))
    r.error(n["proxy_from"] ? n["proxy_from"].Mark() : n["proxy_timeout"].Mark(),
            path + (n["proxy_from"] ? ".proxy_from" : ".proxy_timeout"), "has no effect without proxy_protocol: true");
}

bool is_listener_name(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (unsigned char c : s)
    if (!std::isalnum(c) && c != '.' && c != '_' && c != '-') return false;
  return true;
}

}  // namespace

bool valid_node_id(std::string_view id) {
  return !id.empty() && id.size() <= 32 &&
         std::all_of(id.begin(), id.end(), [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; });
}

config load_config(const std::filesystem::path& file) {
  config c;
  c.file = file;
  c.hostname = default_hostname();
  c.spool = "/var/spool/sealgate";
  c.database = sql::location::sqlite_file("/var/lib/sealgate/sealgate.db");
  yaml_reader r(file);
  std::string bytes;
  {
    // read(2) fails on a directory, where a stream would yield an empty
    // document, that is a configuration of defaults.
    auto read = read_file(file);
    if (!read) throw config_error(file.string() + ": cannot read file");
    bytes = std::move(*read);
  }
  auto document = r.parse(bytes);
  if (!document) throw config_error(r.errors().front());
  const YAML::Node root = *document;
  if (!r.check_map(root, "", {"hostname", "listeners", "tls", "relay", "spool", "spool_sync", "database", "policy_file",
                              "user", "limits", "timeouts", "dns", "queue", "delivery", "crypto", "portal", "threads",
                              "loop", "dkim", "metrics", "log", "tlsrpt", "audit", "records", "node"})) {
    throw config_error(r.errors().front());
  }

  r.string_value(root, "hostname", "", c.hostname);
  // The hostname goes into the banner, the EHLO reply and every Received
  // header: anything but a host name (a CR or LF above all) would inject lines.
  if (auto n = root["hostname"]; n && n.IsScalar() && !is_host_name(n.Scalar()))
    r.error(n.Mark(), "hostname", "must be a host name (letters, digits, '-' and '.')");
  r.path_value(root, "spool", "", c.spool);
  if (auto n = root["node"]; n && r.check_map(n, "node", {"id"})) {
    r.string_value(n, "id", "node", c.node_id);
    if (auto id = n["id"]; id && id.IsScalar() && !valid_node_id(id.Scalar()))
      r.error(id.Mark(), "node.id", "must be 1 to 32 of a-z, 0-9 and '-'");
  }
  r.enum_value(root, "spool_sync", "", c.spool_sync, {{"journal", sync_mode::journal}, {"file", sync_mode::file}, {"filesystem", sync_mode::filesystem}});
  location_value(r, root, "database", "", c.database);
  r.path_value(root, "policy_file", "", c.policy_file);
  r.string_value(root, "user", "", c.user);
  r.integer_value(root, "threads", "", c.threads, 0, 64);

  if (auto tls = root["tls"]) {
    if (r.check_map(tls, "tls", {"certificate", "private_key"})) {
      r.path_value(tls, "certificate", "tls", c.tls_certificate);
      r.path_value(tls, "private_key", "tls", c.tls_private_key);
    }
  }

  if (auto relay = root["relay"]) {
    if (r.check_map(relay, "relay", {"networks", "users_file", "client_ca", "classes"})) {
      r.path_value(relay, "users_file", "relay", c.users_file);
      load_relay_classes(r, relay, c);
      if (auto nets = relay["networks"]) load_networks(r, nets, "relay.networks", c.relay_networks);
    }
  }

  if (auto limits = root["limits"]) {
    if (r.check_map(limits, "limits", {"message_size", "recipients", "command_line_length", "data_line_length",
                                       "connections", "connections_per_client", "min_data_rate", "errors",
                                       "auth_failures", "auth_window", "received_headers"})) {
      r.integer_value(limits, "received_headers", "limits", c.limits.received_headers, 10, 1000);
      r.size_value(limits, "message_size", "limits", c.limits.message_size);
      r.integer_value(limits, "recipients", "limits", c.limits.recipients, 1, 100000);
      r.integer_value(limits, "command_line_length", "limits", c.limits.command_line_length, 512, 65536);
      r.integer_value(limits, "data_line_length", "limits", c.limits.data_line_length, 78, 1000000);
      r.integer_value(limits, "connections", "limits", c.limits.connections, 1, 1000000);
      r.integer_value(limits, "errors", "limits", c.limits.errors, 1, 1000);
      r.integer_value(limits, "connections_per_client", "limits", c.limits.connections_per_client, 0, 1000000);
      r.size_value(limits, "min_data_rate", "limits", c.limits.min_data_rate);
      r.integer_value(limits, "auth_failures", "limits", c.limits.auth_failures, 1, 1000);
      r.duration_value(limits, "auth_window", "limits", c.limits.auth_window);
    }
  }

  if (auto t = root["timeouts"]) {
    if (r.check_map(t, "timeouts", {"command", "command_under_stress", "data", "tls_handshake", "reply"})) {
      r.duration_value(t, "command", "timeouts", c.timeouts.command);
      r.duration_value(t, "command_under_stress", "timeouts", c.timeouts.command_under_stress);
      r.duration_value(t, "data", "timeouts", c.timeouts.data);
      r.duration_value(t, "tls_handshake", "timeouts", c.timeouts.tls_handshake);
      r.duration_value(t, "reply", "timeouts", c.timeouts.reply);
    }
  }

  if (auto d = root["dns"]) {
    if (r.check_map(d, "dns", {"servers", "cache_max_ttl", "negative_ttl", "timeout"})) {
      if (auto servers = d["servers"]) {
        if (!servers.IsSequence()) {
          r.error(servers.Mark(), "dns.servers", "must be a list of resolver addresses");
        } else {
          for (size_t i = 0; i < servers.size(); ++i) {
            std::string key = "dns.servers[" + std::to_string(i) + "]", v, why;
            if (!r.scalar(servers[i], key, v)) continue;
            if (auto s = dns::parse_server_address(v, &why)) c.dns.servers.push_back(*s);
            else r.error(servers[i].Mark(), key, "'" + v + "' is not a resolver address: " + why + " (e.g. 127.0.0.1, 127.0.0.1:5353, [::1]:53)");
          }
        }
      }
      r.duration_value(d, "cache_max_ttl", "dns", c.dns.cache_max_ttl);
      r.duration_value(d, "negative_ttl", "dns", c.dns.negative_ttl);
      std::chrono::seconds timeout{0};
      r.duration_value(d, "timeout", "dns", timeout);
      if (timeout.count() > 0) c.dns.timeout = timeout;
    }
  }

  if (auto q = root["queue"]) {
    if (r.check_map(q, "queue", {"retry_min", "retry_max", "max_age", "delay_warning", "concurrency",
                                 "destination_concurrency", "paused"})) {
      r.bool_value(q, "paused", "queue", c.queue.paused);
      r.duration_value(q, "retry_min", "queue", c.queue.retry_min);
      r.duration_value(q, "retry_max", "queue", c.queue.retry_max);
      r.duration_value(q, "max_age", "queue", c.queue.max_age);
      r.duration_value(q, "delay_warning", "queue", c.queue.delay_warning);
      r.integer_value(q, "concurrency", "queue", c.queue.concurrency, 1, 100000);
      r.integer_value(q, "destination_concurrency", "queue", c.queue.destination_concurrency, 1, 10000);
      if (c.queue.retry_min > c.queue.retry_max)
        r.error(q.Mark(), "queue.retry_min", "must not exceed queue.retry_max");
      if (c.queue.destination_concurrency > c.queue.concurrency)
        r.error(q.Mark(), "queue.destination_concurrency", "must not exceed queue.concurrency");
    }
  }

  if (auto d = root["delivery"]) {
    if (r.check_map(d, "delivery", {"port", "ca_file", "helo_name", "probe_max_mx", "probe_cache_ttl", "mta_sts_port",
                                    "timeouts"})) {
      r.integer_value(d, "port", "delivery", c.delivery.port, 1, 65535);
      r.path_value(d, "ca_file", "delivery", c.delivery.ca_file);
      r.string_value(d, "helo_name", "delivery", c.delivery.helo_name);
      // RFC 5321 4.1.1.1: the EHLO argument is a domain or an address literal, never free text.
      if (auto n = d["helo_name"]; n && n.IsScalar() && !n.Scalar().empty() &&
                                   n.Scalar().find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-[]:") !=
                                       std::string::npos)
        r.error(n.Mark(), "delivery.helo_name", "must be a host name or an address literal");
      r.integer_value(d, "probe_max_mx", "delivery", c.delivery.probe_max_mx, 1, 20);
      r.duration_value(d, "probe_cache_ttl", "delivery", c.delivery.probe_cache_ttl);
      r.integer_value(d, "mta_sts_port", "delivery", c.delivery.mta_sts_port, 1, 65535);
      if (auto t = d["timeouts"]) {
        if (r.check_map(t, "delivery.timeouts", {"connect", "helo", "starttls", "mail", "rcpt", "data_init", "data_xfer",
                                                 "data_done", "quit", "https"})) {
          auto& to = c.delivery.timeouts;
          const std::string p = "delivery.timeouts";
          r.duration_value(t, "connect", p, to.connect);
          r.duration_value(t, "helo", p, to.helo);
          r.duration_value(t, "starttls", p, to.starttls);
          r.duration_value(t, "mail", p, to.mail);
          r.duration_value(t, "rcpt", p, to.rcpt);
          r.duration_value(t, "data_init", p, to.data_init);
          r.duration_value(t, "data_xfer", p, to.data_xfer);
          r.duration_value(t, "data_done", p, to.data_done);
          r.duration_value(t, "quit", p, to.quit);
          r.duration_value(t, "https", p, to.https);
        }
      }
    }
  }
  if (c.delivery.helo_name.empty()) c.delivery.helo_name = c.hostname;

  if (auto cr = root["crypto"]) load_crypto(r, cr, c.crypto);
  if (auto l = root["loop"]) load_loop(r, l, c);
  const bool loop_secret_given = !c.loop.secret.empty() || !c.loop.secret_file.empty();
  if (!loop_secret_given) c.loop.secret_file = c.spool / "loop.key";
  if (auto d = root["dkim"]) load_dkim(r, d, c);
  if (auto l = root["log"]; l && r.check_map(l, "log", {"format"}))
    r.enum_value(l, "format", "log", c.log_format, {{"text", log_format::text}, {"json", log_format::json}});
  if (auto m = root["metrics"]) {
    c.metrics.enabled = true;
    if (r.check_map(m, "metrics", {"listen", "port"})) {
      r.string_value(m, "listen", "metrics", c.metrics.listen);
      if (auto a = m["listen"]; a && a.IsScalar()) {
        boost::system::error_code ec;
        boost::asio::ip::make_address(a.Scalar(), ec);
        if (ec) r.error(a.Mark(), "metrics.listen", "'" + a.Scalar() + "' is not an IP address");
      }
      r.integer_value(m, "port", "metrics", c.metrics.port, 1, 65535);
    }
  }
  if (auto t = root["tlsrpt"]; t && r.check_map(t, "tlsrpt", {"organization", "contact", "from", "send"})) {
    r.string_value(t, "organization", "tlsrpt", c.tlsrpt.organization);
    r.string_value(t, "contact", "tlsrpt", c.tlsrpt.contact);
    r.string_value(t, "from", "tlsrpt", c.tlsrpt.from);
    r.bool_value(t, "send", "tlsrpt", c.tlsrpt.send);
    check_plain_address(r, t, "from", "tlsrpt.from");
  }
  if (c.tlsrpt.organization.empty()) c.tlsrpt.organization = c.hostname;
  if (c.tlsrpt.contact.empty()) c.tlsrpt.contact = "mailto:postmaster@" + c.hostname;
  if (c.tlsrpt.from.empty()) c.tlsrpt.from = "tlsrpt-noreply@" + c.hostname;
  if (auto a = root["audit"];
      a && r.check_map(a, "audit", {"signing_key", "public_key", "checkpoint_interval", "witness"})) {
    r.path_value(a, "signing_key", "audit", c.audit.signing_key);
    r.path_value(a, "public_key", "audit", c.audit.public_key);
    r.duration_value(a, "checkpoint_interval", "audit", c.audit.checkpoint_interval, 1);
    if (auto w = a["witness"]; w && r.check_map(w, "audit.witness", {"file", "syslog", "mail"})) {
      r.path_value(w, "file", "audit.witness", c.audit.witness_file);
      r.bool_value(w, "syslog", "audit.witness", c.audit.witness_syslog);
      r.string_value(w, "mail", "audit.witness", c.audit.witness_mail);
      check_plain_address(r, w, "mail", "audit.witness.mail");
    }
  }
  if (auto rec = root["records"]; rec && r.check_map(rec, "records", {"retention"}))
    r.duration_value(rec, "retention", "records", c.audit.retention, 36500);
  if (c.database.is_postgresql()) {
    // Several nodes share the record: what each one signs or seals must be
    // under the same keys everywhere, so "beside the database" or "in the
    // spool" cannot be the default. Each node is given the same files.
    auto require = [&](bool given, const std::string& key, const std::string& why) {
      if (!given) r.error(root["database"].Mark(), "database", "is PostgreSQL, so " + key + " must be set: " + why);
    };
    require(!c.audit.signing_key.empty(), "audit.signing_key",
            "every node signs the shared audit chain with the same key");
    require(!c.audit.public_key.empty(), "audit.public_key", "auditors check every node's checkpoints with it");
    require(loop_secret_given, "loop.secret or loop.secret_file",
            "a node must recognise the loop stamps of the others");
  } else {
    if (c.audit.signing_key.empty()) c.audit.signing_key = c.database.file.parent_path() / "audit.key";
    if (c.audit.public_key.empty()) c.audit.public_key = c.database.file.parent_path() / "audit.pub";
  }
  if (auto p = root["portal"]) {
    load_portal(r, p, c.portal);
    // Not given (portal: may also be a scalar, an error already reported,
    // where p["store"] would throw).
    if (!c.portal.store.is_postgresql() && c.portal.store.file.empty())
      c.portal.store = c.database.is_postgresql() ? c.database
                                                   : sql::location::sqlite_file(c.database.file.parent_path() / "portal.db");
    if (c.portal.outbox_key.empty() && c.database.is_postgresql())
      r.error(root["database"].Mark(), "database",
              "is PostgreSQL, so portal.outbox_key must be set: the portal seals codes to the one key every node opens");
    if (c.portal.outbox_key.empty()) c.portal.outbox_key = c.spool / "portal-outbox.key";
    if (c.portal.from.empty()) c.portal.from = "secure-mail@" + c.hostname;
  }
  // WKD's HTTPS trusts what delivery's HTTPS (MTA-STS) trusts unless told otherwise.
  if (c.crypto.wkd_ca_file.empty()) c.crypto.wkd_ca_file = c.delivery.ca_file;

  bool any_tls = false, any_auth = false;
  if (auto ls = root["listeners"]) {
    if (!ls.IsSequence() || ls.size() == 0) {
      r.error(ls.Mark(), "listeners", "must be a non-empty list");
    } else {
      std::set<std::string> names;
      for (size_t i = 0; i < ls.size(); ++i) {
        std::string path = "listeners[" + std::to_string(i) + "]";
        listener_config l;
        l.name = "listener" + std::to_string(i);
        if (!r.check_map(ls[i], path, {"name", "address", "port", "tls", "auth", "proxy_protocol", "proxy_from",
                                       "proxy_timeout"}))
          continue;
        r.string_value(ls[i], "name", path, l.name);
        // Listener names go into logs, the Received header and policy matches.
        if (auto n = ls[i]["name"]; n && n.IsScalar() && !is_listener_name(n.Scalar()))
          r.error(n.Mark(), path + ".name", "must be 1-64 letters, digits, '.', '_' or '-'");
        // The gateway's own mail is spooled under these names (DSNs, the portal's notifications, codes and replies).
        if (auto n = ls[i]["name"]; n && n.IsScalar() &&
            (n.Scalar() == "dsn" || n.Scalar() == "portal" || n.Scalar() == "portal-reply"))
          r.error(n.Mark(), path + ".name", "'" + n.Scalar() + "' is reserved for mail the gateway writes itself");
        r.string_value(ls[i], "address", path, l.address);
        if (auto a = ls[i]["address"]; a && a.IsScalar()) {
          boost::system::error_code ec;
          boost::asio::ip::make_address(a.Scalar(), ec);
          if (ec) r.error(a.Mark(), path + ".address", "'" + a.Scalar() + "' is not an IP address");
        }
        r.integer_value(ls[i], "port", path, l.port, 1, 65535);
        r.enum_value(ls[i], "tls", path, l.tls,
                     {{"none", listener_tls::none}, {"starttls", listener_tls::starttls}, {"implicit", listener_tls::implicit}});
        r.enum_value(ls[i], "auth", path, l.auth,
                     {{"none", listener_auth::none}, {"optional", listener_auth::optional}, {"required", listener_auth::required}});
        if (l.auth != listener_auth::none && l.tls == listener_tls::none)
          r.error(ls[i].Mark(), path + ".auth", "needs tls: starttls or implicit (passwords never travel in clear)");
        load_proxy_settings(r, ls[i], path, l);
        if (!names.insert(l.name).second) r.error(ls[i].Mark(), path + ".name", "duplicate listener name '" + l.name + "'");
        any_tls |= l.tls != listener_tls::none;
        any_auth |= l.auth != listener_auth::none;
        c.listeners.push_back(l);
      }
    }
  } else {
    c.listeners.push_back(listener_config{.name = "smarthost"});
    any_tls = any_auth = true;
  }

  YAML::Mark top;  // 1:1 for problems that belong to the file as a whole
  if (c.portal.configured) {
    if (c.portal.certificate.empty()) c.portal.certificate = c.tls_certificate;
    if (c.portal.private_key.empty()) c.portal.private_key = c.tls_private_key;
    if (c.portal.certificate.empty() || c.portal.private_key.empty())
      r.error(root["portal"].Mark(), "portal", "certificate and private_key are needed (the portal serves HTTPS only)");
  }
  if (any_tls && (c.tls_certificate.empty() || c.tls_private_key.empty()))
    r.error(root["tls"] ? root["tls"].Mark() : top, "tls", "certificate and private_key are needed by a listener with tls: starttls or implicit");
  if (any_auth && c.users_file.empty())
    r.error(root["relay"] ? root["relay"].Mark() : top, "relay.users_file", "is needed by a listener with auth: optional or required");

  if (!r.errors().empty()) throw config_error(r.report());
  return c;
}

}  // namespace sealgate::gateway
