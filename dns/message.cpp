// DNS message building and parsing; see message.hpp. Every read goes through
// a bounds check: this code sees bytes from the network.
#include "dns/message.hpp"

#include "common/text.hpp"

#include <algorithm>
#include <cctype>

namespace sealgate::dns {
namespace {

constexpr size_t header_size = 12;
constexpr uint16_t class_in = 1;

uint16_t get16(std::span<const uint8_t> m, size_t pos) { return static_cast<uint16_t>(m[pos] << 8 | m[pos + 1]); }
uint32_t get32(std::span<const uint8_t> m, size_t pos) {
  return uint32_t{m[pos]} << 24 | uint32_t{m[pos + 1]} << 16 | uint32_t{m[pos + 2]} << 8 | m[pos + 3];
}
void put16(std::vector<uint8_t>& out, uint16_t v) {
  out.push_back(static_cast<uint8_t>(v >> 8));
  out.push_back(static_cast<uint8_t>(v));
}

void append_label_octet(std::string& out, uint8_t c) {
  // Octets that would make the text form ambiguous are escaped (RFC 1035 5.1),
  // so that "a.b" as one label never equals the two labels a and b.
  if (c == '.' || c == '\\' || c <= 0x20 || c >= 0x7f) {
    out += '\\';
    out += static_cast<char>('0' + c / 100);
    out += static_cast<char>('0' + c / 10 % 10);
    out += static_cast<char>('0' + c % 10);
  } else {
    out += static_cast<char>(std::tolower(c));
  }
}

// Reads a possibly compressed name at pos. `end` gets the offset after its
// in-place encoding. Compression pointers must point strictly before every
// place this name has been read from so far: legitimate encoders only point
// back to names already written, and the rule makes loops impossible.
std::optional<std::string> read_name(std::span<const uint8_t> m, size_t pos, size_t& end) {
  std::string out;
  size_t wire_length = 0, lowest = pos;
  bool jumped = false;
  for (;;) {
    if (pos >= m.size()) return std::nullopt;
    uint8_t len = m[pos];
    if ((len & 0xC0) == 0xC0) {
      if (pos + 1 >= m.size()) return std::nullopt;
      size_t target = static_cast<size_t>(len & 0x3F) << 8 | m[pos + 1];
      if (!jumped) end = pos + 2;
      jumped = true;
      if (target >= lowest) return std::nullopt;
      lowest = pos = target;
      continue;
    }
    if (len & 0xC0) return std::nullopt;  // extended label types (RFC 6891 obsoleted them)
    wire_length += 1 + len;
    if (wire_length > 255) return std::nullopt;  // RFC 1035 2.3.4
    if (len == 0) {
      if (!jumped) end = pos + 1;
      return out;
    }
    if (pos + 1 + len > m.size()) return std::nullopt;
    if (!out.empty()) out += '.';
    for (size_t i = 0; i < len; ++i) append_label_octet(out, m[pos + 1 + i]);
    pos += 1 + len;
  }
}

// RFC 2181 8: a TTL with the top bit set is treated as zero.
uint32_t clamp_ttl(uint32_t ttl) { return ttl & 0x80000000u ? 0 : ttl; }

}  // namespace

std::string_view to_string(rr_type t) {
  switch (t) {
    case rr_type::a: return "A";
    case rr_type::cname: return "CNAME";
    case rr_type::soa: return "SOA";
    case rr_type::mx: return "MX";
    case rr_type::txt: return "TXT";
    case rr_type::aaaa: return "AAAA";
    case rr_type::opt: return "OPT";
    case rr_type::smimea: return "SMIMEA";
    case rr_type::openpgpkey: return "OPENPGPKEY";
    case rr_type::tlsa: return "TLSA";
  }
  return "?";
}

std::optional<rr_type> parse_rr_type(std::string_view name) {
  std::string upper;
  for (char c : name) upper += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (rr_type t : {rr_type::a, rr_type::aaaa, rr_type::mx, rr_type::txt, rr_type::tlsa, rr_type::smimea,
                    rr_type::openpgpkey})
    if (to_string(t) == upper) return t;
  return std::nullopt;
}

std::string_view to_string(outcome o) {
  switch (o) {
    case outcome::found: return "found";
    case outcome::absent: return "absent";
    case outcome::temporary_failure: return "temporary failure";
  }
  return "?";
}

std::string_view to_string(absence a) {
  switch (a) {
    case absence::none: return "";
    case absence::nxdomain: return "nxdomain";
    case absence::nodata: return "nodata";
  }
  return "?";
}

std::string canonical_name(std::string_view name) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  return lower_ascii(name);
}

std::vector<uint8_t> build_query(std::string_view name, rr_type type, uint16_t id, uint16_t udp_size) {
  std::vector<uint8_t> q;
  put16(q, id);
  put16(q, 0x0120);  // RD (bit 8) and AD (bit 5)
  put16(q, 1);       // QDCOUNT
  put16(q, 0);
  put16(q, 0);
  put16(q, 1);  // ARCOUNT: the OPT record
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  size_t wire_length = 1;
  while (!name.empty()) {
    size_t dot = name.find('.');
    std::string_view label = name.substr(0, dot);
    if (label.empty() || label.size() > 63 || label.find('\\') != std::string_view::npos) return {};
    wire_length += 1 + label.size();
    if (wire_length > 255) return {};
    q.push_back(static_cast<uint8_t>(label.size()));
    q.insert(q.end(), label.begin(), label.end());
    name = dot == std::string_view::npos ? std::string_view{} : name.substr(dot + 1);
    if (dot != std::string_view::npos && name.empty()) return {};  // "a..": an empty label
  }
  q.push_back(0);
  put16(q, static_cast<uint16_t>(type));
  put16(q, class_in);
  // OPT (RFC 6891 6.1.2): root owner, CLASS = UDP payload size, TTL holds
  // extended RCODE, version 0 and the DO bit (RFC 3225 3).
  q.push_back(0);
  put16(q, static_cast<uint16_t>(rr_type::opt));
  put16(q, udp_size);
  put16(q, 0);
  put16(q, 0x8000);
  put16(q, 0);
  return q;
}

response parse_response(std::span<const uint8_t> m) {
  response r;
  auto fail = [&r](std::string why) {
    r.ok = false;
    r.error = "malformed answer: " + why;
    r.answers.clear();
    return r;
  };
  if (m.size() < header_size) return fail("shorter than a header");
  r.id = get16(m, 0);
  uint16_t flags = get16(m, 2);
  if (!(flags & 0x8000)) return fail("not a response");
  r.truncated = flags & 0x0200;
  r.authentic_data = flags & 0x0020;
  r.rcode = flags & 0x000F;
  uint16_t qd = get16(m, 4), an = get16(m, 6), ns = get16(m, 8), ar = get16(m, 10);
  if (qd != 1) return fail("question count " + std::to_string(qd));
  size_t pos = header_size;
  auto name = read_name(m, pos, pos);
  if (!name || pos + 4 > m.size()) return fail("bad question");
  r.question_name = *name;
  r.question_type = get16(m, pos);
  pos += 4;

  for (unsigned section = 0; section < 3; ++section) {
    unsigned count = section == 0 ? an : section == 1 ? ns : ar;
    for (unsigned i = 0; i < count; ++i) {
      auto owner = read_name(m, pos, pos);
      if (!owner) return fail("bad owner name");
      if (pos + 10 > m.size()) return fail("record header past the end");
      record rr;
      rr.owner = std::move(*owner);
      rr.type = get16(m, pos);
      uint16_t rclass = get16(m, pos + 2);
      uint32_t raw_ttl = get32(m, pos + 4);
      rr.ttl = clamp_ttl(raw_ttl);
      rr.rdata_length = get16(m, pos + 8);
      rr.rdata_offset = pos + 10;
      if (rr.rdata_offset + rr.rdata_length > m.size()) return fail("rdata past the end");
      pos = rr.rdata_offset + rr.rdata_length;
      if (section == 0) {
        if (rr.type == static_cast<uint16_t>(rr_type::cname)) {
          size_t after = 0;
          auto target = read_name(m.first(pos), rr.rdata_offset, after);
          if (!target || after != pos) return fail("bad CNAME");
          rr.cname_target = std::move(*target);
        }
        if (rclass == class_in) r.answers.push_back(std::move(rr));
      } else if (section == 1 && rr.type == static_cast<uint16_t>(rr_type::soa) && rclass == class_in) {
        size_t p = rr.rdata_offset, end = rr.rdata_offset + rr.rdata_length;
        if (!read_name(m, p, p) || p > end || !read_name(m, p, p) || p + 20 != end) return fail("bad SOA");
        uint32_t minimum = clamp_ttl(get32(m, p + 16));
        r.soa_negative_ttl = std::min(rr.ttl, minimum);
      } else if (section == 2 && rr.type == static_cast<uint16_t>(rr_type::opt)) {
        r.rcode = static_cast<uint8_t>(r.rcode | (raw_ttl >> 24) << 4);  // RFC 6891 6.1.3 extended RCODE
      }
    }
  }
  r.ok = true;
  return r;
}

rrset select_answer(const response& r, std::string_view qname, rr_type qtype) {
  rrset s;
  if (!r.ok) {
    s.error = r.error.empty() ? "malformed answer" : r.error;
    return s;
  }
  std::string name = canonical_name(qname);
  if (r.question_name != name || r.question_type != static_cast<uint16_t>(qtype)) {
    s.error = "answer is for another question";
    return s;
  }
  if (r.truncated) {
    s.error = "truncated answer";
    return s;
  }
  if (r.rcode != 0 && r.rcode != 3) {
    static const char* names[] = {"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED"};
    s.error = r.rcode < 6 ? names[r.rcode] : "RCODE " + std::to_string(r.rcode);
    return s;
  }
  uint32_t min_ttl = UINT32_MAX;
  for (int hops = 0;; ++hops) {
    for (auto& rr : r.answers)
      if (rr.type == static_cast<uint16_t>(qtype) && rr.owner == name) {
        s.records.push_back(&rr);
        min_ttl = std::min(min_ttl, rr.ttl);
      }
    if (!s.records.empty()) {
      if (r.rcode != 0) {
        s.records.clear();
        s.error = "NXDOMAIN with an answer";
        return s;
      }
      s.status = outcome::found;
      break;
    }
    auto cname = std::find_if(r.answers.begin(), r.answers.end(), [&](const record& rr) {
      return rr.type == static_cast<uint16_t>(rr_type::cname) && rr.owner == name;
    });
    if (cname == r.answers.end()) {
      // The chain ends without the wanted type: NXDOMAIN or NODATA (RFC 2308 2.1, 2.2).
      s.status = outcome::absent;
      s.why_absent = r.rcode == 3 ? absence::nxdomain : absence::nodata;
      break;
    }
    if (hops == 8) {
      s.error = "CNAME chain longer than 8";
      return s;
    }
    min_ttl = std::min(min_ttl, cname->ttl);
    name = cname->cname_target;
  }
  s.canonical_name = name;
  s.min_ttl = min_ttl == UINT32_MAX ? 0 : min_ttl;
  return s;
}

std::optional<std::array<uint8_t, 4>> read_a(std::span<const uint8_t> m, const record& rr) {
  if (rr.rdata_length != 4 || rr.rdata_offset + 4 > m.size()) return std::nullopt;
  std::array<uint8_t, 4> a;
  std::copy_n(m.begin() + static_cast<ptrdiff_t>(rr.rdata_offset), 4, a.begin());
  return a;
}

std::optional<std::array<uint8_t, 16>> read_aaaa(std::span<const uint8_t> m, const record& rr) {
  if (rr.rdata_length != 16 || rr.rdata_offset + 16 > m.size()) return std::nullopt;
  std::array<uint8_t, 16> a;
  std::copy_n(m.begin() + static_cast<ptrdiff_t>(rr.rdata_offset), 16, a.begin());
  return a;
}

std::optional<mx_record> read_mx(std::span<const uint8_t> m, const record& rr) {
  size_t end = rr.rdata_offset + rr.rdata_length;
  if (rr.rdata_length < 3 || end > m.size()) return std::nullopt;
  mx_record mx;
  mx.preference = get16(m, rr.rdata_offset);
  size_t after = 0;
  auto name = read_name(m.first(end), rr.rdata_offset + 2, after);
  if (!name || after != end) return std::nullopt;
  mx.exchange = std::move(*name);
  return mx;
}

std::optional<std::string> read_txt(std::span<const uint8_t> m, const record& rr) {
  size_t pos = rr.rdata_offset, end = rr.rdata_offset + rr.rdata_length;
  if (rr.rdata_length == 0 || end > m.size()) return std::nullopt;
  std::string text;
  while (pos < end) {
    size_t len = m[pos];
    if (pos + 1 + len > end) return std::nullopt;
    text.append(reinterpret_cast<const char*>(m.data() + pos + 1), len);
    pos += 1 + len;
  }
  return text;
}

std::optional<tlsa_record> read_tlsa(std::span<const uint8_t> m, const record& rr) {
  size_t end = rr.rdata_offset + rr.rdata_length;
  if (rr.rdata_length < 4 || end > m.size()) return std::nullopt;
  tlsa_record t;
  t.usage = m[rr.rdata_offset];
  t.selector = m[rr.rdata_offset + 1];
  t.matching_type = m[rr.rdata_offset + 2];
  t.data.assign(m.begin() + static_cast<ptrdiff_t>(rr.rdata_offset + 3), m.begin() + static_cast<ptrdiff_t>(end));
  return t;
}

std::optional<std::vector<uint8_t>> read_openpgpkey(std::span<const uint8_t> m, const record& rr) {
  size_t end = rr.rdata_offset + rr.rdata_length;
  if (rr.rdata_length == 0 || end > m.size()) return std::nullopt;
  return std::vector<uint8_t>(m.begin() + static_cast<ptrdiff_t>(rr.rdata_offset),
                              m.begin() + static_cast<ptrdiff_t>(end));
}

}  // namespace sealgate::dns
