// See relay_access.hpp. Microsoft's and Google's outbound servers send for
// every tenant from the same addresses with the same certificates: a class of
// them is only as narrow as its pins, which is why config refuses such a class
// without one.
#include "gateway/inbound/relay_access.hpp"

#include <algorithm>

#include "common/text.hpp"
#include "crypto/dkim.hpp"
#include "crypto/loop_stamp.hpp"
#include "dns/domain_name.hpp"

namespace sealgate::gateway {
namespace {

bool network_holds(const relay_class& c, const boost::asio::ip::address& a) { return in_any(c.networks, a); }

bool certificate_holds(const relay_class& c, const client_certificate* cert) {
  if (!cert || !cert->presented || !cert->verified) return false;
  const auto& want = c.certificate;
  if (!want.issuer.empty() && want.issuer != cert->issuer) return false;
  if (!want.subject.empty() && want.subject != cert->subject) return false;
  if (!want.san.empty() && std::find(cert->dns_names.begin(), cert->dns_names.end(), want.san) == cert->dns_names.end())
    return false;
  return true;
}

bool sender_holds(const relay_class& c, std::string_view sender) {
  if (c.sender_domains.empty()) return true;
  if (sender.empty()) return !c.tenant_ids.empty();
  auto domain = dns::to_ascii_domain(domain_of(sender));
  return domain && std::find(c.sender_domains.begin(), c.sender_domains.end(), *domain) != c.sender_domains.end();
}

std::string trimmed_value(std::string_view raw) {
  std::string_view v = raw.substr(raw.find(':') + 1);
  std::string out;
  for (char ch : v)
    if (ch != ' ' && ch != '\t' && ch != '\r' && ch != '\n') out += ch;
  return out;
}

}  // namespace

std::optional<relay_match> match_relay(const std::vector<relay_class>& classes, const relay_client& client) {
  for (const auto& c : classes) {
    if (c.match_network && !network_holds(c, client.address)) continue;
    if (c.match_certificate && !certificate_holds(c, client.certificate)) continue;
    if (!c.users.empty() &&
        (client.auth_user.empty() || std::find(c.users.begin(), c.users.end(), client.auth_user) == c.users.end()))
      continue;
    if (!sender_holds(c, client.sender)) continue;
    return relay_match{c.name, &c};
  }
  if (client.in_relay_networks) return relay_match{"networks", nullptr};
  if (!client.auth_user.empty()) return relay_match{"auth", nullptr};
  return std::nullopt;
}

std::string crosstenant_id(std::string_view header_block) {
  std::string id;
  for (const auto& f : crypto::split_header_fields(header_block)) {
    if (!iequals_ascii(f.name, "X-MS-Exchange-CrossTenant-Id")) continue;
    std::string v = lower_ascii(trimmed_value(f.raw));
    if (!id.empty() && v != id) return "*";
    id = v;
  }
  return id;
}

std::optional<content_refusal> check_content(std::string_view header_block, const intake_checks& c) {
  size_t received = 0, stamps = 0;
  for (const auto& f : crypto::split_header_fields(header_block)) {
    if (iequals_ascii(f.name, "Received")) {
      ++received;
    } else if (!c.loop_secret.empty() && iequals_ascii(f.name, crypto::loop_header)) {
      std::string_view raw = f.raw;
      if (crypto::loop_stamp_valid(c.loop_secret, raw.substr(raw.find(':') + 1), c.now, c.loop_max_age)) ++stamps;
    }
  }
  // RFC 5321 6.3: a message with that many hops is looping; our own
  // Received field is not in the block yet, so the client's are counted.
  if (received > c.received_limit)
    return content_refusal{554, "5.4.6", "Too many Received header fields (" + std::to_string(received) +
                                             "): mail loop? (RFC 5321 6.3)"};
  if (stamps > c.loop_max_passes)
    return content_refusal{554, "5.4.6", "Mail loop: this message has passed this gateway " + std::to_string(stamps) +
                                             " times already"};
  if (c.cls && !c.cls->tenant_ids.empty()) {
    std::string id = crosstenant_id(header_block);
    const auto& ids = c.cls->tenant_ids;
    if (id.empty())
      return content_refusal{550, "5.7.1", "Relay access denied: class " + c.cls->name +
                                               " needs the X-MS-Exchange-CrossTenant-Id of an allowed tenant"};
    if (id == "*")
      return content_refusal{550, "5.7.1", "Relay access denied: conflicting X-MS-Exchange-CrossTenant-Id fields"};
    if (std::find(ids.begin(), ids.end(), id) == ids.end())
      return content_refusal{550, "5.7.1", "Relay access denied: tenant " + id + " may not relay through class " +
                                               c.cls->name};
  }
  return std::nullopt;
}

}  // namespace sealgate::gateway
