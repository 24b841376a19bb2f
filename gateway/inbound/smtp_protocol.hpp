// The inbound ESMTP state machine (RFC 5321, 3207 STARTTLS, 4954 AUTH, 1870
// SIZE, 2920 PIPELINING, 3461 DSN, 6531 SMTPUTF8) without any I/O: the session
// feeds it lines and events and carries out the action it returns. Keeping it
// sans-I/O lets unit tests drive every reply exactly.
#pragma once
#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/config/config.hpp"
#include "gateway/inbound/relay_access.hpp"
#include "gateway/mail/headers.hpp"
#include "gateway/mail/smtp_syntax.hpp"

namespace sealgate::gateway {

struct protocol_limits {
  uint64_t message_size = 25 * 1024 * 1024;
  size_t recipients = 1000;
  unsigned errors = 10;
  size_t data_line_length = 998;  // named in the reply that refuses a longer line
};

// What the session knows when the connection opens.
struct connection_facts {
  std::string hostname;  // ours, for the banner and replies
  std::string listener;
  listener_tls tls = listener_tls::none;
  listener_auth auth = listener_auth::none;
  std::string client_address;  // "127.0.0.1"
  boost::asio::ip::address client_ip;
  bool client_may_relay = false;  // in relay.networks
  const std::vector<relay_class>* relay_classes = nullptr;  // relay.classes; null: none
  bool tls_active = false;        // already true on implicit-TLS listeners after the handshake
};

struct envelope {
  std::string helo;
  std::string sender;
  mail_parameters params;
  std::vector<parsed_rcpt> recipients;
  std::string auth_user;  // empty when not authenticated
  std::string relay_class;            // the class that let it relay (decided at the first RCPT)
  const gateway::relay_class* relay_rule = nullptr;  // its configuration; null for networks and auth
};

struct data_result {
  bool bare_newline = false;
  bool too_big = false;
  bool line_too_long = false;
  bool spool_failed = false;
  std::optional<content_refusal> refused;  // by the header checks (relay_access.hpp): nothing stored
  std::string queue_id;
};

class smtp_protocol {
 public:
  enum class action {
    read_line,       // send output, read the next line (command or AUTH response)
    start_tls,       // send output (220), then handshake; then call tls_started
    verify_auth,     // check credentials() then call auth_result
    receive_data,    // send output (354), read the content, then call data_done
    close,           // send output, then close the connection
  };
  struct step {
    action next = action::read_line;
    std::string output;  // reply lines, CRLF-terminated; may be empty
  };

  smtp_protocol(connection_facts facts, protocol_limits limits);

  step greeting();
  step on_line(std::string_view line);
  step on_line_too_long();
  step on_timeout();
  // The gateway is stopping: 421, then close (RFC 5321 3.8).
  step on_shutdown();
  step tls_started(std::string protocol_name, std::string cipher, int secret_bits, int algorithm_bits);
  step auth_result(bool ok);
  // The client's certificate, once the handshake is done (before tls_started).
  void set_client_certificate(client_certificate c) { client_certificate_ = std::move(c); }
  const client_certificate& peer_certificate() const { return client_certificate_; }
  // The credentials were not checked: this client or user failed too often
  // lately (RFC 4954 6: 454 4.7.0, try again later). Counts as an error.
  step auth_throttled();
  step data_done(const data_result& result);

  struct credentials {
    std::string user;
    std::string password;
  };
  const credentials& pending_credentials() const { return pending_; }
  void forget_credentials();

  const envelope& transaction() const { return tx_; }
  const connection_facts& facts() const { return facts_; }
  bool tls_active() const { return facts_.tls_active; }
  const std::string& tls_protocol() const { return tls_protocol_; }
  const std::string& tls_cipher() const { return tls_cipher_; }
  // "(256/256 bits)" values for the Received header.
  int tls_secret_bits() const { return tls_secret_bits_; }
  int tls_algorithm_bits() const { return tls_algorithm_bits_; }
  bool esmtp() const { return esmtp_; }

 private:
  step reply(int code, std::string_view status, std::string_view text, action next = action::read_line);
  step error(int code, std::string_view status, std::string_view text);
  step on_command(std::string_view line);
  step on_auth_line(std::string_view line);
  step cmd_ehlo(std::string_view args, bool extended);
  step cmd_mail(std::string_view args);
  step cmd_rcpt(std::string_view args);
  step cmd_data(std::string_view args);
  step cmd_auth(std::string_view args);
  step cmd_starttls(std::string_view args);
  step finish_plain(std::string_view base64);
  void reset_transaction();
  bool auth_offered() const;

  connection_facts facts_;
  protocol_limits limits_;
  enum class phase { need_helo, ready, in_mail } phase_ = phase::need_helo;
  enum class auth_step { none, plain_response, login_user, login_password } auth_step_ = auth_step::none;
  envelope tx_;
  std::string helo_;
  bool esmtp_ = false;
  std::string authenticated_;
  credentials pending_;
  unsigned errors_ = 0;
  size_t recipient_overshoot_ = 0;  // RCPTs refused with 452 in this transaction for the recipient limit
  std::string tls_protocol_, tls_cipher_;
  client_certificate client_certificate_;
  int tls_secret_bits_ = 0, tls_algorithm_bits_ = 0;
};

// The Received: header (RFC 5321 4.4) for one message, folded, CRLF-terminated.
// Says how this hop went: client, listener, whether AUTH and TLS were used.
// Never names the authenticated user (that is the audit database's job).
std::string received_header(const smtp_protocol& session, std::string_view queue_id, std::string_view rfc5322_date);


}  // namespace sealgate::gateway
