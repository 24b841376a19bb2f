// What an SMTP server says to the outbound client, as pure functions: reply
// parsing (RFC 5321 4.2, RFC 3463 enhanced codes), EHLO keywords, dot-stuffing
// and the client's transport error category. No I/O here, so that the parsers
// can be unit-tested and fuzzed alone; never trusts a reply's length or shape.
#pragma once
#include <boost/system/error_code.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sealgate::gateway {

// Transport failures of the client (the other error channel is the reply).
enum class smtp_client_error {
  timeout = 1,        // a stage's deadline passed
  connection_closed,  // EOF before a complete reply
  line_too_long,      // a reply line over smtp_client_limits::line_length
  too_many_lines,     // a multiline reply over smtp_client_limits::reply_lines
  malformed_reply,    // not "NNN[ -]text", or codes differing between lines
  tls_handshake,      // the TLS handshake failed
  not_connected,
  unexpected_reply,   // a well-formed reply that makes no sense at this step (250 to DATA, 354 after the dot)
  content_unreadable, // the message could not be read from the spool while it was sent
};
const boost::system::error_category& smtp_client_category();
boost::system::error_code make_error_code(smtp_client_error e);

// One reply (RFC 5321 4.2), with the enhanced status code (RFC 3463) when the
// server sent one (RFC 2034 says only after ENHANCEDSTATUSCODES; servers send
// it anyway, and a well-formed one is kept).
struct remote_reply {
  int code = 0;
  std::string enhanced;            // "5.7.1", or empty
  std::vector<std::string> lines;  // text after "NNN-"/"NNN ", enhanced code included as sent
  // Completion (2xx) only: a 3xx is an intermediate reply that a step must
  // ask for by its code (354 to DATA, 334 to AUTH), never a success.
  bool positive() const { return code >= 200 && code < 300; }
  bool transient() const { return code >= 400 && code < 500; }
  bool permanent() const { return code >= 500; }
  std::string text() const;  // "NNN line1 / line2" for logs and DSNs; control characters replaced
};

// A step's outcome: a transport error (no usable reply), or the reply.
struct smtp_result {
  boost::system::error_code error;
  remote_reply reply;
  explicit operator bool() const { return !error; }
};

// What EHLO announced (RFC 5321 4.1.1.1; keywords are case-insensitive).
struct smtp_extensions {
  bool esmtp = false;  // EHLO accepted (false after the HELO fallback)
  bool starttls = false, pipelining = false, eight_bit_mime = false, smtputf8 = false, requiretls = false,
       enhanced_status_codes = false, dsn = false, chunking = false;
  std::optional<uint64_t> size;    // SIZE n (RFC 1870); 0 means no fixed limit
  std::vector<std::string> auth;   // AUTH mechanisms, upper case
  std::vector<std::string> keywords;  // every keyword, upper case, as announced
};
smtp_extensions parse_ehlo_reply(const remote_reply& ehlo);

struct smtp_client_limits {
  size_t line_length = 2048;  // per reply line, CRLF excluded (RFC 5321 4.5.3.1.5 says 512; be lenient, not unbounded)
  size_t reply_lines = 100;   // per multiline reply
};

// Incremental reply parser (sans-I/O), for the client and its tests: feed lines
// without CRLF; done() once the last line ("NNN " or "NNN") arrived.
class reply_parser {
 public:
  explicit reply_parser(size_t max_lines = 100) : max_lines_(max_lines) {}
  // A transport-level error when the line is malformed or one too many.
  boost::system::error_code feed(std::string_view line);
  bool done() const { return done_; }
  remote_reply take();

 private:
  size_t max_lines_;
  bool done_ = false;
  remote_reply reply_;
};

// Message content (CRLF line ends) dot-stuffed for DATA (RFC 5321 4.5.2), with
// the final ".\r\n" when last is true. A bare CR or LF becomes CRLF: sending
// one on would let a receiver see an end of data we never meant (SMTP
// smuggling). `at_line_start` carries state between pieces of one message.
std::string dot_stuff(std::string_view piece, bool& at_line_start, bool last, bool& pending_cr);

}  // namespace sealgate::gateway

template <>
struct boost::system::is_error_code_enum<sealgate::gateway::smtp_client_error> : std::true_type {};
