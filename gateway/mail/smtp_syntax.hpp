// SMTP command-line syntax (RFC 5321 4.1, RFC 1869 parameters, RFC 3461 DSN,
// RFC 6531 SMTPUTF8): splits commands and parses paths and their parameters.
// Pure functions, no state and no I/O; every refusal carries its SMTP reply.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sealgate::gateway {

// A reply decided by the parser: code, enhanced status code (RFC 3463), text.
struct smtp_reply {
  int code = 0;
  std::string status;  // "5.1.3"; empty for replies that carry none (220, 354)
  std::string text;
};

struct command_line {
  std::string verb;  // upper-cased
  std::string args;  // the rest after one space, untouched
};
command_line split_command(std::string_view line);

// MAIL FROM parameters we accept and keep for delivery and DSNs.
struct mail_parameters {
  std::optional<uint64_t> size;
  std::string body;   // "", "7BIT" or "8BITMIME"
  bool smtputf8 = false;
  std::string ret;    // "", "FULL" or "HDRS" (RFC 3461 4.3)
  std::string envid;  // xtext as received (RFC 3461 4.4)
  bool requiretls = false;  // RFC 8689: only over verified TLS to a next hop that offers REQUIRETLS
};

struct recipient_parameters {
  std::string notify;  // "", "NEVER" or a list of SUCCESS,FAILURE,DELAY
  std::string orcpt;   // "addr-type;xtext" as received (RFC 3461 4.2)
};

struct parsed_mail {
  std::string sender;  // without brackets; empty for the null sender <>
  mail_parameters params;
};
struct parsed_rcpt {
  std::string recipient;
  recipient_parameters params;
};

template <typename T>
struct parse_result {
  std::optional<T> value;
  smtp_reply error;  // set when value is empty
};

// args is what follows "MAIL" ("FROM:<a@b> SIZE=10"). smtputf8_offered says
// whether the session advertised SMTPUTF8 (it always does; kept explicit for tests).
parse_result<parsed_mail> parse_mail_from(std::string_view args);
// Refuses the open-relay tricks: source routes, '%' (percent hack), '!' (bang
// paths), quoted local parts holding '@', and address literals (a literal skips
// MX, DANE and MTA-STS, so a gateway that promises those cannot honour it).
// smtputf8 is whether this transaction's MAIL carried SMTPUTF8.
parse_result<parsed_rcpt> parse_rcpt_to(std::string_view args, bool smtputf8);

// RFC 3461 4: xtext is printable ASCII other than '+' and '=', with "+XX" escapes.
bool is_xtext(std::string_view s);
std::string xtext_encode(std::string_view raw);
// Decodes "+XX" escapes; a malformed escape is kept as it stands.
std::string xtext_decode(std::string_view s);

}  // namespace sealgate::gateway
