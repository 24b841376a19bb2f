// The outbound side's settings (config key `delivery:`) as plain values, so that
// the SMTP client, the probe and their tests need no YAML. Defaults live here;
// config.cpp only overrides them. Never holds anything per message.
#pragma once
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>

namespace sealgate::gateway {

// One deadline per SMTP stage, as Postfix's smtp_*_timeout parameters
// (src/smtp/smtp_params.c); the defaults are Postfix's.
struct smtp_timeouts {
  std::chrono::seconds connect{30};     // TCP connect to one address (smtp_connect_timeout)
  std::chrono::seconds helo{300};       // the banner and each EHLO/HELO reply (smtp_helo_timeout)
  std::chrono::seconds starttls{300};   // the 220 to STARTTLS and the TLS handshake (smtp_starttls_timeout)
  std::chrono::seconds mail{300};       // MAIL FROM reply (smtp_mail_timeout)
  std::chrono::seconds rcpt{300};       // each RCPT TO reply (smtp_rcpt_timeout)
  std::chrono::seconds data_init{120};  // the 354 to DATA (smtp_data_init_timeout)
  std::chrono::seconds data_xfer{180};  // each write of message content (smtp_data_xfer_timeout)
  std::chrono::seconds data_done{600};  // the reply after the final dot (smtp_data_done_timeout)
  std::chrono::seconds quit{300};       // the reply to QUIT (smtp_quit_timeout)
  std::chrono::seconds https{60};       // one whole MTA-STS policy fetch (RFC 8461 3.3)
};

struct delivery_options {
  uint16_t port = 25;                 // the MX port; tests use another
  std::filesystem::path ca_file;      // PEM trust store for SMTP and MTA-STS HTTPS; empty: the system store
  std::string helo_name;              // our EHLO name; empty: the top-level hostname
  unsigned probe_max_mx = 5;          // MX hosts probed per domain, in preference order
  std::chrono::seconds probe_cache_ttl{600};  // how long a host's probe result is believed
  uint16_t mta_sts_port = 443;        // HTTPS port of mta-sts.<domain> (RFC 8461 3.3 says 443; a test knob)
  smtp_timeouts timeouts;
};

}  // namespace sealgate::gateway
