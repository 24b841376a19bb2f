// One input through every parser that reads what remote servers send: the
// DNS message parser and record decoders, the MTA-STS TXT and policy parsers,
// the SMTP reply parser and EHLO keywords. Shared by the libFuzzer target
// (parsers_fuzz.cpp, clang only) and the corpus replay unit test (gcc).
#pragma once
#include <cstddef>
#include <cstdint>

namespace sealgate::fuzz {

struct parse_counts {
  size_t dns_ok = 0, dns_refused = 0;        // parse_response accepted / refused the bytes
  size_t sts_policy_ok = 0, sts_txt_ok = 0;  // MTA-STS policy / TXT record accepted
  size_t smtp_replies = 0, smtp_errors = 0;  // complete replies / transport errors
};

// Never crashes, never reads out of bounds (the sanitizers prove the latter).
void parse_everything(const uint8_t* data, size_t size, parse_counts& counts);

}  // namespace sealgate::fuzz
