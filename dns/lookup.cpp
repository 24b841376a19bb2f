// Decoding of answers into typed results, cache lifetimes and MX rules; see
// lookup.hpp. Never trusts an AD bit on its own: the caller says whether the
// resolver that set it is one we may believe.
#include "dns/lookup.hpp"

#include <algorithm>

namespace sealgate::dns {
namespace {

template <typename T, typename Reader>
lookup_result<T> decode(std::span<const uint8_t> message, std::string_view name, rr_type type, bool trust_ad,
                        Reader read) {
  lookup_result<T> out;
  response r = parse_response(message);
  rrset set = select_answer(r, name, type);
  out.status = set.status;
  out.why_absent = set.why_absent;
  out.ttl = set.min_ttl;
  out.error = set.error;
  if (set.status == outcome::temporary_failure) {
    out.ttl = 0;
    return out;
  }
  out.secure = trust_ad && r.authentic_data;
  for (const record* rr : set.records) {
    auto v = read(message, *rr);
    if (!v) {
      lookup_result<T> bad;
      bad.error = "malformed answer: bad " + std::string(to_string(type)) + " record";
      return bad;
    }
    out.records.push_back(std::move(*v));
  }
  if (set.status == outcome::absent) out.ttl = r.soa_negative_ttl.value_or(0);
  return out;
}

}  // namespace

a_result decode_a(std::span<const uint8_t> m, std::string_view name, bool trust_ad) {
  return decode<boost::asio::ip::address_v4>(m, name, rr_type::a, trust_ad, [](auto msg, const record& rr) {
    auto a = read_a(msg, rr);
    return a ? std::optional(boost::asio::ip::address_v4(*a)) : std::nullopt;
  });
}
aaaa_result decode_aaaa(std::span<const uint8_t> m, std::string_view name, bool trust_ad) {
  return decode<boost::asio::ip::address_v6>(m, name, rr_type::aaaa, trust_ad, [](auto msg, const record& rr) {
    auto a = read_aaaa(msg, rr);
    return a ? std::optional(boost::asio::ip::address_v6(*a)) : std::nullopt;
  });
}
mx_result decode_mx(std::span<const uint8_t> m, std::string_view name, bool trust_ad) {
  return decode<mx_record>(m, name, rr_type::mx, trust_ad, read_mx);
}
txt_result decode_txt(std::span<const uint8_t> m, std::string_view name, bool trust_ad) {
  return decode<std::string>(m, name, rr_type::txt, trust_ad, read_txt);
}
tlsa_result decode_tlsa(std::span<const uint8_t> m, std::string_view name, bool trust_ad) {
  return decode<tlsa_record>(m, name, rr_type::tlsa, trust_ad, read_tlsa);
}
smimea_result decode_smimea(std::span<const uint8_t> m, std::string_view name, bool trust_ad) {
  return decode<tlsa_record>(m, name, rr_type::smimea, trust_ad, read_tlsa);
}
openpgpkey_result decode_openpgpkey(std::span<const uint8_t> m, std::string_view name, bool trust_ad) {
  return decode<std::vector<uint8_t>>(m, name, rr_type::openpgpkey, trust_ad, read_openpgpkey);
}

std::chrono::seconds cache_ttl(std::span<const uint8_t> message, std::string_view name, rr_type type,
                               const resolver_options& options) {
  response r = parse_response(message);
  rrset set = select_answer(r, name, type);
  std::chrono::seconds ttl{0};
  switch (set.status) {
    case outcome::temporary_failure:
      return std::chrono::seconds{0};
    case outcome::found:
      ttl = std::chrono::seconds{set.min_ttl};
      break;
    case outcome::absent:
      ttl = r.soa_negative_ttl ? std::chrono::seconds{*r.soa_negative_ttl} : options.negative_ttl;
      // A CNAME on the way is cached no longer than its own TTL.
      if (set.canonical_name != canonical_name(name)) ttl = std::min(ttl, std::chrono::seconds{set.min_ttl});
      break;
  }
  return std::min(ttl, options.cache_max_ttl);
}

std::string_view to_string(mx_outcome o) {
  switch (o) {
    case mx_outcome::hosts: return "hosts";
    case mx_outcome::null_mx: return "null MX";
    case mx_outcome::no_such_domain: return "no such domain";
    case mx_outcome::temporary_failure: return "temporary failure";
  }
  return "?";
}

mx_set order_mx(const mx_result& mx, std::string_view domain, std::mt19937& random) {
  mx_set set;
  set.ttl = mx.ttl;
  set.secure = mx.secure;
  set.error = mx.error;
  if (mx.status == outcome::temporary_failure) return set;
  if (mx.status == outcome::absent) {
    if (mx.why_absent == absence::nxdomain) {
      set.status = mx_outcome::no_such_domain;
      set.error = "NXDOMAIN";
      return set;
    }
    set.status = mx_outcome::hosts;
    set.implicit = true;
    set.hosts.push_back({canonical_name(domain), 0});
    return set;
  }
  // "." is no host. RFC 7505 3 forbids mixing it with other MX records; when a
  // domain does anyway, the real hosts are used. Only roots left: no mail.
  std::vector<mx_host> hosts;
  for (auto& r : mx.records)
    if (!r.exchange.empty()) hosts.push_back({r.exchange, r.preference});
  if (hosts.empty()) {
    set.status = mx_outcome::null_mx;
    set.error = "null MX (RFC 7505): the domain accepts no mail";
    return set;
  }
  // Shuffle first, then a stable sort by preference: random among equals.
  std::shuffle(hosts.begin(), hosts.end(), random);
  std::stable_sort(hosts.begin(), hosts.end(),
                   [](const mx_host& a, const mx_host& b) { return a.preference < b.preference; });
  // The same host twice (at two preferences) is tried once, at the better one.
  std::vector<mx_host> unique;
  for (auto& h : hosts)
    if (std::none_of(unique.begin(), unique.end(), [&](const mx_host& u) { return u.name == h.name; }))
      unique.push_back(h);
  set.hosts = std::move(unique);
  set.status = mx_outcome::hosts;
  return set;
}

mx_set finish_implicit_mx(mx_set set, const a_result& a, const aaaa_result& aaaa) {
  if (set.status != mx_outcome::hosts || !set.implicit) return set;
  set.secure = set.secure && a.secure && aaaa.secure;
  if (a.status == outcome::found || aaaa.status == outcome::found) {
    uint32_t ttl = UINT32_MAX;
    if (a.status == outcome::found) ttl = std::min(ttl, a.ttl);
    if (aaaa.status == outcome::found) ttl = std::min(ttl, aaaa.ttl);
    set.ttl = std::min(set.ttl, ttl);
    return set;
  }
  set.hosts.clear();
  if (a.status == outcome::temporary_failure || aaaa.status == outcome::temporary_failure) {
    set.status = mx_outcome::temporary_failure;
    set.error = "no MX; address lookup failed: " + (a.status == outcome::temporary_failure ? a.error : aaaa.error);
    return set;
  }
  set.status = mx_outcome::no_such_domain;
  set.error = "no MX and no address records";
  return set;
}

address_set merge_addresses(const a_result& a, const aaaa_result& aaaa) {
  address_set out;
  for (const auto& r : a.records) out.list.emplace_back(r);
  for (const auto& r : aaaa.records) out.list.emplace_back(r);
  bool a_temp = a.status == outcome::temporary_failure, aaaa_temp = aaaa.status == outcome::temporary_failure;
  out.secure = !a_temp && !aaaa_temp && a.secure && aaaa.secure;
  if (!out.list.empty()) {
    out.status = outcome::found;
  } else if (a_temp || aaaa_temp) {
    out.error = a_temp ? a.error : aaaa.error;
  } else {
    out.status = outcome::absent;
    out.why_absent = a.why_absent;
  }
  return out;
}

}  // namespace sealgate::dns
