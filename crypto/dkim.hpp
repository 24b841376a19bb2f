// DKIM (RFC 6376) signatures with RSA-SHA256 and Ed25519-SHA256 (RFC 8463),
// relaxed/relaxed, on OpenSSL 3: keys, canonicalisation, the body hash fed in
// pieces (a large message is never held whole), the DKIM-Signature field.
// Pure computation, no I/O besides reading a key file: callers run it on a
// worker, never on an event loop (an RSA-2048 signature takes about 1 ms).
#pragma once
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sealgate::crypto {

enum class dkim_algorithm { rsa_sha256, ed25519_sha256 };
std::string_view to_string(dkim_algorithm a);  // "rsa-sha256", "ed25519-sha256"

// A signing key: RSA (1024 bits or more, RFC 8301 3.2; keygen makes 2048) or
// Ed25519. Shared between threads: signing only reads it.
class dkim_private_key {
 public:
  // nullopt with *error when the file is missing, unreadable or holds anything
  // else (a certificate, a public key, an EC or DSA key, a short RSA key).
  static std::optional<dkim_private_key> load(const std::filesystem::path& file, std::string* error);
  static std::optional<dkim_private_key> from_pem(std::string_view pem, std::string* error);
  static dkim_private_key generate(dkim_algorithm algorithm);  // RSA: 2048 bits

  dkim_algorithm algorithm() const { return algorithm_; }
  int bits() const;
  std::string private_pem() const;  // PKCS#8
  // The p= value of the key record: RSA SubjectPublicKeyInfo, or the raw
  // 32-byte Ed25519 key (RFC 8463 4.2), base64.
  std::string public_key_base64() const;
  // The whole TXT record: "v=DKIM1; k=rsa; p=...".
  std::string dns_record() const;
  // The raw signature of a DKIM hash input (RFC 6376 3.7): RSASSA-PKCS1-v1_5
  // with SHA-256 for RSA; for Ed25519, PureEdDSA over its SHA-256 (RFC 8463 3).
  std::string sign(std::string_view data) const;

 private:
  struct pkey;
  std::shared_ptr<pkey> key_;
  dkim_algorithm algorithm_ = dkim_algorithm::rsa_sha256;
};

// The body hash (RFC 6376 3.7 step 1) over content fed in any pieces, with
// relaxed (3.4.4) or simple (3.4.3) canonicalisation and an optional l= limit.
class dkim_body_hash {
 public:
  explicit dkim_body_hash(bool relaxed = true, std::optional<uint64_t> length_limit = std::nullopt);
  ~dkim_body_hash();
  dkim_body_hash(const dkim_body_hash&) = delete;
  dkim_body_hash& operator=(const dkim_body_hash&) = delete;
  void update(std::string_view body_bytes);
  std::string finish();  // the 32 raw bytes of SHA-256

 private:
  void end_line();
  void emit(std::string_view bytes);
  void flush();
  struct sha;
  std::unique_ptr<sha> sha_;
  bool relaxed_;
  std::optional<uint64_t> limit_;
  uint64_t emitted_ = 0;
  std::string line_;     // the current line, without its CRLF
  size_t blank_lines_ = 0;  // empty lines held back: trailing ones do not count
  std::string out_;      // canonical bytes not yet hashed
};

// One field of a header block, as it stands (name, colon, value, folding and
// the final CRLF).
struct header_field_view {
  std::string_view name;  // as written
  std::string_view raw;   // the whole field including its CRLF
};
std::vector<header_field_view> split_header_fields(std::string_view header_block);

// Relaxed header canonicalisation (RFC 6376 3.4.2) of one raw field, with its
// CRLF unless without_crlf (the signature field itself is hashed without).
std::string dkim_relaxed_header(std::string_view raw_field, bool without_crlf = false);

// The header part of the hash input for names (h=, in order, each picking the
// last instance not yet used, RFC 6376 5.4.2), canonicalised (relaxed or simple).
std::string dkim_header_input(const std::vector<header_field_view>& fields, const std::vector<std::string>& names,
                              bool relaxed);

// Parses a tag-list (RFC 6376 3.2): nullopt when it is not one.
std::optional<std::vector<std::pair<std::string, std::string>>> dkim_tags(std::string_view value);

struct dkim_sign_request {
  std::string domain, selector;
  std::vector<std::string> names;  // h=, in order (over-signing repeats a name)
  int64_t timestamp = 0;           // t=; 0 leaves it out
};

// The DKIM-Signature field (folded, CRLF-terminated) for a message whose header
// block is `header_block` and whose body hash is `body_hash` (raw bytes).
std::string dkim_signature_field(const dkim_private_key& key, const dkim_sign_request& request,
                                 std::string_view header_block, std::string_view body_hash);

// The b= value for a signature field whose text up to and including "b=" is
// `field_prefix` ("DKIM-Signature: v=1; ... b=", folded as it is sent); for
// signing with exactly the tags of a test vector.
std::string dkim_signature_value(const dkim_private_key& key, std::string_view field_prefix,
                                 const std::vector<header_field_view>& fields, const std::vector<std::string>& names);

}  // namespace sealgate::crypto
