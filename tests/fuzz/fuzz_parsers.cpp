// parse_everything: see fuzz_parsers.hpp. Feeds, never checks results beyond
// counting them: the point is that hostile bytes end as clean refusals.
#include "tests/fuzz/fuzz_parsers.hpp"

#include <span>
#include <string_view>

#include "dns/lookup.hpp"
#include "dns/message.hpp"
#include "gateway/mta_sts.hpp"
#include "gateway/smtp_reply.hpp"

namespace sealgate::fuzz {

void parse_everything(const uint8_t* data, size_t size, parse_counts& counts) {
  std::span<const uint8_t> bytes(data, size);
  auto r = dns::parse_response(bytes);
  if (r.ok) {
    ++counts.dns_ok;
    // Decode against the question the message claims, so that the record
    // readers see the answers rather than stopping at "another question".
    std::string q = r.question_name;
    (void)dns::decode_a(bytes, q, true);
    (void)dns::decode_aaaa(bytes, q, true);
    (void)dns::decode_mx(bytes, q, true);
    (void)dns::decode_txt(bytes, q, true);
    (void)dns::decode_tlsa(bytes, q, true);
    (void)dns::decode_smimea(bytes, q, true);
    (void)dns::decode_openpgpkey(bytes, q, true);
    dns::resolver_options opt;
    for (auto t : {dns::rr_type::a, dns::rr_type::mx, dns::rr_type::tlsa}) (void)dns::cache_ttl(bytes, q, t, opt);
  } else {
    ++counts.dns_refused;
  }

  std::string_view text(reinterpret_cast<const char*>(data), size);
  if (gateway::parse_sts_policy(text)) ++counts.sts_policy_ok;
  if (gateway::parse_sts_txt_id(text)) ++counts.sts_txt_ok;
  if (auto p = gateway::parse_sts_policy(text)) {
    for (const auto& m : p->mx) (void)gateway::sts_mx_matches(m, "mx.example.net");
  }

  gateway::reply_parser parser;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (parser.feed(line)) {
      ++counts.smtp_errors;
      parser = gateway::reply_parser();
      continue;
    }
    if (parser.done()) {
      auto reply = parser.take();
      (void)gateway::parse_ehlo_reply(reply);
      (void)reply.text();
      ++counts.smtp_replies;
    }
  }
  bool bol = true, cr = false;
  (void)gateway::dot_stuff(std::string_view(reinterpret_cast<const char*>(data), size), bol, true, cr);
}

}  // namespace sealgate::fuzz
