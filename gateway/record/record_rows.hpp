// The rows the delivery side hands to the record: shared by the writer
// (database.hpp) and the journal that keeps what it could not commit
// (record_journal.hpp).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace sealgate::gateway {

// One delivery attempt of one recipient, or a change of its state without an
// attempt (expired, deleted by an operator). Becomes a row of `attempts` and
// updates the recipient's row in `recipients`.
struct attempt_row {
  std::string queue_id;
  size_t index = 0;          // the recipient's position in the envelope
  std::string address;
  int64_t at = 0;            // unix seconds
  std::string outcome;       // delivered, deferred, bounced, expired, deleted
  bool attempted = true;     // false for expired/deleted without a connection
  std::string method, rule, policy_sha256;
  std::string mx_host, mx_address, tls_protocol, tls_cipher;
  std::string certificate;   // how the MX certificate was judged: dane, mta-sts, verified, unverified, none
  std::string reply;         // the remote reply or our reason; never content
  std::string classes;       // the content classes the policy saw, comma-separated
  std::string key_fingerprint;  // pgp, smime: the recipient's key used
  std::string actor;         // an operator's action: who (a Unix user); "" for the gateway's own
};

// One outbound TLS session as RFC 8460 counts it (see smtp_transport's
// tls_session_event); the day is the UTC day it happened.
struct tls_session_row {
  std::string day, policy_domain, policy_type, mx_host, address, result_type;
};

}  // namespace sealgate::gateway
