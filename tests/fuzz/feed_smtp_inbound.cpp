// fuzz_smtp_inbound: a client's whole conversation with the inbound state
// machine (gateway/smtp_protocol, gateway/smtp_syntax), driven the way
// gateway/server.cpp drives it: lines, STARTTLS, AUTH, DATA through the real
// data_reader. Checks the promises an attacker would probe: AUTH only inside
// TLS, no relaying without AUTH or a listed network, every reply well formed.
#include <string>
#include <string_view>

#include "gateway/inbound/data_reader.hpp"
#include "gateway/inbound/smtp_protocol.hpp"
#include "tests/fuzz/fuzz_input.hpp"
#include "tests/fuzz/fuzz_parsers.hpp"

namespace sealgate::fuzz {
namespace {

using gateway::smtp_protocol;

// "NNN-text" / "NNN text" lines with CRLF and nothing else: a CR or LF that
// leaked from a command into a reply would let a client forge replies.
void check_output(std::string_view out, parse_counts& counts) {
  size_t start = 0;
  while (start < out.size()) {
    size_t eol = out.find("\r\n", start);
    SEALGATE_FUZZ_CHECK(eol != std::string_view::npos);
    std::string_view line = out.substr(start, eol - start);
    SEALGATE_FUZZ_CHECK(line.size() >= 4 && line[0] >= '2' && line[0] <= '5' && line[1] >= '0' && line[1] <= '9' &&
                        line[2] >= '0' && line[2] <= '9' && (line[3] == ' ' || line[3] == '-'));
    SEALGATE_FUZZ_CHECK(line.find_first_of("\r\n") == std::string_view::npos);
    if (line[0] >= '4') ++counts.inbound_refused;
    start = eol + 2;
  }
}

}  // namespace

void feed_smtp_inbound(const uint8_t* data, size_t size, parse_counts& counts) {
  input_cursor in(data, size);
  // The listener and client, as gateway/server.cpp learns them on accept.
  uint8_t setup = in.byte();
  gateway::connection_facts facts;
  facts.hostname = "gateway.example.org";
  facts.listener = "smarthost";
  facts.client_address = "192.0.2.7";
  const gateway::listener_tls tls_modes[] = {gateway::listener_tls::none, gateway::listener_tls::starttls,
                                             gateway::listener_tls::implicit, gateway::listener_tls::starttls};
  const gateway::listener_auth auth_modes[] = {gateway::listener_auth::none, gateway::listener_auth::optional,
                                               gateway::listener_auth::required, gateway::listener_auth::optional};
  facts.tls = tls_modes[setup & 3];
  facts.auth = auth_modes[(setup >> 2) & 3];
  facts.client_may_relay = setup & 0x10;
  facts.tls_active = facts.tls == gateway::listener_tls::implicit;
  gateway::protocol_limits limits;
  size_t command_line_length = 2048;
  if (setup & 0x20) {  // limits the fuzzer can reach
    limits.message_size = 64;
    limits.recipients = 3;
    limits.errors = 4;
    limits.data_line_length = 20;
    command_line_length = 80;
  }
  const bool spool_fails = setup & 0x40;

  smtp_protocol session(facts, limits);
  smtp_protocol::step step = session.greeting();
  for (unsigned steps = 0; steps < 10000; ++steps) {
    check_output(step.output, counts);
    const auto& tx = session.transaction();
    SEALGATE_FUZZ_CHECK(tx.recipients.size() <= limits.recipients);
    // RFC 8689 4.1: REQUIRETLS is taken only over TLS.
    SEALGATE_FUZZ_CHECK(!tx.params.requiretls || session.tls_active());
    SEALGATE_FUZZ_CHECK(!tx.params.size || *tx.params.size <= limits.message_size);
    switch (step.next) {
      case smtp_protocol::action::close:
        return;
      case smtp_protocol::action::start_tls:
        SEALGATE_FUZZ_CHECK(facts.tls == gateway::listener_tls::starttls && !session.tls_active());
        step = session.tls_started("TLSv1.3", "TLS_AES_256_GCM_SHA384", 256, 256);
        // RFC 3207 4.2: nothing learned before the handshake survives it.
        SEALGATE_FUZZ_CHECK(session.transaction().sender.empty() && session.transaction().recipients.empty() &&
                            !session.esmtp());
        continue;
      case smtp_protocol::action::verify_auth: {
        // RFC 4954 4 and our policy: passwords only ever travel inside TLS.
        SEALGATE_FUZZ_CHECK(session.tls_active() && facts.auth != gateway::listener_auth::none);
        ++counts.inbound_auth;
        const auto& c = session.pending_credentials();
        // The server checks the password, or refuses to while this client or
        // user is throttled (the user "mallory" stands for that here).
        if (c.user == "mallory") step = session.auth_throttled();
        else step = session.auth_result(c.user == "alice" && c.password == "secret");
        SEALGATE_FUZZ_CHECK(session.pending_credentials().user.empty() && session.pending_credentials().password.empty());
        continue;
      }
      case smtp_protocol::action::receive_data: {
        // Relay authorization: this gateway has no local recipients.
        SEALGATE_FUZZ_CHECK(!tx.recipients.empty());
        SEALGATE_FUZZ_CHECK(!tx.auth_user.empty() ||
                            (facts.client_may_relay && facts.auth != gateway::listener_auth::required));
        std::string received = gateway::received_header(session, "4Xq7Zb2cKmz1", "Tue, 24 Nov 2026 10:00:00 +0000");
        SEALGATE_FUZZ_CHECK(!has_bare_newline(received) && received.size() >= 2 &&
                            received.compare(received.size() - 2, 2, "\r\n") == 0);
        gateway::data_reader reader(limits.message_size, limits.data_line_length);
        std::string content;
        size_t used = reader.feed(in.rest(), content);
        in.skip(used);
        if (reader.state() == gateway::data_reader::status::reading) return;  // the client went away
        gateway::data_result result;
        result.bare_newline = reader.state() == gateway::data_reader::status::bare_newline;
        result.too_big = reader.too_big();
        result.line_too_long = reader.line_too_long();
        bool refused = result.bare_newline || result.too_big || result.line_too_long;
        result.spool_failed = !refused && spool_fails;
        if (!refused && !spool_fails) result.queue_id = "4Xq7Zb2cKmz1";
        step = session.data_done(result);
        if (!result.queue_id.empty()) {
          SEALGATE_FUZZ_CHECK(step.output.rfind("250 ", 0) == 0);
          ++counts.inbound_accepted;
        }
        SEALGATE_FUZZ_CHECK(!result.bare_newline || step.next == smtp_protocol::action::close);
        continue;
      }
      case smtp_protocol::action::read_line:
        break;
    }
    if (in.empty()) return;  // the client closed the connection
    std::string_view line = in.line();
    if (line == "\x1b" "timeout") step = session.on_timeout();
    else if (line == "\x1b" "shutdown") step = session.on_shutdown();
    else if (line.size() > command_line_length) step = session.on_line_too_long();
    else step = session.on_line(line);
  }
}

}  // namespace sealgate::fuzz
