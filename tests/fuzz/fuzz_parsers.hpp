// The feeds of the libFuzzer targets (issue 12): each takes one input and runs
// it through one area that reads untrusted or operator-written bytes. Shared by
// the clang fuzz targets (fuzz_main.cpp) and the gcc corpus replay unit test.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace sealgate::fuzz {

// What the inputs reached, so that the replay test can prove a seed corpus
// covers both the accepting and the refusing paths of its area.
struct parse_counts {
  size_t dns_ok = 0, dns_refused = 0;        // parse_response accepted / refused the bytes
  size_t sts_policy_ok = 0, sts_txt_ok = 0;  // MTA-STS policy / TXT record accepted
  size_t smtp_replies = 0, smtp_errors = 0;  // complete replies / transport errors
  size_t dsn_params_ok = 0, dsn_params_refused = 0;  // MAIL/RCPT with DSN parameters accepted / refused
  size_t dsn_built = 0;                              // DSNs made from a parsed transaction
  size_t inbound_accepted = 0;                // messages the state machine queued
  size_t inbound_auth = 0;                    // AUTH exchanges that reached verify_auth
  size_t inbound_refused = 0;                 // replies >= 400
  size_t data_complete = 0, data_bare_newline = 0, data_too_big = 0, data_line_too_long = 0;
  size_t mime_parts_named = 0, mime_classes = 0;  // attachment names found / classes matched
  size_t config_ok = 0, config_refused = 0;
  size_t policy_ok = 0, policy_refused = 0;
  size_t portal_forms_ok = 0, portal_forms_refused = 0;  // urlencoded/multipart bodies parsed / refused
  size_t portal_cookies = 0;                             // Cookie headers that gave the cookie asked for
  size_t portal_views = 0, portal_views_refused = 0;     // messages read_message_view showed / refused
  size_t portal_attachments = 0;                         // attachments listed and downloaded
  size_t portal_html = 0, portal_replies = 0;            // HTML bodies made text / replies composed and read back
  size_t intake_accepted = 0, intake_refused = 0;        // header blocks the after-DATA checks passed / refused
  size_t intake_signed = 0;                              // messages the finisher signed
  size_t proxy_local = 0, proxy_proxied = 0;             // PROXY v2 headers: socket endpoints kept / client named
  size_t proxy_refused = 0;                              // PROXY v2 headers refused
};

// One per fuzz target (fuzz_<area> runs feed_<area>). Each must never crash,
// hang or leak, whatever the bytes; the sanitizers prove the memory safety,
// and the feeds abort on the invariants their area promises (see each .cpp).
void feed_dns(const uint8_t* data, size_t size, parse_counts& counts);
void feed_mta_sts(const uint8_t* data, size_t size, parse_counts& counts);
void feed_smtp_reply(const uint8_t* data, size_t size, parse_counts& counts);
void feed_smtp_inbound(const uint8_t* data, size_t size, parse_counts& counts);
void feed_data_reader(const uint8_t* data, size_t size, parse_counts& counts);
void feed_mime_classify(const uint8_t* data, size_t size, parse_counts& counts);
void feed_config(const uint8_t* data, size_t size, parse_counts& counts);
void feed_policy(const uint8_t* data, size_t size, parse_counts& counts);
void feed_portal_web(const uint8_t* data, size_t size, parse_counts& counts);
void feed_intake(const uint8_t* data, size_t size, parse_counts& counts);
void feed_proxy_protocol(const uint8_t* data, size_t size, parse_counts& counts);

// Writes bytes to a file of this name in a per-process scratch directory
// (on tmpfs when there is one, removed at exit) and returns its path: the
// config and policy loaders read files only, and the fixed policy of
// fuzz_mime_classify goes through the same loader. (A string, not a path:
// this header is compiled once per target and <filesystem> is slow to parse.)
std::string write_scratch(std::string_view name, std::string_view bytes);

// Stops the process with a message when a promised invariant does not hold:
// libFuzzer then saves the input as a crash, like a sanitizer report.
[[noreturn]] void invariant_failed(const char* what, const char* file, int line);

}  // namespace sealgate::fuzz

#define SEALGATE_FUZZ_CHECK(cond) \
  ((cond) ? (void)0 : ::sealgate::fuzz::invariant_failed(#cond, __FILE__, __LINE__))
