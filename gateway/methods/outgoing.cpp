// See outgoing.hpp. The order matters: the stamp first (our signatures leave
// it out of h=, a later hop's changes to it break nothing), then the existing
// signatures judged against the body and header block as they now stand, then
// ours over the final bytes.
#include "gateway/methods/outgoing.hpp"

#include <algorithm>
#include <map>
#include <stdexcept>

#include "common/text.hpp"
#include "crypto/dkim.hpp"
#include "gateway/mail/headers.hpp"

namespace sealgate::gateway {
namespace {

constexpr size_t max_header_block = 1 << 20;

// The header block of content (with its final CRLF, without the empty line)
// and where the body starts; the whole content is a header block when it has
// no empty line.
struct head_view {
  std::string block;
  uint64_t body_offset = 0;
  bool cut_short = false;  // no empty line in the first max_header_block bytes of a longer message
};

head_view read_head(const message_content& content) {
  std::string head;
  size_t want = static_cast<size_t>(std::min<uint64_t>(content.size(), max_header_block));
  if (!content.read(0, want, head)) throw std::runtime_error("cannot read the message");
  head_view v;
  if (head.rfind("\r\n", 0) == 0) {  // no header fields at all
    v.body_offset = 2;
    return v;
  }
  size_t end = head.find("\r\n\r\n");
  if (end == std::string::npos) {
    v.block = head;
    v.body_offset = content.size();
    v.cut_short = want < content.size();
    return v;
  }
  v.block = head.substr(0, end + 2);
  v.body_offset = end + 4;
  return v;
}

std::string tag(const std::vector<std::pair<std::string, std::string>>& tags, std::string_view name) {
  for (const auto& [k, v] : tags)
    if (k == name) return v;
  return {};
}

std::string strip_wsp(std::string_view s) {
  std::string out;
  for (char c : s)
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n') out += c;
  return out;
}

// An existing signature's terms, as far as telling whether it still holds.
struct existing_signature {
  size_t field = 0;  // index into the header fields
  bool parsed = false;
  bool relaxed_header = false, relaxed_body = false;
  std::optional<uint64_t> length;
  std::vector<std::string> names;
};

existing_signature parse_existing(size_t index, std::string_view raw) {
  existing_signature e;
  e.field = index;
  size_t colon = raw.find(':');
  auto tags = crypto::dkim_tags(raw.substr(colon + 1));
  if (!tags) return e;
  std::string c = strip_wsp(tag(*tags, "c"));
  std::string a = strip_wsp(tag(*tags, "a"));
  if (a != "rsa-sha256" && a != "ed25519-sha256") return e;  // rsa-sha1 and unknown: cannot judge
  std::string head_c = c.substr(0, c.find('/')), body_c = c.find('/') == std::string::npos ? "simple" : c.substr(c.find('/') + 1);
  if (head_c.empty()) head_c = "simple";
  if ((head_c != "simple" && head_c != "relaxed") || (body_c != "simple" && body_c != "relaxed")) return e;
  e.relaxed_header = head_c == "relaxed";
  e.relaxed_body = body_c == "relaxed";
  if (std::string l = strip_wsp(tag(*tags, "l")); !l.empty()) {
    try {
      e.length = std::stoull(l);
    } catch (...) {
      return e;
    }
  }
  std::string h = strip_wsp(tag(*tags, "h"));
  for (size_t at = 0; at <= h.size();) {
    size_t colon_at = h.find(':', at);
    if (colon_at == std::string::npos) colon_at = h.size();
    if (colon_at > at) e.names.push_back(h.substr(at, colon_at - at));
    at = colon_at + 1;
  }
  e.parsed = !e.names.empty();
  return e;
}

}  // namespace

std::string from_domain(std::string_view value) {
  // The address is inside <> when there is a display name; otherwise the
  // value is the address, possibly with a (comment).
  std::string_view addr = value;
  if (size_t lt = value.find('<'); lt != std::string_view::npos) {
    size_t gt = value.find('>', lt);
    addr = value.substr(lt + 1, gt == std::string_view::npos ? std::string_view::npos : gt - lt - 1);
  } else {
    addr = value.substr(0, value.find_first_of("(,"));
  }
  while (!addr.empty() && (addr.back() == ' ' || addr.back() == '\t')) addr.remove_suffix(1);
  size_t at = addr.rfind('@');
  if (at == std::string_view::npos) return {};
  std::string domain = lower_ascii(addr.substr(at + 1));
  while (!domain.empty() && domain.back() == '.') domain.pop_back();
  return domain;
}

std::string signing_domain(const dkim_options& o, std::string_view from) {
  if (from.empty()) return {};
  if (auto it = o.domains.find(std::string(from)); it != o.domains.end()) return it->second;
  auto has_key = [&](std::string_view d) {
    return std::any_of(o.keys.begin(), o.keys.end(), [&](const dkim_signing_key& k) { return k.domain == d; });
  };
  // The domain, then its parents: a key for example.org aligns (relaxed
  // DMARC) with mail from billing.example.org. Never a bare TLD.
  for (std::string_view d = from;;) {
    if (d.find('.') == std::string_view::npos) return {};
    if (has_key(d)) return std::string(d);
    d.remove_prefix(d.find('.') + 1);
  }
}

outgoing_finisher::outgoing_finisher(dkim_options dkim, std::string loop_secret, std::string hostname)
    : dkim_(std::move(dkim)), secret_(std::move(loop_secret)), hostname_(std::move(hostname)) {}

outgoing_finisher::result outgoing_finisher::finish(const std::shared_ptr<const message_content>& original,
                                                    const std::shared_ptr<const message_content>& content,
                                                    int64_t now) const {
  result out;
  out.content = content;
  if (!does_anything()) return out;
  head_view head = read_head(*content);
  // A header block past max_header_block (no empty line in the first MiB of
  // a larger message) is no mail the gateway can sign or stamp: it leaves
  // as it came rather than with a signature over the wrong body.
  if (head.cut_short) return out;
  auto fields = crypto::split_header_fields(head.block);

  // Which existing signatures stay.
  std::vector<bool> drop(fields.size(), false);
  std::vector<existing_signature> existing;
  for (size_t i = 0; i < fields.size(); ++i) {
    if (!iequals_ascii(fields[i].name, "DKIM-Signature")) continue;
    if (dkim_.existing == existing_signatures::remove) drop[i] = true;
    // The message as it arrived, unchanged (most TLS deliveries): nothing of
    // ours can have broken a signature, and judging would hash the body twice.
    else if (dkim_.existing == existing_signatures::remove_broken && original != content)
      existing.push_back(parse_existing(i, fields[i].raw));
  }

  // Our signing keys for this message.
  std::vector<const dkim_signing_key*> keys;
  std::string domain = signing_domain(dkim_, from_domain(header_field(head.block, "From")));
  for (const auto& k : dkim_.keys)
    if (k.domain == domain) keys.push_back(&k);

  // One pass over the body for every hash needed: ours (relaxed) and each
  // existing signature's own canonicalisation and length.
  auto hash_body = [](const message_content& c, uint64_t from, std::vector<crypto::dkim_body_hash*> hashes) {
    std::string chunk;
    for (uint64_t at = from; at < c.size();) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(65536, c.size() - at));
      if (!c.read(at, n, chunk)) throw std::runtime_error("cannot read the message");
      for (auto* h : hashes) h->update(chunk);
      at += n;
    }
  };
  std::unique_ptr<crypto::dkim_body_hash> ours;
  if (!keys.empty()) ours = std::make_unique<crypto::dkim_body_hash>(true);
  std::vector<std::unique_ptr<crypto::dkim_body_hash>> after, before;
  std::vector<crypto::dkim_body_hash*> after_ptrs, before_ptrs;
  if (ours) after_ptrs.push_back(ours.get());
  for (const auto& e : existing) {
    after.push_back(std::make_unique<crypto::dkim_body_hash>(e.relaxed_body, e.length));
    before.push_back(std::make_unique<crypto::dkim_body_hash>(e.relaxed_body, e.length));
    after_ptrs.push_back(after.back().get());
    before_ptrs.push_back(before.back().get());
  }
  if (!after_ptrs.empty()) hash_body(*content, head.body_offset, after_ptrs);
  if (!existing.empty()) {
    // A signature stays when what it covers is the same as when the message
    // arrived: the body under its canonicalisation and length, and the header
    // fields it names. Whether it was valid then is not ours to judge (that
    // needs its key); a change of ours must just not be what breaks it.
    head_view arrived = read_head(*original);
    hash_body(*original, arrived.body_offset, before_ptrs);
    auto arrived_fields = crypto::split_header_fields(arrived.block);
    for (size_t k = 0; k < existing.size(); ++k) {
      const auto& e = existing[k];
      if (!e.parsed) continue;  // rsa-sha1, an unknown canonicalisation: left alone
      bool holds = after[k]->finish() == before[k]->finish() &&
                   crypto::dkim_header_input(fields, e.names, e.relaxed_header) ==
                       crypto::dkim_header_input(arrived_fields, e.names, e.relaxed_header);
      if (!holds) drop[e.field] = true;
    }
  }

  std::string block;
  if (!secret_.empty())
    block += std::string(crypto::loop_header) + ": " + crypto::loop_stamp(secret_, hostname_, now) + "\r\n";
  for (size_t i = 0; i < fields.size(); ++i) {
    if (drop[i]) {
      ++out.signatures_removed;
      continue;
    }
    block += fields[i].raw;
  }

  std::string signatures;
  if (!keys.empty()) {
    // Each present field of the list is signed, and signed once more, so
    // that one added on the way breaks the signature (over-signing); From
    // always, present or not (RFC 6376 5.4).
    auto final_fields = crypto::split_header_fields(block);
    std::map<std::string, size_t> present;
    for (const auto& f : final_fields) ++present[lower_ascii(f.name)];
    crypto::dkim_sign_request req;
    req.domain = domain;
    req.timestamp = now;
    for (const auto& name : dkim_.headers) {
      size_t count = present.count(name) ? present[name] : 0;
      if (count == 0 && name != "from") continue;
      for (size_t i = 0; i <= count; ++i) req.names.push_back(name);
    }
    std::string body_hash = ours->finish();
    for (const auto* k : keys) {
      req.selector = k->selector;
      signatures += crypto::dkim_signature_field(*k->key, req, block, body_hash);
      if (!out.signed_by.empty()) out.signed_by += ", ";
      out.signed_by += "d=" + k->domain + " s=" + k->selector + " a=" + std::string(crypto::to_string(k->key->algorithm()));
    }
  }
  // The empty line stays where it was: only the header block is replaced.
  out.content = content->with_start_replaced(head.block.size(), signatures + block);
  return out;
}

}  // namespace sealgate::gateway
