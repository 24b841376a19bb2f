// Who may relay, and what the header block of a message must not show: the
// relay classes (relay.classes, then relay.networks, then AUTH) decided at
// RCPT, the tenant pin and the loop checks after DATA. Pure functions over
// what the session knows; the session turns a refusal into its reply.
#pragma once
#include <boost/asio/ip/address.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/tls_context.hpp"
#include "gateway/config/intake_options.hpp"

namespace sealgate::gateway {

using crypto::client_certificate;  // what the TLS handshake showed (crypto/tls_context.hpp)

struct relay_client {
  boost::asio::ip::address address;
  bool in_relay_networks = false;        // relay.networks
  const client_certificate* certificate = nullptr;  // null: no TLS or none presented
  std::string auth_user;                 // "" when not authenticated
  std::string sender;                    // the envelope sender ("" for <>)
};

struct relay_match {
  std::string name;               // the class name, or "networks" / "auth"
  const relay_class* cls = nullptr;  // null for networks and auth
};

// The first class whose every criterion and sender pin holds, then
// relay.networks, then an authenticated user. nullopt: relay access denied.
// The null sender (bounces, Microsoft's connector validation) meets a
// sender_domains pin only in a class that also pins tenant_ids, which is
// then the proof.
std::optional<relay_match> match_relay(const std::vector<relay_class>& classes, const relay_client& client);

// A refusal of a message after DATA: the reply and nothing stored.
struct content_refusal {
  int code = 0;
  std::string status, text;
};

struct intake_checks {
  const relay_class* cls = nullptr;  // the class matched at RCPT (its tenant pin)
  size_t received_limit = 50;
  std::string_view loop_secret;      // "" : no stamps are counted
  unsigned loop_max_passes = 3;
  int64_t loop_max_age = 7 * 86400;
  int64_t now = 0;
};

// Checks a message's header block: too many Received fields (554 5.4.6), too
// many of our own valid loop stamps (554 5.4.6), a tenant pin that does not
// hold (550 5.7.1). nullopt: accept.
std::optional<content_refusal> check_content(std::string_view header_block, const intake_checks& c);

// The tenant a Microsoft 365 message names: every X-MS-Exchange-CrossTenant-Id
// field, lower case; "" when there is none, "*" when they disagree.
std::string crosstenant_id(std::string_view header_block);

}  // namespace sealgate::gateway
