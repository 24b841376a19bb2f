// DKIM signing on OpenSSL 3 (see dkim.hpp). The canonicalisations follow RFC
// 6376 3.4 to the letter; the RFC 8463 Appendix A signatures are the unit
// test's vectors, and dkimpy verifies what the gateway sends in integration.
#include "crypto/dkim.hpp"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <fstream>
#include <sstream>
#include <stdexcept>

#include "common/text.hpp"

namespace sealgate::crypto {

std::string_view to_string(dkim_algorithm a) {
  return a == dkim_algorithm::ed25519_sha256 ? "ed25519-sha256" : "rsa-sha256";
}

struct dkim_private_key::pkey {
  EVP_PKEY* p = nullptr;
  ~pkey() { EVP_PKEY_free(p); }
};

namespace {

bool is_wsp(char c) { return c == ' ' || c == '\t'; }

std::string sha256(std::string_view data) {
  unsigned char md[32];
  unsigned int n = 0;
  EVP_Digest(data.data(), data.size(), md, &n, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<char*>(md), n);
}

}  // namespace

std::optional<dkim_private_key> dkim_private_key::from_pem(std::string_view pem, std::string* error) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  EVP_PKEY* p = bio ? PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr) : nullptr;
  BIO_free(bio);
  if (!p) {
    if (error) *error = "not a PEM private key";
    return std::nullopt;
  }
  dkim_private_key k;
  k.key_ = std::make_shared<pkey>();
  k.key_->p = p;
  if (EVP_PKEY_is_a(p, "RSA")) {
    k.algorithm_ = dkim_algorithm::rsa_sha256;
    // RFC 8301 3.2: verifiers refuse keys under 1024 bits; signing with one
    // would only produce signatures nobody accepts.
    if (EVP_PKEY_get_bits(p) < 1024) {
      if (error) *error = "RSA key of " + std::to_string(EVP_PKEY_get_bits(p)) + " bits (at least 1024, 2048 advised)";
      return std::nullopt;
    }
  } else if (EVP_PKEY_is_a(p, "ED25519")) {
    k.algorithm_ = dkim_algorithm::ed25519_sha256;
  } else {
    if (error) *error = "neither an RSA nor an Ed25519 key (DKIM has no other algorithm)";
    return std::nullopt;
  }
  return k;
}

std::optional<dkim_private_key> dkim_private_key::load(const std::filesystem::path& file, std::string* error) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    if (error) *error = "cannot read " + file.string();
    return std::nullopt;
  }
  std::ostringstream s;
  s << in.rdbuf();
  std::string why;
  auto k = from_pem(s.str(), &why);
  if (!k && error) *error = file.string() + ": " + why;
  return k;
}

dkim_private_key dkim_private_key::generate(dkim_algorithm algorithm) {
  EVP_PKEY* p = algorithm == dkim_algorithm::ed25519_sha256 ? EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519")
                                                            : EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048});
  if (!p) throw std::runtime_error("key generation failed");
  dkim_private_key k;
  k.key_ = std::make_shared<pkey>();
  k.key_->p = p;
  k.algorithm_ = algorithm;
  return k;
}

int dkim_private_key::bits() const { return EVP_PKEY_get_bits(key_->p); }

std::string dkim_private_key::private_pem() const {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, key_->p, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(n));
  BIO_free(bio);
  return out;
}

std::string dkim_private_key::public_key_base64() const {
  if (algorithm_ == dkim_algorithm::ed25519_sha256) {
    unsigned char raw[32];
    size_t n = sizeof raw;
    if (EVP_PKEY_get_raw_public_key(key_->p, raw, &n) != 1) throw std::runtime_error("no Ed25519 public key");
    return base64_encode(std::string_view(reinterpret_cast<char*>(raw), n));
  }
  unsigned char* der = nullptr;
  int n = i2d_PUBKEY(key_->p, &der);
  if (n <= 0) throw std::runtime_error("cannot encode the public key");
  std::string out = base64_encode(std::string_view(reinterpret_cast<char*>(der), static_cast<size_t>(n)));
  OPENSSL_free(der);
  return out;
}

std::string dkim_private_key::dns_record() const {
  return std::string("v=DKIM1; k=") + (algorithm_ == dkim_algorithm::ed25519_sha256 ? "ed25519" : "rsa") +
         "; p=" + public_key_base64();
}

std::string dkim_private_key::sign(std::string_view data) const {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  std::string to_sign;
  const EVP_MD* md = EVP_sha256();
  if (algorithm_ == dkim_algorithm::ed25519_sha256) {
    to_sign = sha256(data);  // RFC 8463 3: Ed25519 signs the SHA-256 hash
    data = to_sign;
    md = nullptr;            // PureEdDSA takes no digest of its own
  }
  size_t n = 0;
  std::string sig;
  bool ok = EVP_DigestSignInit(ctx, nullptr, md, nullptr, key_->p) == 1 &&
            EVP_DigestSign(ctx, nullptr, &n, reinterpret_cast<const unsigned char*>(data.data()), data.size()) == 1;
  if (ok) {
    sig.resize(n);
    ok = EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &n,
                        reinterpret_cast<const unsigned char*>(data.data()), data.size()) == 1;
    sig.resize(n);
  }
  EVP_MD_CTX_free(ctx);
  if (!ok) throw std::runtime_error("DKIM signing failed");
  return sig;
}

// ---- body hash ---------------------------------------------------------------

struct dkim_body_hash::sha {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  ~sha() { EVP_MD_CTX_free(ctx); }
};

dkim_body_hash::dkim_body_hash(bool relaxed, std::optional<uint64_t> length_limit)
    : sha_(std::make_unique<sha>()), relaxed_(relaxed), limit_(length_limit) {
  EVP_DigestInit_ex(sha_->ctx, EVP_sha256(), nullptr);
}

dkim_body_hash::~dkim_body_hash() = default;

void dkim_body_hash::emit(std::string_view bytes) {
  if (limit_) {
    if (emitted_ >= *limit_) return;
    bytes = bytes.substr(0, static_cast<size_t>(std::min<uint64_t>(bytes.size(), *limit_ - emitted_)));
  }
  emitted_ += bytes.size();
  out_.append(bytes);
  if (out_.size() >= 32768) flush();
}

void dkim_body_hash::flush() {
  EVP_DigestUpdate(sha_->ctx, out_.data(), out_.size());
  out_.clear();
}

// One complete line (without its CRLF) is known: canonicalise it, and hold
// back empty lines until a non-empty one shows they are not trailing (RFC 6376
// 3.4.3 and 3.4.4 both ignore empty lines at the end of the body).
void dkim_body_hash::end_line() {
  std::string_view line = line_;
  std::string relaxed;
  if (relaxed_) {
    // 3.4.4: WSP runs become one SP, WSP at the end of the line goes.
    relaxed.reserve(line.size());
    bool in_wsp = false;
    for (char c : line) {
      if (is_wsp(c)) {
        in_wsp = true;
      } else {
        if (in_wsp) relaxed += ' ';
        in_wsp = false;
        relaxed += c;
      }
    }
    line = relaxed;
  }
  if (line.empty()) {
    ++blank_lines_;
  } else {
    for (; blank_lines_ > 0; --blank_lines_) emit("\r\n");
    emit(line);
    emit("\r\n");
  }
  line_.clear();
}

void dkim_body_hash::update(std::string_view bytes) {
  while (!bytes.empty()) {
    size_t lf = bytes.find('\n');
    if (lf == std::string_view::npos) {
      line_.append(bytes);
      return;
    }
    line_.append(bytes.substr(0, lf));
    if (!line_.empty() && line_.back() == '\r') line_.pop_back();
    end_line();
    bytes.remove_prefix(lf + 1);
  }
}

std::string dkim_body_hash::finish() {
  if (!line_.empty()) end_line();  // a last line without CRLF gets one (3.4.3, 3.4.4)
  // 3.4.3: a simple body that is empty hashes as one CRLF; relaxed hashes "".
  if (!relaxed_ && emitted_ == 0 && (!limit_ || *limit_ > 0)) emit("\r\n");
  flush();
  unsigned char md[32];
  unsigned int n = 0;
  EVP_DigestFinal_ex(sha_->ctx, md, &n);
  return std::string(reinterpret_cast<char*>(md), n);
}

// ---- header fields -------------------------------------------------------------

std::vector<header_field_view> split_header_fields(std::string_view block) {
  std::vector<header_field_view> out;
  size_t at = 0;
  while (at < block.size()) {
    if (block.compare(at, 2, "\r\n") == 0) break;  // the empty line that ends the block
    size_t end = at;
    // A field runs until a line that does not start with WSP (RFC 5322 2.2.3).
    while (true) {
      size_t eol = block.find("\r\n", end);
      if (eol == std::string_view::npos) {
        end = block.size();
        break;
      }
      end = eol + 2;
      if (end >= block.size() || !is_wsp(block[end])) break;
    }
    std::string_view raw = block.substr(at, end - at);
    // The name is on the first line; a first line without a colon is no
    // field name at all (nothing h= could name).
    size_t colon = raw.substr(0, raw.find("\r\n")).find(':');
    std::string_view name = raw.substr(0, colon == std::string_view::npos ? 0 : colon);
    while (!name.empty() && is_wsp(name.back())) name.remove_suffix(1);
    out.push_back({name, raw});
    at = end;
  }
  return out;
}

std::string dkim_relaxed_header(std::string_view raw, bool without_crlf) {
  size_t colon = raw.find(':');
  std::string_view name = raw.substr(0, colon);
  while (!name.empty() && is_wsp(name.back())) name.remove_suffix(1);
  // Unfolded too: only a malformed field has a line break before its colon.
  std::string out;
  for (char c : name)
    if (c != '\r' && c != '\n') out += lower_ascii(c);
  out += ':';
  if (colon == std::string_view::npos) return without_crlf ? out : out + "\r\n";
  std::string_view value = raw.substr(colon + 1);
  // Unfold (drop CR and LF), WSP runs to one SP, none at either end.
  bool in_wsp = false;
  bool any = false;
  for (char c : value) {
    if (c == '\r' || c == '\n') continue;
    if (is_wsp(c)) {
      in_wsp = true;
      continue;
    }
    if (in_wsp && any) out += ' ';
    in_wsp = false;
    any = true;
    out += c;
  }
  if (!without_crlf) out += "\r\n";
  return out;
}

std::string dkim_header_input(const std::vector<header_field_view>& fields, const std::vector<std::string>& names,
                              bool relaxed) {
  std::string out;
  std::vector<bool> used(fields.size(), false);
  for (const auto& name : names) {
    for (size_t i = fields.size(); i-- > 0;) {
      if (used[i] || !iequals_ascii(fields[i].name, name)) continue;
      used[i] = true;
      out += relaxed ? dkim_relaxed_header(fields[i].raw) : std::string(fields[i].raw);
      break;
    }
  }
  return out;
}

std::optional<std::vector<std::pair<std::string, std::string>>> dkim_tags(std::string_view value) {
  std::vector<std::pair<std::string, std::string>> out;
  auto trim = [](std::string_view s) {
    auto strip = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
    while (!s.empty() && strip(s.front())) s.remove_prefix(1);
    while (!s.empty() && strip(s.back())) s.remove_suffix(1);
    return s;
  };
  while (!value.empty()) {
    size_t semi = value.find(';');
    std::string_view item = trim(value.substr(0, semi));
    value = semi == std::string_view::npos ? std::string_view() : value.substr(semi + 1);
    if (item.empty()) continue;
    size_t eq = item.find('=');
    if (eq == std::string_view::npos) return std::nullopt;
    out.emplace_back(std::string(trim(item.substr(0, eq))), std::string(trim(item.substr(eq + 1))));
  }
  return out;
}

// ---- the signature -----------------------------------------------------------

std::string dkim_signature_value(const dkim_private_key& key, std::string_view field_prefix,
                                 const std::vector<header_field_view>& fields, const std::vector<std::string>& names) {
  // RFC 6376 3.7: the signed header fields, then the signature field itself
  // with an empty b= and without its CRLF.
  std::string input = dkim_header_input(fields, names, true);
  input += dkim_relaxed_header(field_prefix, true);
  return base64_encode(key.sign(input));
}

namespace {

// Appends "text" to a folded field, starting a continuation line ("\r\n\t")
// when the line would pass 76 columns.
void fold_append(std::string& field, size_t& column, std::string_view text, bool space_before) {
  if (column + text.size() + (space_before ? 1 : 0) > 76 && column > 1) {
    field += "\r\n\t";
    column = 1;
  } else if (space_before) {
    field += ' ';
    ++column;
  }
  field += text;
  column += text.size();
}

}  // namespace

std::string dkim_signature_field(const dkim_private_key& key, const dkim_sign_request& r,
                                 std::string_view header_block, std::string_view body_hash) {
  std::string field = "DKIM-Signature:";
  size_t column = field.size();
  auto tag = [&](std::string_view text) { fold_append(field, column, text, true); };
  tag("v=1;");
  tag("a=" + std::string(to_string(key.algorithm())) + ";");
  tag("c=relaxed/relaxed;");
  tag("d=" + r.domain + ";");
  tag("s=" + r.selector + ";");
  if (r.timestamp > 0) tag("t=" + std::to_string(r.timestamp) + ";");
  // h= folds between names: "h=from:to:..." with a break after a colon.
  for (size_t i = 0; i < r.names.size(); ++i) {
    std::string piece = (i == 0 ? "h=" : "") + lower_ascii(r.names[i]) + (i + 1 == r.names.size() ? ";" : ":");
    fold_append(field, column, piece, i == 0);
  }
  tag("bh=" + base64_encode(body_hash) + ";");
  tag("b=");
  auto fields = split_header_fields(header_block);
  std::string b = dkim_signature_value(key, field, fields, r.names);
  // The b= value is left out of the hash with its surrounding whitespace
  // (3.5), so it may fold anywhere.
  for (size_t at = 0; at < b.size();) {
    size_t room = column < 76 ? 76 - column : 0;
    if (room < 8) {
      field += "\r\n\t";
      column = 1;
      room = 75;
    }
    size_t n = std::min(room, b.size() - at);
    field.append(b, at, n);
    column += n;
    at += n;
  }
  field += "\r\n";
  return field;
}

}  // namespace sealgate::crypto
