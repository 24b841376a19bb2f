// A message's envelope as the spool keeps it and the queue and the record read
// it: who sent it, to whom, how it arrived. Shared vocabulary of every stage
// after inbound; the spool file format that stores it is spool/'s.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "gateway/mail/smtp_syntax.hpp"

namespace sealgate::gateway {

// What the spool keeps besides the content: the envelope and how it arrived.
struct spooled_envelope {
  std::string queue_id;
  int64_t received = 0;  // unix seconds
  std::string listener, client_address, helo, auth_user, tls_protocol, tls_cipher;
  std::string relay_class;  // the relay class that let the client relay (relay.classes, "networks", "auth")
  std::string sender;
  mail_parameters params;
  std::vector<parsed_rcpt> recipients;
  uint64_t content_size = 0;  // not stored in the file: the file size tells
  std::string message_id;     // from the content's header, for the record; not stored in the envelope block
};

}  // namespace sealgate::gateway
