// A small, pure RFC 5322 / MIME reader: the facts classification needs from a
// message (headers, Subject, decoded text, attachment names, size). It reads
// bytes in memory only, is bounds-checked, and never throws on bad input.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sealgate::policy {

struct message_facts {
  std::vector<std::pair<std::string, std::string>> headers;  // top-level, unfolded, in order
  std::string subject;                                       // RFC 2047 words decoded
  std::string text;                                          // decoded text/* parts, joined by "\n"
  std::vector<std::string> attachment_names;
  uint64_t size = 0;
};

// Limits that keep a hostile message from costing unbounded time or memory.
struct message_limits {
  size_t max_text = 4 * 1024 * 1024;  // decoded text kept for body/DLP scans
  int max_depth = 16;                 // nested multiparts
  size_t max_parts = 1000;
};

message_facts read_message(std::string_view raw, const message_limits& limits = {});

// Exposed for tests; both are lenient and skip what they cannot decode.
std::string decode_base64(std::string_view in);
std::string decode_quoted_printable(std::string_view in);
std::string decode_rfc2047(std::string_view in);

}  // namespace sealgate::policy
