// Settings for mail from cloud tenants (Microsoft 365, Google Workspace) and
// for what the gateway adds to what it sends: relay classes with their pins
// (relay.classes, relay.client_ca), loop prevention (loop:, limits.
// received_headers) and DKIM signing (dkim:). Plain values; config loads them.
#pragma once
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "crypto/dkim.hpp"
#include "common/ip_network.hpp"

namespace sealgate::gateway {

// What a verified client certificate must say; an empty field is not checked.
struct certificate_match {
  std::string issuer;   // the issuer DN, RFC 2253 form (`openssl x509 -noout -issuer -nameopt RFC2253`)
  std::string subject;  // the subject DN, the same form
  std::string san;      // a DNS name of subjectAltName (case-insensitive)
};

// One class of client allowed to relay (relay.classes[]). Everything a class
// names must hold; the first class that matches is the one recorded.
struct relay_class {
  std::string name;
  bool match_network = false;
  std::vector<ip_network> networks;  // inline and from networks_file
  std::filesystem::path networks_file;
  bool shared_infrastructure = false;  // networks_file is marked as many tenants' senders
  bool match_certificate = false;
  certificate_match certificate;
  std::vector<std::string> users;  // AUTH users
  // Pins. sender_domains is checked at RCPT (the envelope sender's domain, in
  // lower-case A-labels); tenant_ids after DATA (X-MS-Exchange-CrossTenant-Id,
  // lower case), 550 5.7.1 and nothing stored when it does not match.
  std::vector<std::string> sender_domains;
  std::vector<std::string> tenant_ids;
};

// Loop prevention (loop:). The gateway stamps a Sealgate-Loop header with an
// HMAC on what it sends and refuses (554 5.4.6) mail carrying more than
// max_passes of its own valid, fresh ones.
struct loop_options {
  std::string secret;                    // HMAC key; loaded from secret_file or written there at start
  std::filesystem::path secret_file;     // default: <spool>/loop.key, made (0600) at the first start
  unsigned max_passes = 3;
  std::chrono::seconds max_age{7 * 86400};  // older stamps are ignored (stale)
};

enum class existing_signatures { keep, remove_broken, remove };

struct dkim_signing_key {
  std::string domain, selector;  // lower case
  std::filesystem::path private_key;
  std::shared_ptr<const crypto::dkim_private_key> key;
};

// DKIM signing (dkim:): after every change to the message, the last step
// before the transport. Without keys nothing is signed.
struct dkim_options {
  std::vector<dkim_signing_key> keys;
  std::map<std::string, std::string> domains;  // From domain -> signing domain
  existing_signatures existing = existing_signatures::remove_broken;
  // h= (RFC 6376 5.4.1's list); each present one is signed and signed once
  // more (over-signing: a field added later breaks the signature).
  std::vector<std::string> headers = {"from", "reply-to", "subject", "date", "to", "cc", "message-id", "in-reply-to",
                                      "references", "mime-version", "content-type", "content-transfer-encoding",
                                      "content-id", "content-description", "resent-date", "resent-from",
                                      "resent-to", "resent-cc", "resent-message-id", "list-id", "list-help",
                                      "list-unsubscribe", "list-subscribe", "list-post", "list-owner", "list-archive",
                                      "sender"};
};

}  // namespace sealgate::gateway
