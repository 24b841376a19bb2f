// Every bad configuration is refused with its exact FILE:LINE:COL message.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "gateway/config/config.hpp"

using namespace sealgate::gateway;

namespace {
class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sealgate-config-XXXXXX";
    dir_ = mkdtemp(tmpl);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path write(const std::string& text) {
    auto p = dir_ / "sealgate.yaml";
    std::ofstream(p) << text;
    return p;
  }
  std::string error_of(const std::string& text) {
    auto p = write(text);
    try {
      load_config(p);
    } catch (const config_error& e) {
      std::string msg = e.what();
      // Strip the directory so expectations read as the operator sees them.
      auto prefix = p.string();
      for (size_t pos; (pos = msg.find(prefix)) != std::string::npos;) msg.replace(pos, prefix.size(), "sealgate.yaml");
      return msg;
    }
    return "(no error)";
  }
  std::filesystem::path dir_;
};

const char* minimal = R"(listeners:
  - {name: a, address: 127.0.0.1, port: 2525, tls: none, auth: none}
)";
}  // namespace

TEST_F(ConfigTest, MinimalConfigGetsDefaults) {
  auto c = load_config(write(minimal));
  ASSERT_EQ(c.listeners.size(), 1u);
  EXPECT_EQ(c.listeners[0].port, 2525);
  EXPECT_EQ(c.limits.message_size, 25u * 1024 * 1024);
  EXPECT_EQ(c.timeouts.command, std::chrono::seconds(300));
  EXPECT_EQ(c.spool, "/var/spool/sealgate");
}

TEST_F(ConfigTest, TheNodeIdNamesTheNodeInLettersDigitsAndDashes) {
  EXPECT_EQ(load_config(write(std::string(minimal) + "node: {id: gw-a}\n")).node_id, "gw-a");
  EXPECT_EQ(load_config(write(minimal)).node_id, "") << "the spool keeps one";
  EXPECT_EQ(error_of(std::string(minimal) + "node: {id: GW_A}\n"),
            "sealgate.yaml:3:12: node.id: must be 1 to 32 of a-z, 0-9 and '-'");
}

TEST_F(ConfigTest, RelativePathsAreRelativeToTheFile) {
  auto c = load_config(write(std::string(minimal) + "spool: ../var/spool\ndatabase: db.sqlite\n"));
  EXPECT_EQ(c.spool, (dir_.parent_path() / "var/spool").lexically_normal());
  EXPECT_FALSE(c.database.is_postgresql());
  EXPECT_EQ(c.database.file, dir_ / "db.sqlite");
}

TEST_F(ConfigTest, PolicyFileIsRelativeToTheFile) {
  EXPECT_EQ(load_config(write(minimal)).policy_file, "");
  EXPECT_EQ(load_config(write(std::string(minimal) + "policy_file: policy.yaml\n")).policy_file, dir_ / "policy.yaml");
}

TEST_F(ConfigTest, ValuesAreParsed) {
  auto c = load_config(write(std::string(minimal) +
                             "limits: {message_size: 10MB, recipients: 50}\ntimeouts: {command: 2m, data: 90}\n"
                             "relay: {networks: [10.0.0.0/8, '2001:db8::/32']}\n"));
  EXPECT_EQ(c.limits.message_size, 10000000u);
  EXPECT_EQ(c.limits.recipients, 50u);
  EXPECT_EQ(c.timeouts.command, std::chrono::seconds(120));
  EXPECT_EQ(c.timeouts.data, std::chrono::seconds(90));
  ASSERT_EQ(c.relay_networks.size(), 2u);
  EXPECT_TRUE(c.relay_networks[0].contains(boost::asio::ip::make_address("10.1.2.3")));
  EXPECT_TRUE(c.relay_networks[0].contains(boost::asio::ip::make_address("::ffff:10.1.2.3")));
  EXPECT_FALSE(c.relay_networks[0].contains(boost::asio::ip::make_address("11.0.0.1")));
}

TEST_F(ConfigTest, UnknownKeys) {
  EXPECT_EQ(error_of(std::string(minimal) + "spoool: x\n"),
            "sealgate.yaml:3:1: spoool: unknown key; did you mean 'spool'? (valid: hostname, listeners, tls, relay, spool, spool_sync, "
            "database, policy_file, user, limits, timeouts, dns, queue, delivery, crypto, portal, threads, loop, dkim, metrics, log, tlsrpt, audit, records, node)");
  EXPECT_EQ(error_of(std::string(minimal) + "spool_sync: sometimes\n"),
            "sealgate.yaml:3:13: spool_sync: unknown value 'sometimes' (valid: journal, file, filesystem)");
  EXPECT_EQ(error_of("listeners:\n  - {name: a, prot: 25, tls: none, auth: none}\n"),
            "sealgate.yaml:2:15: listeners[0].prot: unknown key (valid: name, address, port, tls, auth, "
            "proxy_protocol, proxy_from, proxy_timeout)");
}

// The same guesses as the policy's (common/yaml_reader): a likely typo of a
// key or a value is named, anything else only gets the valid list.
TEST_F(ConfigTest, UnknownKeysAndValuesSuggestTheClosest) {
  EXPECT_EQ(error_of(std::string(minimal) + "timeouts: {comand: 5m}\n"),
            "sealgate.yaml:3:12: timeouts.comand: unknown key; did you mean 'command'? (valid: command, "
            "command_under_stress, data, tls_handshake, reply)");
  // A key that starts a valid one.
  EXPECT_EQ(error_of(std::string(minimal) + "listener: []\n"),
            "sealgate.yaml:3:1: listener: unknown key; did you mean 'listeners'? (valid: hostname, listeners, tls, relay, "
            "spool, spool_sync, database, policy_file, user, limits, timeouts, dns, queue, delivery, crypto, portal, threads, loop, dkim, metrics, log, tlsrpt, audit, records, node)");
  EXPECT_EQ(error_of(std::string(minimal) + "limits: {recipient: 50}\n"),
            "sealgate.yaml:3:10: limits.recipient: unknown key; did you mean 'recipients'? (valid: message_size, "
            "recipients, command_line_length, data_line_length, connections, connections_per_client, min_data_rate, "
            "errors, auth_failures, auth_window, received_headers)");
  EXPECT_EQ(error_of(std::string(minimal) + "crypto:\n  sources: {dns_openpgp_key: true}\n"),
            "sealgate.yaml:4:13: crypto.sources.dns_openpgp_key: unknown key; did you mean 'dns_openpgpkey'? (valid: "
            "keyring, smime_directory, dns_openpgpkey, dns_smimea, wkd)");
  auto tls = error_of("listeners:\n  - {name: a, tls: startls, auth: none}\n");
  EXPECT_EQ(tls.substr(0, tls.find('\n')),
            "sealgate.yaml:2:20: listeners[0].tls: unknown value 'startls'; did you mean 'starttls'? (valid: none, "
            "starttls, implicit)");
  EXPECT_EQ(error_of(std::string(minimal) + "spool_sync: journaled\n"),
            "sealgate.yaml:3:13: spool_sync: unknown value 'journaled'; did you mean 'journal'? (valid: journal, file, "
            "filesystem)");
  // Nothing close: no guess.
  EXPECT_EQ(error_of(std::string(minimal) + "colour: blue\n"),
            "sealgate.yaml:3:1: colour: unknown key (valid: hostname, listeners, tls, relay, spool, spool_sync, "
            "database, policy_file, user, limits, timeouts, dns, queue, delivery, crypto, portal, threads, loop, dkim, metrics, log, tlsrpt, audit, records, node)");
}

TEST_F(ConfigTest, BadValues) {
  auto bad_enum = error_of("listeners:\n  - {name: a, tls: maybe, auth: none}\n");
  EXPECT_EQ(bad_enum.substr(0, bad_enum.find('\n')),
            "sealgate.yaml:2:20: listeners[0].tls: unknown value 'maybe' (valid: none, starttls, implicit)");
  EXPECT_EQ(error_of("listeners:\n  - {name: a, port: 70000, tls: none, auth: none}\n"),
            "sealgate.yaml:2:21: listeners[0].port: must be a whole number from 1 to 65535");
  EXPECT_EQ(error_of(std::string(minimal) + "relay:\n  networks: [10.0.0.1/33]\n"),
            "sealgate.yaml:4:14: relay.networks[0]: '10.0.0.1/33' is not a CIDR network: bad prefix length");
  EXPECT_EQ(error_of(std::string(minimal) + "relay:\n  networks: [10.0.0.1/8]\n"),
            "sealgate.yaml:4:14: relay.networks[0]: '10.0.0.1/8' is not a CIDR network: host bits set below the prefix length");
  EXPECT_EQ(error_of(std::string(minimal) + "limits: {message_size: 10 parsecs}\n"),
            "sealgate.yaml:3:24: limits.message_size: must be a size such as 25MiB, 10MB or 1048576 (valid units: B, KB, "
            "MB, GB, KiB, MiB, GiB)");
  EXPECT_EQ(error_of(std::string(minimal) + "timeouts: {command: 5 days}\n"),
            "sealgate.yaml:3:21: timeouts.command: must be a duration such as 30s, 5m, 1h or 2d (at least 1s, at most 7 days)");
  EXPECT_EQ(error_of("listeners: 5\n"), "sealgate.yaml:1:12: listeners: must be a non-empty list");
}

TEST_F(ConfigTest, DnsSection) {
  auto c = load_config(write(std::string(minimal) +
                             "dns: {servers: [127.0.0.1:5353, '[::1]:53', 192.0.2.53], cache_max_ttl: 30m, "
                             "negative_ttl: 1m, timeout: 2s}\n"));
  ASSERT_EQ(c.dns.servers.size(), 3u);
  EXPECT_EQ(c.dns.servers[0].to_string(), "127.0.0.1:5353");
  EXPECT_TRUE(c.dns.servers[0].loopback);
  EXPECT_EQ(c.dns.servers[1].to_string(), "[::1]:53");
  EXPECT_TRUE(c.dns.servers[1].loopback);
  EXPECT_EQ(c.dns.servers[2].to_string(), "192.0.2.53:53");
  EXPECT_FALSE(c.dns.servers[2].loopback);
  EXPECT_EQ(c.dns.cache_max_ttl, std::chrono::minutes(30));
  EXPECT_EQ(c.dns.negative_ttl, std::chrono::minutes(1));
  EXPECT_EQ(c.dns.timeout, std::chrono::seconds(2));
  auto d = load_config(write(minimal));
  EXPECT_TRUE(d.dns.servers.empty());
  EXPECT_EQ(d.dns.cache_max_ttl, std::chrono::hours(1));
  EXPECT_EQ(d.dns.negative_ttl, std::chrono::minutes(5));
  EXPECT_EQ(d.dns.timeout, std::chrono::seconds(5));
}

TEST_F(ConfigTest, BadDnsServer) {
  EXPECT_EQ(error_of(std::string(minimal) + "dns:\n  servers: [127.0.0.1:5353, resolver.example:53]\n"),
            "sealgate.yaml:4:29: dns.servers[1]: 'resolver.example:53' is not a resolver address: not an IP address "
            "(e.g. 127.0.0.1, 127.0.0.1:5353, [::1]:53)");
  EXPECT_EQ(error_of(std::string(minimal) + "dns: {servers: ['127.0.0.1:0']}\n"),
            "sealgate.yaml:3:17: dns.servers[0]: '127.0.0.1:0' is not a resolver address: bad port "
            "(e.g. 127.0.0.1, 127.0.0.1:5353, [::1]:53)");
  EXPECT_EQ(error_of(std::string(minimal) + "dns: {servers: 127.0.0.1}\n"),
            "sealgate.yaml:3:16: dns.servers: must be a list of resolver addresses");
  EXPECT_EQ(error_of(std::string(minimal) + "dns: {timout: 1s}\n"),
            "sealgate.yaml:3:7: dns.timout: unknown key; did you mean 'timeout'? (valid: servers, cache_max_ttl, negative_ttl, timeout)");
}

TEST_F(ConfigTest, DeliveryDefaults) {
  auto c = load_config(write(std::string(minimal) + "hostname: gw.example\n"));
  EXPECT_EQ(c.delivery.port, 25);
  EXPECT_EQ(c.delivery.ca_file, "");
  EXPECT_EQ(c.delivery.helo_name, "gw.example");  // the hostname unless set
  EXPECT_EQ(c.delivery.probe_max_mx, 5u);
  EXPECT_EQ(c.delivery.probe_cache_ttl, std::chrono::seconds(600));
  EXPECT_EQ(c.delivery.mta_sts_port, 443);
  EXPECT_EQ(c.delivery.timeouts.connect, std::chrono::seconds(30));
  EXPECT_EQ(c.delivery.timeouts.helo, std::chrono::seconds(300));
  EXPECT_EQ(c.delivery.timeouts.data_done, std::chrono::seconds(600));
  EXPECT_EQ(c.delivery.timeouts.https, std::chrono::seconds(60));
}

TEST_F(ConfigTest, DeliveryValues) {
  auto c = load_config(write(std::string(minimal) +
                             "delivery:\n  port: 2525\n  ca_file: ca.pem\n  helo_name: out.example\n  probe_max_mx: 2\n"
                             "  probe_cache_ttl: 1h\n  mta_sts_port: 8443\n  timeouts: {connect: 5s, starttls: 1m, https: 10s}\n"));
  EXPECT_EQ(c.delivery.port, 2525);
  EXPECT_EQ(c.delivery.ca_file, dir_ / "ca.pem");
  EXPECT_EQ(c.delivery.helo_name, "out.example");
  EXPECT_EQ(c.delivery.probe_max_mx, 2u);
  EXPECT_EQ(c.delivery.probe_cache_ttl, std::chrono::seconds(3600));
  EXPECT_EQ(c.delivery.mta_sts_port, 8443);
  EXPECT_EQ(c.delivery.timeouts.connect, std::chrono::seconds(5));
  EXPECT_EQ(c.delivery.timeouts.starttls, std::chrono::seconds(60));
  EXPECT_EQ(c.delivery.timeouts.https, std::chrono::seconds(10));
  EXPECT_EQ(c.delivery.timeouts.helo, std::chrono::seconds(300));
}

TEST_F(ConfigTest, DeliveryBadValues) {
  EXPECT_EQ(error_of(std::string(minimal) + "delivery: {port: 0}\n"),
            "sealgate.yaml:3:18: delivery.port: must be a whole number from 1 to 65535");
  EXPECT_EQ(error_of(std::string(minimal) + "delivery: {mta_sts_port: 70000}\n"),
            "sealgate.yaml:3:26: delivery.mta_sts_port: must be a whole number from 1 to 65535");
  EXPECT_EQ(error_of(std::string(minimal) + "delivery: {probe_max_mx: 0}\n"),
            "sealgate.yaml:3:26: delivery.probe_max_mx: must be a whole number from 1 to 20");
  EXPECT_EQ(error_of(std::string(minimal) + "delivery: {probe_cache_ttl: forever}\n"),
            "sealgate.yaml:3:29: delivery.probe_cache_ttl: must be a duration such as 30s, 5m, 1h or 2d (at least 1s, at most 7 days)");
  EXPECT_EQ(error_of(std::string(minimal) + "delivery: {helo_name: 'my host'}\n"),
            "sealgate.yaml:3:23: delivery.helo_name: must be a host name or an address literal");
  EXPECT_EQ(error_of(std::string(minimal) + "delivery: {ca_file: ''}\n"),
            "sealgate.yaml:3:21: delivery.ca_file: must not be empty");
  EXPECT_EQ(error_of(std::string(minimal) + "delivery: {timeouts: {conect: 5s}}\n"),
            "sealgate.yaml:3:23: delivery.timeouts.conect: unknown key; did you mean 'connect'? (valid: connect, helo, "
            "starttls, mail, rcpt, data_init, data_xfer, data_done, quit, https)");
  EXPECT_EQ(error_of(std::string(minimal) + "delivery: {timeouts: {connect: 0s}}\n"),
            "sealgate.yaml:3:32: delivery.timeouts.connect: must be a duration such as 30s, 5m, 1h or 2d (at least 1s, at most 7 days)");
  EXPECT_EQ(error_of(std::string(minimal) + "delivery: {prot: 25}\n"),
            "sealgate.yaml:3:12: delivery.prot: unknown key (valid: port, ca_file, helo_name, probe_max_mx, "
            "probe_cache_ttl, mta_sts_port, timeouts)");
  EXPECT_EQ(error_of(std::string(minimal) + "delivery: [25]\n"), "sealgate.yaml:3:11: delivery: must be a mapping");
}

TEST_F(ConfigTest, WrongTypes) {
  EXPECT_EQ(error_of(std::string(minimal) + "relay: [a]\n"), "sealgate.yaml:3:8: relay: must be a mapping");
  EXPECT_EQ(error_of(std::string(minimal) + "relay: {networks: 10.0.0.0/8}\n"),
            "sealgate.yaml:3:19: relay.networks: must be a list of CIDR networks");
}

TEST_F(ConfigTest, CrossChecks) {
  EXPECT_EQ(error_of("listeners:\n  - {name: a, tls: none, auth: optional}\nrelay: {users_file: u}\n"),
            "sealgate.yaml:2:5: listeners[0].auth: needs tls: starttls or implicit (passwords never travel in clear)");
  EXPECT_EQ(error_of("listeners:\n  - {name: a, tls: starttls, auth: none}\n"),
            "sealgate.yaml:1:1: tls: certificate and private_key are needed by a listener with tls: starttls or implicit");
  EXPECT_EQ(error_of("listeners:\n  - {name: a, tls: none, auth: none}\n  - {name: a, port: 2526, tls: none, auth: none}\n"),
            "sealgate.yaml:3:5: listeners[1].name: duplicate listener name 'a'");
}

TEST_F(ConfigTest, AllErrorsAtOnce) {
  auto msg = error_of("listeners:\n  - {name: a, tls: maybe, auth: none}\nspoool: x\n");
  EXPECT_NE(msg.find("\n"), std::string::npos) << msg;
}

TEST_F(ConfigTest, YamlSyntaxError) {
  EXPECT_EQ(error_of("listeners: [\n").substr(0, 14), "sealgate.yaml:");
}

TEST_F(ConfigTest, ShippedConfigLoads) {
  auto c = load_config(std::filesystem::path(SEALGATE_SOURCE_DIR) / "conf/sealgate.yaml");
  ASSERT_EQ(c.listeners.size(), 1u);
  EXPECT_EQ(c.listeners[0].port, 2525);
  EXPECT_EQ(c.listeners[0].tls, listener_tls::starttls);
  EXPECT_EQ(c.listeners[0].auth, listener_auth::optional);
  EXPECT_EQ(c.spool.filename(), "spool");
  EXPECT_EQ(c.policy_file, std::filesystem::path(SEALGATE_SOURCE_DIR) / "conf/policy.yaml");
}

TEST_F(ConfigTest, QueueDefaultsAndValues) {
  auto d = load_config(write(minimal));
  EXPECT_EQ(d.queue.retry_min, std::chrono::seconds(300));
  EXPECT_EQ(d.queue.retry_max, std::chrono::seconds(4000));
  EXPECT_EQ(d.queue.max_age, std::chrono::seconds(5 * 86400));
  EXPECT_EQ(d.queue.delay_warning, std::chrono::seconds(4 * 3600));
  EXPECT_EQ(d.queue.destination_concurrency, 20u);
  auto q = load_config(write(std::string(minimal) + "queue: {retry_min: 1m, retry_max: 2h, max_age: 3d, concurrency: 50}\n"));
  EXPECT_EQ(q.queue.retry_min, std::chrono::seconds(60));
  EXPECT_EQ(q.queue.retry_max, std::chrono::seconds(7200));
  EXPECT_EQ(q.queue.concurrency, 50u);
}

TEST_F(ConfigTest, BadQueue) {
  EXPECT_EQ(error_of(std::string(minimal) + "queue: {retry_min: 2h, retry_max: 1h}\n"),
            "sealgate.yaml:3:8: queue.retry_min: must not exceed queue.retry_max");
  EXPECT_EQ(error_of(std::string(minimal) + "queue: {max_age: 9d}\n"),
            "sealgate.yaml:3:18: queue.max_age: must be a duration such as 30s, 5m, 1h or 2d (at least 1s, at most 7 days)");
  EXPECT_EQ(error_of(std::string(minimal) + "queue: {concurrency: 10, destination_concurrency: 20}\n"),
            "sealgate.yaml:3:8: queue.destination_concurrency: must not exceed queue.concurrency");
  EXPECT_EQ(error_of(std::string(minimal) + "queue: {retries: 3}\n"),
            "sealgate.yaml:3:9: queue.retries: unknown key (valid: retry_min, retry_max, max_age, delay_warning, "
            "concurrency, destination_concurrency, paused)");
  EXPECT_EQ(error_of(std::string(minimal) + "queue: {paused: yes}\n"),
            "sealgate.yaml:3:17: queue.paused: must be true or false");
  EXPECT_TRUE(load_config(write(std::string(minimal) + "queue: {paused: true}\n")).queue.paused);
}

TEST_F(ConfigTest, CryptoDefaults) {
  auto c = load_config(write(minimal)).crypto;
  EXPECT_TRUE(c.gnupg_home.empty());
  EXPECT_TRUE(c.smime_certificates.empty());
  EXPECT_EQ(c.cipher, sealgate::crypto::smime_cipher::aes_256_cbc);
  EXPECT_EQ(c.padding, sealgate::crypto::rsa_padding::oaep);
  EXPECT_EQ(c.subject, "...");
  EXPECT_TRUE(c.protected_headers);
  EXPECT_FALSE(c.fold_plus_tag);
  EXPECT_TRUE(c.sources.keyring && c.sources.smime_directory && c.sources.dns_openpgpkey && c.sources.dns_smimea);
  EXPECT_TRUE(c.dns_require_secure);
  EXPECT_EQ(c.cache_ttl, std::chrono::minutes(10));
  EXPECT_FALSE(c.sources.wkd);  // opt-in: it makes HTTPS requests chosen by recipients' domains
  EXPECT_EQ(c.wkd_port, 443);
  EXPECT_TRUE(c.wkd_ca_file.empty());
  EXPECT_EQ(c.wkd_timeout, std::chrono::seconds(15));
}

TEST_F(ConfigTest, WkdTrustsDeliverysCaFileUnlessTold) {
  auto c = load_config(write(std::string(minimal) + "delivery:\n  ca_file: /etc/ssl/mine.pem\n")).crypto;
  EXPECT_EQ(c.wkd_ca_file, "/etc/ssl/mine.pem");
  c = load_config(write(std::string(minimal) + "delivery:\n  ca_file: /etc/ssl/mine.pem\n"
                        "crypto:\n  wkd_ca_file: /etc/ssl/wkd.pem\n  wkd_port: 8443\n  wkd_timeout: 5s\n"
                        "  sources: {wkd: true}\n"))
          .crypto;
  EXPECT_EQ(c.wkd_ca_file, "/etc/ssl/wkd.pem");
  EXPECT_EQ(c.wkd_port, 8443);
  EXPECT_EQ(c.wkd_timeout, std::chrono::seconds(5));
  EXPECT_TRUE(c.sources.wkd);
}

TEST_F(ConfigTest, CryptoSection) {
  auto c = load_config(write(std::string(minimal) +
                             "crypto:\n  gnupg_home: gnupg\n  smime_certificates: /etc/sealgate/certs\n"
                             "  smime_ca_file: ca.pem\n  pgp_signing_key: 0123456789ABCDEF0123456789abcdef01234567\n"
                             "  smime_signing_certificate: gw.pem\n  smime_signing_key: gw.key\n"
                             "  smime_cipher: aes-256-gcm\n  rsa_padding: pkcs1v15\n  subject: Encrypted message\n"
                             "  protected_headers: false\n  fold_plus_tag: true\n  dns_require_secure: false\n"
                             "  cache_ttl: 1h\n  sources: {keyring: false, dns_smimea: false}\n"))
               .crypto;
  EXPECT_EQ(c.gnupg_home, dir_ / "gnupg");
  EXPECT_EQ(c.smime_certificates, "/etc/sealgate/certs");
  EXPECT_EQ(c.smime_ca_file, dir_ / "ca.pem");
  EXPECT_EQ(c.pgp_signing_key, "0123456789ABCDEF0123456789abcdef01234567");
  EXPECT_EQ(c.smime_signing_certificate, dir_ / "gw.pem");
  EXPECT_EQ(c.smime_signing_key, dir_ / "gw.key");
  EXPECT_EQ(c.cipher, sealgate::crypto::smime_cipher::aes_256_gcm);
  EXPECT_EQ(c.padding, sealgate::crypto::rsa_padding::pkcs1v15);
  EXPECT_EQ(c.subject, "Encrypted message");
  EXPECT_FALSE(c.protected_headers);
  EXPECT_TRUE(c.fold_plus_tag);
  EXPECT_FALSE(c.dns_require_secure);
  EXPECT_EQ(c.cache_ttl, std::chrono::hours(1));
  EXPECT_FALSE(c.sources.keyring);
  EXPECT_TRUE(c.sources.smime_directory);
  EXPECT_TRUE(c.sources.dns_openpgpkey);
  EXPECT_FALSE(c.sources.dns_smimea);
}

TEST_F(ConfigTest, BadCryptoValues) {
  auto crypto = [&](const std::string& body) { return error_of(std::string(minimal) + "crypto:\n" + body); };
  EXPECT_EQ(crypto("  gnupg: x\n"),
            "sealgate.yaml:4:3: crypto.gnupg: unknown key; did you mean 'gnupg_home'? (valid: gnupg_home, "
            "smime_certificates, smime_ca_file, pgp_signing_key, smime_signing_certificate, smime_signing_key, "
            "smime_cipher, rsa_padding, subject, protected_headers, fold_plus_tag, sources, dns_require_secure, "
            "cache_ttl, wkd_port, wkd_ca_file, wkd_timeout)");
  EXPECT_EQ(crypto("  smime_cipher: aes-128-cbc\n"),
            "sealgate.yaml:4:17: crypto.smime_cipher: unknown value 'aes-128-cbc'; did you mean 'aes-256-cbc'? (valid: "
            "aes-256-cbc, aes-256-gcm)");
  EXPECT_EQ(crypto("  rsa_padding: none\n"),
            "sealgate.yaml:4:16: crypto.rsa_padding: unknown value 'none' (valid: oaep, pkcs1v15)");
  EXPECT_EQ(crypto("  pgp_signing_key: 6577B541ED52126C\n"),
            "sealgate.yaml:4:20: crypto.pgp_signing_key: must be a full fingerprint (40 or 64 hex digits)");
  EXPECT_EQ(crypto("  pgp_signing_key: gateway@example.org\n"),
            "sealgate.yaml:4:20: crypto.pgp_signing_key: must be a full fingerprint (40 or 64 hex digits)");
  EXPECT_EQ(crypto("  subject: \"a\\r\\nBcc: x@example.org\"\n"),
            "sealgate.yaml:4:12: crypto.subject: must be 1 to 200 printable ASCII characters");
  EXPECT_EQ(crypto("  subject: " + std::string(201, 'x') + "\n"),
            "sealgate.yaml:4:12: crypto.subject: must be 1 to 200 printable ASCII characters");
  EXPECT_EQ(crypto("  protected_headers: yes\n"), "sealgate.yaml:4:22: crypto.protected_headers: must be true or false");
  EXPECT_EQ(crypto("  protected_headers: [true]\n"), "sealgate.yaml:4:22: crypto.protected_headers: must be true or false");
  EXPECT_EQ(crypto("  fold_plus_tag: 1\n"), "sealgate.yaml:4:18: crypto.fold_plus_tag: must be true or false");
  EXPECT_EQ(crypto("  dns_require_secure: no\n"), "sealgate.yaml:4:23: crypto.dns_require_secure: must be true or false");
  EXPECT_EQ(crypto("  cache_ttl: 8d\n"),
            "sealgate.yaml:4:14: crypto.cache_ttl: must be a duration such as 30s, 5m, 1h or 2d (at least 1s, at most 7 days)");
  EXPECT_EQ(crypto("  gnupg_home: ''\n"), "sealgate.yaml:4:15: crypto.gnupg_home: must not be empty");
  EXPECT_EQ(crypto("  sources: {wdk: true}\n"),
            "sealgate.yaml:4:13: crypto.sources.wdk: unknown key (valid: keyring, smime_directory, dns_openpgpkey, dns_smimea, wkd)");
  EXPECT_EQ(crypto("  sources: {wkd: yes}\n"), "sealgate.yaml:4:18: crypto.sources.wkd: must be true or false");
  EXPECT_EQ(crypto("  wkd_port: 0\n"), "sealgate.yaml:4:13: crypto.wkd_port: must be a whole number from 1 to 65535");
  EXPECT_EQ(crypto("  sources: {keyring: maybe}\n"), "sealgate.yaml:4:22: crypto.sources.keyring: must be true or false");
  EXPECT_EQ(crypto("  sources: all\n"), "sealgate.yaml:4:12: crypto.sources: must be a mapping");
  EXPECT_EQ(crypto("  smime_signing_certificate: gw.pem\n"),
            "sealgate.yaml:4:3: crypto: smime_signing_certificate and smime_signing_key go together");
  EXPECT_EQ(error_of(std::string(minimal) + "crypto: [gnupg_home]\n"), "sealgate.yaml:3:9: crypto: must be a mapping");
}

TEST_F(ConfigTest, HostnameAndListenerNamesCannotInjectLines) {
  // Both go into the banner, the EHLO reply and every Received header: a CR
  // or LF there would let the configuration write protocol lines.
  EXPECT_EQ(error_of(std::string(minimal) + "hostname: \"gw.example\\r\\nX-Injected: yes\"\n"),
            "sealgate.yaml:3:11: hostname: must be a host name (letters, digits, '-' and '.')");
  EXPECT_EQ(error_of(std::string(minimal) + "hostname: \"gw.example\\n250 fake\"\n"),
            "sealgate.yaml:3:11: hostname: must be a host name (letters, digits, '-' and '.')");
  EXPECT_EQ(error_of(std::string(minimal) + "hostname: -bad.example\n"),
            "sealgate.yaml:3:11: hostname: must be a host name (letters, digits, '-' and '.')");
  EXPECT_EQ(error_of("listeners:\n  - {name: \"a\\r\\nX: y\", tls: none, auth: none}\n"),
            "sealgate.yaml:2:12: listeners[0].name: must be 1-64 letters, digits, '.', '_' or '-'");
  EXPECT_EQ(load_config(write(std::string(minimal) + "hostname: mx-1.gw.example\n")).hostname, "mx-1.gw.example");
}

TEST_F(ConfigTest, DuplicateKeysAndAliasBombsAreRefused) {
  EXPECT_EQ(error_of(std::string(minimal) + "spool: /a\nspool: /b\n"),
            "sealgate.yaml:4:1: duplicate key 'spool' (first at line 3, column 1)");
  std::string bomb = "x0: &x0 [a, a, a, a, a, a, a, a, a, a]\n";
  for (int i = 1; i <= 9; ++i) {
    bomb += "x" + std::to_string(i) + ": &x" + std::to_string(i) + " [";
    for (int k = 0; k < 10; ++k) bomb += (k ? ", *x" : "*x") + std::to_string(i - 1);
    bomb += "]\n";
  }
  auto msg = error_of(bomb);
  EXPECT_NE(msg.find("aliases expand to more than 100000 nodes"), std::string::npos) << msg;
}

// A directory opens like a file but reads as nothing: it must not load as an
// empty document (a gateway of defaults, or a policy without rules).
TEST_F(ConfigTest, ADirectoryIsNotAnEmptyConfiguration) {
  auto d = dir_ / "conf.d";
  std::filesystem::create_directory(d);
  try {
    load_config(d);
    FAIL() << "a directory loaded as a configuration";
  } catch (const config_error& e) {
    EXPECT_EQ(std::string(e.what()), d.string() + ": cannot read file");
  }
}

// PROXY protocol v2 on a listener: only with the load balancers named, 5 s by default.
TEST_F(ConfigTest, ProxyProtocolNeedsProxyFrom) {
  auto c = load_config(write("listeners:\n  - {name: mx, tls: none, auth: none, proxy_protocol: true,\n"
                             "     proxy_from: [10.0.0.5/32, 'fd00::/8']}\n  - {name: direct, tls: none, auth: none}\n"));
  ASSERT_EQ(c.listeners.size(), 2u);
  EXPECT_TRUE(c.listeners[0].proxy_protocol);
  ASSERT_EQ(c.listeners[0].proxy_from.size(), 2u);
  EXPECT_TRUE(sealgate::in_any(c.listeners[0].proxy_from, boost::asio::ip::make_address("10.0.0.5")));
  EXPECT_FALSE(sealgate::in_any(c.listeners[0].proxy_from, boost::asio::ip::make_address("10.0.0.6")));
  EXPECT_EQ(c.listeners[0].proxy_timeout, std::chrono::seconds(5));
  EXPECT_FALSE(c.listeners[1].proxy_protocol);

  EXPECT_EQ(error_of("listeners:\n  - {name: mx, tls: none, auth: none, proxy_protocol: true}\n"),
            "sealgate.yaml:2:55: listeners[0].proxy_protocol: needs proxy_from: the load balancers' addresses (CIDR), "
            "the only peers allowed to name the client");
  EXPECT_EQ(error_of("listeners:\n  - {name: mx, tls: none, auth: none, proxy_protocol: true, proxy_from: []}\n"),
            "sealgate.yaml:2:73: listeners[0].proxy_from: must name at least one network");
  EXPECT_EQ(error_of("listeners:\n  - {name: mx, tls: none, auth: none, proxy_protocol: true, proxy_from: 10.0.0.5}\n"),
            "sealgate.yaml:2:73: listeners[0].proxy_from: must be a list of CIDR networks");
  EXPECT_EQ(error_of("listeners:\n  - {name: mx, tls: none, auth: none, proxy_protocol: true, proxy_from: [10.0.0.5/8]}\n"),
            "sealgate.yaml:2:74: listeners[0].proxy_from[0]: '10.0.0.5/8' is not a CIDR network: host bits set below "
            "the prefix length");
  EXPECT_EQ(error_of("listeners:\n  - {name: mx, tls: none, auth: none, proxy_from: [10.0.0.5]}\n"),
            "sealgate.yaml:2:51: listeners[0].proxy_from: has no effect without proxy_protocol: true");
  EXPECT_EQ(error_of("listeners:\n  - {name: mx, tls: none, auth: none, proxy_protocol: yes, proxy_from: [10.0.0.5]}\n"),
            "sealgate.yaml:2:55: listeners[0].proxy_protocol: must be true or false");
  EXPECT_EQ(error_of("listeners:\n  - {name: mx, tls: none, auth: none, proxy_protocol: true, proxy_from: [10.0.0.5],"
                     " proxy_timeout: 0}\n"),
            "sealgate.yaml:2:100: listeners[0].proxy_timeout: must be a duration such as 30s, 5m, 1h or 2d (at least 1s, at "
            "most 7 days)");
}

// portal: defaults where they belong, and every mistake in a template or a
// value refused with its position before anything is sent.
TEST_F(ConfigTest, PortalSectionGetsDefaultsBesideTheDatabaseAndSpool) {
  auto c = load_config(write(std::string(minimal) +
                             "database: db/sealgate.db\nspool: sp\ntls: {certificate: c.pem, private_key: k.pem}\n"
                             "portal: {base_url: \"https://secure.example.org/\", expire: 90d}\n"));
  EXPECT_TRUE(c.portal.configured);
  EXPECT_EQ(c.portal.base_url, "https://secure.example.org");
  EXPECT_EQ(c.portal.store.file, dir_ / "db" / "portal.db");
  EXPECT_EQ(c.portal.outbox_key, dir_ / "sp" / "portal-outbox.key");
  EXPECT_EQ(c.portal.certificate, dir_ / "c.pem");
  EXPECT_EQ(c.portal.expire, std::chrono::seconds(90 * 86400));
  EXPECT_EQ(c.portal.codes.max_failures, 5);
  EXPECT_FALSE(load_config(write(minimal)).portal.configured);
}

TEST_F(ConfigTest, PortalMistakesAreRefusedWithTheirPosition) {
  std::string base = std::string(minimal) + "tls: {certificate: c.pem, private_key: k.pem}\n";
  EXPECT_EQ(error_of(base + "portal:\n  base_url: https://p.example\n  notification: {text: \"see {lnk}\"}\n"),
            "sealgate.yaml:6:24: portal.notification.text: unknown placeholder 'lnk'; did you mean 'link'? "
            "(valid: sender, sender_name, recipient, link, expires, organisation)");
  EXPECT_EQ(error_of(base + "portal:\n  base_url: https://p.example\n  code: {subject: \"code {code\"}\n"),
            "sealgate.yaml:6:19: portal.code.subject: has a '{' without its '}' (write {{ for a brace)");
  EXPECT_EQ(error_of(base + "portal: {base_url: \"http://p.example\"}\n"),
            "sealgate.yaml:4:20: portal.base_url: must be an https:// URL without spaces (the links point there)");
  EXPECT_EQ(error_of(base + "portal: {expire: 30d}\n"),
            "sealgate.yaml:4:9: portal.base_url: is needed: the https:// address recipients open (e.g. "
            "https://portal.example.org)");
  EXPECT_EQ(error_of(base + "portal: {base_url: \"https://p.example\", from: \"a b@c\"}\n"),
            "sealgate.yaml:4:47: portal.from: must be a plain mail address (user@domain)");
  EXPECT_EQ(error_of(std::string(minimal) + "portal: {base_url: \"https://p.example\"}\n"),
            "sealgate.yaml:3:9: portal: certificate and private_key are needed (the portal serves HTTPS only)");
  EXPECT_EQ(error_of("listeners:\n  - {name: portal, tls: none, auth: none}\n"),
            "sealgate.yaml:2:12: listeners[0].name: 'portal' is reserved for mail the gateway writes itself");
  EXPECT_EQ(error_of(base + "portal: {base_url: \"https://p.example\", trusted_proxies: [10.0.0.5, 10.0.0.0/33]}\n"),
            "sealgate.yaml:4:69: portal.trusted_proxies[1]: '10.0.0.0/33' is not a CIDR network: bad prefix length");
  auto c = load_config(write(base + "portal: {base_url: \"https://p.example\", trusted_proxies: [10.0.0.5]}\n"));
  ASSERT_EQ(c.portal.trusted_proxies.size(), 1u);
  EXPECT_EQ(c.portal.trusted_proxies[0].to_string(), "10.0.0.5/32");
}
