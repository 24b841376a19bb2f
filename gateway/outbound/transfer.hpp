// What the queue hands the outbound transport and what it gets back: one
// transfer (recipients of one message and domain that share a method and a TLS
// requirement), one result per recipient.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "gateway/mail/message_content.hpp"
#include "gateway/mail/outcome.hpp"
#include "gateway/mail/smtp_syntax.hpp"
#include "policy/decide.hpp"

namespace sealgate::gateway {

// What an attempt did for one recipient, and over which connection.
struct recipient_result {
  outcome result;  // deferred until the attempt says otherwise
  // The method could not be used as required (no STARTTLS, TLS below the
  // minimum, certificate not verified, encryption failed): nothing of the
  // message was sent, and the rule's on_failure says what comes next.
  bool method_failed = false;
  std::string mx_host, mx_address, tls_protocol, tls_cipher;
  std::string certificate;  // dane, mta-sts, verified, unverified, none
};

// One outbound transaction: recipients of one message and one domain that
// share a method and a transport requirement.
struct outbound_transfer {
  std::string queue_id;
  std::string domain;
  std::string sender;
  mail_parameters params;
  std::vector<std::string> recipients;
  // NOTIFY and ORCPT as the client gave them, one per recipient (RFC 3461:
  // passed on to a next hop that offers DSN).
  std::vector<recipient_parameters> recipient_params;
  policy::method method = policy::method::tls;
  policy::tls_level transport = policy::tls_level::opportunistic;
  policy::tls_version min_tls_version = policy::tls_version::unknown;
  // RFC 8689: the sender asked for REQUIRETLS. The transport must then use
  // verified TLS (transport is raised to verified here) to a next hop that
  // offers REQUIRETLS, pass REQUIRETLS on in MAIL FROM, and report anything
  // less as a method failure, which bounces (5.7.30) rather than waits.
  bool requiretls = false;
  std::shared_ptr<const message_content> content;  // CRLF lines, ready to send (dot-stuffing is the client's)
};

}  // namespace sealgate::gateway
