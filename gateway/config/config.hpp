// The gateway's typed configuration, loaded from YAML. Defaults live here in
// code; unknown keys, wrong types and bad values are refused with
// FILE:LINE:COL: key: message, all of them at once, and nothing starts.
#pragma once
#include <chrono>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/log.hpp"
#include "crypto/options.hpp"
#include "dns/options.hpp"
#include "gateway/config/delivery_options.hpp"
#include "gateway/config/intake_options.hpp"
#include "common/ip_network.hpp"
#include "portal/store/portal_config.hpp"
#include "common/sql.hpp"

namespace sealgate::gateway {

// How a listener offers TLS and AUTH (config key listeners[].tls, .auth).
enum class listener_tls { none, starttls, implicit };
enum class listener_auth { none, optional, required };

// How a group is made durable.
//   journal     the group's messages are appended to a write-ahead journal
//               (spool_journal.hpp) with one fdatasync; their queue/ files are
//               written unsynced and made durable by a checkpoint (one syncfs
//               about once a second) that then retires the journal (the default:
//               one disk flush per group)
//   file        fdatasync each message file, then fsync queue/ (a flush per
//               message; nothing to replay after a reboot)
//   filesystem  one syncfs(2) of the spool's file system for the whole group: as
//               durable, but it also flushes whatever else is dirty on that file
//               system, so use it when the spool has a file system of its own
enum class sync_mode { journal, file, filesystem };


struct listener_config {
  std::string name;
  std::string address = "127.0.0.1";
  uint16_t port = 2525;
  listener_tls tls = listener_tls::starttls;
  listener_auth auth = listener_auth::optional;
  // PROXY protocol v2 (docs/configuration.md): a load balancer in front names
  // the client in a header before the client's bytes. Only peers in
  // proxy_from may send it, and with proxy_protocol on, only they may connect.
  bool proxy_protocol = false;
  std::vector<ip_network> proxy_from{};
  std::chrono::seconds proxy_timeout{5};  // for the whole header (Postfix smtpd_upstream_proxy_timeout)
};

struct limits_config {
  uint64_t message_size = 25ull * 1024 * 1024;  // SIZE, as Postfix's message_size_limit but 25 MiB like M365
  size_t recipients = 1000;                     // per message (RFC 5321 4.5.3.1.8 asks for at least 100)
  size_t command_line_length = 2048;            // RFC 5321 4.5.3.1.4 says 512; AUTH and DSN need more
  size_t data_line_length = 998;                // RFC 5322 2.1.1 (1000 with CRLF)
  size_t connections = 1000;                    // concurrent inbound connections, all listeners (lowered at start
                                                // to what RLIMIT_NOFILE leaves after the gateway's own files)
  size_t connections_per_client = 50;           // from one client address, outside relay.networks (Postfix's
                                                // smtpd_client_connection_count_limit); 0 = no limit
  uint64_t min_data_rate = 500;                 // bytes/s that extend the DATA deadline (Postfix smtpd_min_data_rate)
  unsigned auth_failures = 5;                   // failed AUTHs from one address (or for one user) in auth_window
  std::chrono::seconds auth_window{300};        // before further attempts get 454 without a password check
  unsigned errors = 10;                         // replies >= 400 before 421 and disconnect
  size_t received_headers = 50;                 // more Received: fields: 554 5.4.6, a loop (RFC 5321 6.3)
};

struct timeouts_config {
  std::chrono::seconds command{300};        // for a whole command line, however it trickles in (Postfix smtpd_timeout)
  std::chrono::seconds command_under_stress{10};  // the same when connections pass 80% of limits.connections
  std::chrono::seconds data{600};           // for the whole content, extended by limits.min_data_rate
  std::chrono::seconds tls_handshake{60};
  std::chrono::seconds reply{60};           // writing a reply to a client that does not read
};

// Outbound scheduling; the names and defaults follow Postfix's qmgr
// (minimal_backoff_time, maximal_backoff_time, maximal_queue_lifetime,
// delay_warning_time, default_destination_concurrency_limit).
struct queue_config {
  std::chrono::seconds retry_min{300};
  std::chrono::seconds retry_max{4000};
  std::chrono::seconds max_age{5 * 86400};
  std::chrono::seconds delay_warning{4 * 3600};  // a value >= max_age means no delay warnings
  size_t concurrency = 100;                      // outbound connections, all destinations
  size_t destination_concurrency = 20;           // per destination (one recipient domain's MX set)
  bool paused = false;                           // accept and spool, deliver nothing (maintenance)
};

// The status listener (metrics:): /metrics, /healthz, /readyz over plain
// HTTP. Off without the section; loopback by default when on.
struct metrics_config {
  bool enabled = false;
  std::string listen = "127.0.0.1";
  uint16_t port = 9650;
};

// SMTP TLS Reporting (tlsrpt:, RFC 8460): who the daily reports say they
// are from. Sessions are counted whether or not the section is there.
struct tlsrpt_config {
  std::string organization;  // default: the hostname
  std::string contact;       // default: mailto:postmaster@<hostname>
  std::string from;          // envelope and From of report mails; default: tlsrpt-noreply@<hostname>
  bool send = false;         // the daily run; `sealgate tlsrpt send` works either way
};

// The audit log (audit:, records:): who signs the chain's checkpoints, how
// often, who else keeps a copy, and how long records are kept.
struct audit_config {
  std::filesystem::path signing_key;  // Ed25519, PEM; default audit.key beside the database, made at first start
  std::filesystem::path public_key;   // its public half for auditors; default audit.pub beside the database
  std::chrono::seconds checkpoint_interval{3600};
  std::filesystem::path witness_file;  // a copy of each checkpoint appended here (another disk, a WORM mount)
  bool witness_syslog = false;         // and/or logged through syslog(3), LOG_AUTHPRIV
  std::string witness_mail;            // and/or mailed to this address
  std::chrono::seconds retention{std::chrono::hours(24) * 2190};  // records.retention: six years (HIPAA)
};

struct config {
  std::filesystem::path file;
  std::string hostname;
  std::vector<listener_config> listeners;
  std::filesystem::path tls_certificate;
  std::filesystem::path tls_private_key;
  std::vector<ip_network> relay_networks;
  std::filesystem::path relay_client_ca;      // CAs for client certificates; set: TLS listeners ask for one
  std::vector<relay_class> relay_classes;     // checked before relay_networks and AUTH
  std::filesystem::path users_file;
  std::filesystem::path spool;
  // node.id: this node's name in a cluster (a-z, 0-9, '-', up to 32); empty:
  // the one kept in the spool (spool/node-id), made once.
  std::string node_id;
  sync_mode spool_sync = sync_mode::journal;
  // The record: a SQLite file (the default), or a PostgreSQL connection
  // string that several nodes share (sql::location::parse).
  sql::location database;
  std::filesystem::path policy_file;  // delivery policy (policy/); empty = none loaded yet
  std::string user;  // drop to this user after binding, when started as root
  limits_config limits;
  timeouts_config timeouts;
  queue_config queue;
  dns::resolver_options dns;  // servers empty: /etc/resolv.conf
  delivery_options delivery;  // helo_name filled with hostname when not set
  crypto::crypto_options crypto;  // PGP needs gnupg_home; see docs/configuration.md
  portal::portal_config portal;   // configured only with a portal: section
  loop_options loop;
  dkim_options dkim;
  metrics_config metrics;
  tlsrpt_config tlsrpt;
  audit_config audit;
  sealgate::log_format log_format = sealgate::log_format::text;  // log.format
  unsigned threads = 0;  // io threads; 0 = one per core
};

class config_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Throws config_error whose what() holds one "FILE:LINE:COL: key: message" line per problem.
config load_config(const std::filesystem::path& file);

// What node.id accepts: 1 to 32 of a-z, 0-9 and '-' (it names the node in
// the shared record, logs and metrics).
bool valid_node_id(std::string_view id);

}  // namespace sealgate::gateway
