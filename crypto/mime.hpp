// The MIME surgery both encryption methods share: split a message into its
// header fields and body, decide whether it is already encrypted, and build
// the inner entity (what gets encrypted) and the outer headers (what routes).
// It never decodes or re-encodes a body: the original entity survives octet for octet.
#pragma once
#include <optional>
#include <variant>
#include <string>
#include <string_view>
#include <vector>

namespace sealgate::crypto {

struct header_field {
  std::string name;      // as written
  std::string_view raw;  // "Name: value\r\n" with its continuation lines, exactly as in the message
  std::string value() const;  // unfolded, without the name and the final CRLF
};

struct split_message {
  std::vector<header_field> fields;
  std::string_view body;  // after the empty line; empty when there is none
};

// Needs CRLF line ends (the spool's form); nullopt when the header block is
// not RFC 5322 (a line that is neither a field nor a continuation).
std::optional<split_message> split(std::string_view message);

// Bare LF becomes CRLF (for messages read from files); CRLF stays.
std::string to_crlf(std::string_view text);

// "multipart/encrypted" from "Multipart/Encrypted; protocol=..." (lower case).
std::string media_type(std::string_view content_type);
// A parameter's value (quotes removed), or nullopt.
std::optional<std::string> parameter(std::string_view content_type, std::string_view name);

// RFC 3156 multipart/encrypted, or RFC 8551 application/pkcs7-mime carrying
// enveloped or authEnveloped data (no smime-type counts as enveloped, as old
// clients omitted it): such a message is never encrypted again.
bool already_encrypted(const split_message& m);

struct header_options {
  std::string subject;      // outer Subject when protect is on
  bool protect = true;      // copy Subject, From, To, ... inside and hide Subject outside
};

struct wrapped {
  std::string inner;          // the entity to encrypt: content fields (+ protected headers) and the body, CRLF
  std::string outer_headers;  // routing fields, Subject replaced, without MIME-Version/Content-*; CRLF each
};

// Content-* fields move inside; everything else stays outside (RFC 3156 4,
// RFC 8551 3.1: only the MIME entity is protected). With protect on, the
// inner Content-Type carries protected-headers="v1" and copies of the user-
// facing fields (draft-autocrypt-lamps-protected-headers), and the outer
// Subject becomes the neutral text.
wrapped wrap(const split_message& m, const header_options& options);

// 76-column base64 with CRLF (RFC 2045 6.8).
std::string base64_lines(std::string_view data);
// A boundary that cannot occur in base64 or ASCII armor ("=_" never does).
std::string make_boundary();

}  // namespace sealgate::crypto

namespace sealgate::crypto {

// What an encryption call gives back: the whole new message (CRLF), or why not.
struct encrypt_result {
  enum class status { encrypted, already_encrypted, failed } state = status::failed;
  std::string message;  // encrypted: the new message; already_encrypted: the input, unchanged
  std::string error;    // failed: why (never message content)
};

// What both methods check first: a header block that parses, a message not
// encrypted already, someone to encrypt to. The split message, or the result
// to return at once (failed, or already_encrypted with the input unchanged).
std::variant<split_message, encrypt_result> prepare(std::string_view message, size_t recipients);

}  // namespace sealgate::crypto
