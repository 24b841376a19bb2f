// Inbound ESMTP state machine; see smtp_protocol.hpp. Replies follow Postfix's
// wording where one exists, so operators recognise them in client logs.
#include "gateway/inbound/smtp_protocol.hpp"

#include <ctime>

#include "common/metrics.hpp"
#include "common/text.hpp"

namespace sealgate::gateway {

smtp_protocol::smtp_protocol(connection_facts facts, protocol_limits limits)
    : facts_(std::move(facts)), limits_(limits) {}

smtp_protocol::step smtp_protocol::reply(int code, std::string_view status, std::string_view text, action next) {
  step s;
  s.next = next;
  // Multi-line replies: text lines separated by '\n' become "250-" continuation lines.
  size_t start = 0;
  while (true) {
    size_t nl = text.find('\n', start);
    bool last = nl == std::string_view::npos;
    s.output += std::to_string(code);
    s.output += last ? ' ' : '-';
    if (!status.empty()) {
      s.output += status;
      s.output += ' ';
    }
    s.output += text.substr(start, last ? std::string_view::npos : nl - start);
    s.output += "\r\n";
    if (last) break;
    start = nl + 1;
  }
  return s;
}

smtp_protocol::step smtp_protocol::error(int code, std::string_view status, std::string_view text) {
  step s = reply(code, status, text);
  if (++errors_ >= limits_.errors) {
    s.output += "421 4.7.0 " + facts_.hostname + " Error: too many errors\r\n";
    s.next = action::close;
  }
  return s;
}

smtp_protocol::step smtp_protocol::greeting() {
  return reply(220, "", facts_.hostname + " ESMTP sealgate");
}

smtp_protocol::step smtp_protocol::on_timeout() {
  return reply(421, "4.4.2", facts_.hostname + " Error: timeout exceeded", action::close);
}

smtp_protocol::step smtp_protocol::on_shutdown() {
  return reply(421, "4.3.2", facts_.hostname + " Service shutting down, closing transmission channel", action::close);
}

smtp_protocol::step smtp_protocol::on_line_too_long() {
  if (auth_step_ != auth_step::none) {
    auth_step_ = auth_step::none;
    return error(500, "5.5.6", "Authentication exchange line is too long");
  }
  return error(500, "5.5.2", "Error: line too long");
}

bool smtp_protocol::auth_offered() const {
  // RFC 4954 4 and our policy: passwords only ever travel inside TLS.
  return facts_.auth != listener_auth::none && facts_.tls_active;
}

void smtp_protocol::reset_transaction() {
  tx_ = envelope{};
  recipient_overshoot_ = 0;
  if (phase_ == phase::in_mail) phase_ = phase::ready;
}

void smtp_protocol::forget_credentials() {
  // Overwrite before release: the password should not linger in freed memory.
  std::fill(pending_.password.begin(), pending_.password.end(), '\0');
  pending_ = credentials{};
}

smtp_protocol::step smtp_protocol::on_line(std::string_view line) {
  if (auth_step_ != auth_step::none) return on_auth_line(line);
  return on_command(line);
}

smtp_protocol::step smtp_protocol::on_command(std::string_view line) {
  for (unsigned char c : line)
    if (c == 0 || c == '\r') return error(500, "5.5.2", "Error: bad character in command");
  command_line cmd = split_command(line);
  const std::string& v = cmd.verb;
  if (v == "EHLO") return cmd_ehlo(cmd.args, true);
  if (v == "HELO") return cmd_ehlo(cmd.args, false);
  if (v == "MAIL") return cmd_mail(cmd.args);
  if (v == "RCPT") return cmd_rcpt(cmd.args);
  if (v == "DATA") return cmd_data(cmd.args);
  if (v == "RSET") {
    if (!cmd.args.empty()) return error(501, "5.5.4", "Syntax: RSET");
    reset_transaction();
    return reply(250, "2.0.0", "Ok");
  }
  if (v == "NOOP") return reply(250, "2.0.0", "Ok");
  if (v == "QUIT") return reply(221, "2.0.0", "Bye", action::close);
  if (v == "HELP") return reply(214, "2.0.0", "See RFC 5321; commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT STARTTLS AUTH");
  if (v == "VRFY") return reply(252, "2.5.2", "Cannot VRFY user, but will accept message and attempt delivery");
  if (v == "EXPN") return error(502, "5.5.1", "EXPN not implemented");
  if (v == "STARTTLS") return cmd_starttls(cmd.args);
  if (v == "AUTH") return cmd_auth(cmd.args);
  return error(500, "5.5.2", "Error: command not recognized");
}

smtp_protocol::step smtp_protocol::cmd_ehlo(std::string_view args, bool extended) {
  while (!args.empty() && args.back() == ' ') args.remove_suffix(1);
  if (args.empty()) return error(501, "5.5.4", extended ? "Syntax: EHLO hostname" : "Syntax: HELO hostname");
  std::string_view name = args.substr(0, args.find(' '));
  // RFC 5321 4.1.1.1 wants a domain or an address literal; many clients send a
  // bare host name, so we take any name but refuse what would corrupt our headers.
  if (name.size() > 255 || name.find_first_of("<>\"\\()") != std::string_view::npos)
    return error(501, "5.5.2", "Invalid hostname");
  helo_ = std::string(name);
  esmtp_ = extended;
  reset_transaction();
  phase_ = phase::ready;
  if (!extended) return reply(250, "", facts_.hostname);
  std::string text = facts_.hostname;
  text += "\nPIPELINING\nSIZE " + std::to_string(limits_.message_size);
  text += "\n8BITMIME\nSMTPUTF8\nENHANCEDSTATUSCODES\nDSN";
  if (facts_.tls == listener_tls::starttls && !facts_.tls_active) text += "\nSTARTTLS";
  // RFC 8689 4.1: REQUIRETLS is only meaningful over TLS, so it is offered
  // (and accepted) only once the session is encrypted.
  if (facts_.tls_active) text += "\nREQUIRETLS";
  if (auth_offered() && authenticated_.empty()) text += "\nAUTH PLAIN LOGIN";
  return reply(250, "", text);
}

smtp_protocol::step smtp_protocol::cmd_mail(std::string_view args) {
  if (phase_ == phase::need_helo) return error(503, "5.5.1", "Error: send HELO/EHLO first");
  if (phase_ == phase::in_mail) return error(503, "5.5.1", "Error: nested MAIL command");
  auto parsed = parse_mail_from(args);
  if (!parsed.value) return error(parsed.error.code, parsed.error.status, parsed.error.text);
  auto& m = *parsed.value;
  if (!esmtp_ && (m.params.size || !m.params.body.empty() || m.params.smtputf8 || !m.params.ret.empty() || !m.params.envid.empty() ||
                  m.params.requiretls))
    return error(555, "5.5.4", "Parameters require EHLO");
  if (m.params.requiretls && !facts_.tls_active)
    return error(530, "5.7.10", "REQUIRETLS needs a TLS session; use STARTTLS first");
  if (m.params.size && *m.params.size > limits_.message_size)
    return error(552, "5.3.4", "Message size exceeds fixed limit");
  tx_ = envelope{};
  recipient_overshoot_ = 0;
  tx_.helo = helo_;
  tx_.sender = std::move(m.sender);
  tx_.params = std::move(m.params);
  tx_.auth_user = authenticated_;
  phase_ = phase::in_mail;
  return reply(250, "2.1.0", "Ok");
}

smtp_protocol::step smtp_protocol::cmd_rcpt(std::string_view args) {
  if (phase_ != phase::in_mail) return error(503, "5.5.1", "Error: need MAIL command");
  auto parsed = parse_rcpt_to(args, tx_.params.smtputf8);
  if (!parsed.value) return error(parsed.error.code, parsed.error.status, parsed.error.text);
  // Relay authorization: this gateway has no local recipients, so every RCPT is
  // a relay request. Authenticated clients and listed networks only.
  if (authenticated_.empty() && facts_.auth == listener_auth::required) {
    metrics::get().refused(facts_.listener, metrics::refusal::auth_required);
    return error(530, "5.7.0", "Authentication required");
  }
  if (tx_.relay_class.empty()) {
    // The class is decided once per transaction: the client, its
    // certificate, its AUTH user and the envelope sender are known by now.
    static const std::vector<relay_class> none;
    relay_client client{facts_.client_ip, facts_.client_may_relay,
                        facts_.tls_active ? &client_certificate_ : nullptr, authenticated_, tx_.sender};
    auto match = match_relay(facts_.relay_classes ? *facts_.relay_classes : none, client);
    if (!match) {
      metrics::get().refused(facts_.listener, metrics::refusal::relay_denied);
      return error(554, "5.7.1", "<" + parsed.value->recipient + ">: Relay access denied");
    }
    tx_.relay_class = match->name;
    tx_.relay_rule = match->cls;
  }
  if (tx_.recipients.size() >= limits_.recipients) {
    // RFC 5321 4.5.3.1.10: the client is to send the rest in a later
    // transaction, so an over-limit 452 is no client error; counting it would
    // end in 421 and lose the recipients already taken. Only a client that
    // overshoots by another limit's worth is counted (Postfix's
    // smtpd_recipient_overshoot_limit).
    if (++recipient_overshoot_ > limits_.recipients) return error(452, "4.5.3", "Error: too many recipients");
    return reply(452, "4.5.3", "Error: too many recipients");
  }
  tx_.recipients.push_back(std::move(*parsed.value));
  return reply(250, "2.1.5", "Ok");
}

smtp_protocol::step smtp_protocol::cmd_data(std::string_view args) {
  if (!args.empty()) return error(501, "5.5.4", "Syntax: DATA");
  if (phase_ != phase::in_mail) return error(503, "5.5.1", "Error: need MAIL command");
  if (tx_.recipients.empty()) return error(554, "5.5.1", "Error: no valid recipients");
  return reply(354, "", "End data with <CR><LF>.<CR><LF>", action::receive_data);
}

smtp_protocol::step smtp_protocol::data_done(const data_result& r) {
  auto& m = metrics::get();
  if (r.bare_newline) m.refused(facts_.listener, metrics::refusal::bare_newline);
  else if (r.too_big) m.refused(facts_.listener, metrics::refusal::size);
  else if (r.line_too_long) m.refused(facts_.listener, metrics::refusal::line_length);
  else if (r.refused) m.refused(facts_.listener, r.refused->code == 554 ? metrics::refusal::loop : metrics::refusal::tenant_pin);
  else if (r.spool_failed) m.refused(facts_.listener, metrics::refusal::spool_error);
  else m.accepted(facts_.listener);
  step s;
  if (r.bare_newline) {
    // Anything after a bare CR or LF may be a smuggled second message: reply and
    // hang up rather than guess where the content ends (as Postfix 3.9 does).
    s = reply(554, "5.5.2", "Error: bare <CR> or <LF> received in message content; closing", action::close);
  } else if (r.too_big) {
    s = error(552, "5.3.4", "Message size exceeds fixed limit");
  } else if (r.line_too_long) {
    s = error(554, "5.6.0", "Message has a line longer than " + std::to_string(limits_.data_line_length) +
                                " characters (RFC 5322 2.1.1)");
  } else if (r.refused) {
    s = error(r.refused->code, r.refused->status, r.refused->text);
  } else if (r.spool_failed) {
    s = error(451, "4.3.0", "Error: queue file write error");
  } else {
    s = reply(250, "2.0.0", "Ok: queued as " + r.queue_id);
  }
  reset_transaction();
  return s;
}

smtp_protocol::step smtp_protocol::cmd_starttls(std::string_view args) {
  if (facts_.tls != listener_tls::starttls || facts_.tls_active) return error(502, "5.5.1", "Error: command not implemented");
  if (!args.empty()) return error(501, "5.5.4", "Syntax: STARTTLS");
  return reply(220, "2.0.0", "Ready to start TLS", action::start_tls);
}

smtp_protocol::step smtp_protocol::tls_started(std::string protocol_name, std::string cipher, int secret_bits,
                                               int algorithm_bits) {
  // RFC 3207 4.2: forget everything learned before the handshake.
  facts_.tls_active = true;
  tls_protocol_ = std::move(protocol_name);
  tls_cipher_ = std::move(cipher);
  tls_secret_bits_ = secret_bits;
  tls_algorithm_bits_ = algorithm_bits;
  helo_.clear();
  esmtp_ = false;
  reset_transaction();
  phase_ = phase::need_helo;
  return step{};
}

smtp_protocol::step smtp_protocol::cmd_auth(std::string_view args) {
  if (facts_.auth == listener_auth::none) return error(502, "5.5.1", "Error: authentication not enabled");
  if (!facts_.tls_active) return error(538, "5.7.11", "Encryption required for requested authentication mechanism");
  if (phase_ == phase::need_helo) return error(503, "5.5.1", "Error: send EHLO first");
  if (!authenticated_.empty()) return error(503, "5.5.1", "Error: already authenticated");
  if (phase_ == phase::in_mail) return error(503, "5.5.1", "Error: MAIL transaction in progress");
  auto sp = args.find(' ');
  std::string mech(args.substr(0, sp));
  for (auto& c : mech) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  std::string_view initial = sp == std::string_view::npos ? std::string_view{} : args.substr(sp + 1);
  if (mech == "PLAIN") {
    if (initial.empty()) {
      auth_step_ = auth_step::plain_response;
      return reply(334, "", "");
    }
    return finish_plain(initial);
  }
  if (mech == "LOGIN") {
    if (!initial.empty()) {
      // RFC 4954 allows an initial response; for LOGIN it is the user name.
      bool ok = false;
      pending_.user = sealgate::base64_decode(initial == "=" ? "" : initial, ok);
      if (!ok) return error(501, "5.5.2", "Error: cannot decode response");
      auth_step_ = auth_step::login_password;
      return reply(334, "", "UGFzc3dvcmQ6");
    }
    auth_step_ = auth_step::login_user;
    return reply(334, "", "VXNlcm5hbWU6");
  }
  return error(504, "5.5.4", "Error: unsupported authentication mechanism");
}

smtp_protocol::step smtp_protocol::finish_plain(std::string_view b64) {
  bool ok = false;
  std::string decoded = sealgate::base64_decode(b64 == "=" ? "" : b64, ok);
  if (!ok) return error(501, "5.5.2", "Error: cannot decode response");
  // authzid NUL authcid NUL passwd (RFC 4616 2)
  auto n1 = decoded.find('\0');
  auto n2 = n1 == std::string::npos ? std::string::npos : decoded.find('\0', n1 + 1);
  if (n2 == std::string::npos) {
    std::fill(decoded.begin(), decoded.end(), '\0');
    return error(501, "5.5.2", "Error: malformed PLAIN response");
  }
  std::string authzid = decoded.substr(0, n1);
  pending_.user = decoded.substr(n1 + 1, n2 - n1 - 1);
  pending_.password = decoded.substr(n2 + 1);
  std::fill(decoded.begin(), decoded.end(), '\0');
  if (!authzid.empty() && authzid != pending_.user) {
    forget_credentials();
    return error(535, "5.7.8", "Error: authentication failed: authorization identity not allowed");
  }
  return step{action::verify_auth, {}};
}

smtp_protocol::step smtp_protocol::on_auth_line(std::string_view line) {
  auth_step current = auth_step_;
  auth_step_ = auth_step::none;
  if (line == "*") {
    forget_credentials();
    return error(501, "5.0.0", "Authentication aborted");
  }
  if (current == auth_step::plain_response) return finish_plain(line);
  bool ok = false;
  std::string decoded = sealgate::base64_decode(line == "=" ? "" : line, ok);
  if (!ok) {
    forget_credentials();
    return error(501, "5.5.2", "Error: cannot decode response");
  }
  if (current == auth_step::login_user) {
    pending_.user = std::move(decoded);
    auth_step_ = auth_step::login_password;
    return reply(334, "", "UGFzc3dvcmQ6");
  }
  pending_.password = std::move(decoded);
  return step{action::verify_auth, {}};
}

smtp_protocol::step smtp_protocol::auth_result(bool ok) {
  std::string user = pending_.user;
  forget_credentials();
  if (!ok) return error(535, "5.7.8", "Error: authentication failed");
  authenticated_ = std::move(user);
  return reply(235, "2.7.0", "Authentication successful");
}

smtp_protocol::step smtp_protocol::auth_throttled() {
  forget_credentials();
  return error(454, "4.7.0", "Temporary authentication failure: too many failed attempts, try again later");
}

std::string received_header(const smtp_protocol& s, std::string_view queue_id, std::string_view date) {
  const auto& f = s.facts();
  const auto& tx = s.transaction();
  // RFC 3848 protocol names say whether TLS (S) and AUTH (A) were used.
  std::string with = s.esmtp() ? "ESMTP" : "SMTP";
  if (s.esmtp() && s.tls_active()) with += "S";
  if (s.esmtp() && !tx.auth_user.empty()) with += "A";
  if (tx.params.smtputf8) with = "UTF8" + with.substr(1);  // RFC 6531 3.7.3: UTF8SMTP[S][A]
  std::string h = "Received: from " + tx.helo + " (unknown [" + f.client_address + "])\r\n";
  h += "\tby " + f.hostname + " (sealgate) with " + with + " id " + std::string(queue_id) + "\r\n";
  h += "\t(listener " + f.listener + (tx.auth_user.empty() ? ", not authenticated)" : ", authenticated)") + "\r\n";
  if (s.tls_active())
    h += "\t(using " + s.tls_protocol() + " with cipher " + s.tls_cipher() + " (" + std::to_string(s.tls_secret_bits()) +
         "/" + std::to_string(s.tls_algorithm_bits()) + " bits))\r\n";
  h += "\t; " + std::string(date) + "\r\n";
  return h;
}

}  // namespace sealgate::gateway
