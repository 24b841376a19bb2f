// Outbound SMTP connection primitives (RFC 5321, RFC 3207 STARTTLS), shared by
// the domain probe and delivery: connect, read_reply, ehlo, start_tls, command,
// send_data, quit. Each step has its own deadline. A connection lives on one
// strand. Never decides anything (policy/ does) and never logs message content.
#pragma once
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/system/error_code.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/tls_context.hpp"
#include "gateway/delivery_options.hpp"

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
  bool positive() const { return code >= 200 && code < 400; }
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

// What STARTTLS gave, for the probe and for delivery to check the live
// connection against its requirement (a cached probe never excuses a
// connection that lacks it).
struct tls_state {
  bool active = false;
  crypto::tls_facts facts;               // protocol, cipher
  crypto::peer_verification verification;  // chain against the trust store, host name
  std::vector<std::vector<unsigned char>> chain;  // DER, leaf first (for DANE)
  size_t discarded_plaintext = 0;        // octets the server sent after its 220 and before the handshake
};

template <class NextLayer>
class basic_smtp_client {
 public:
  using next_layer_type = NextLayer;
  basic_smtp_client(NextLayer next, std::shared_ptr<boost::asio::ssl::context> tls_context, smtp_timeouts timeouts,
                    smtp_client_limits limits = {});

  // The 220 greeting (helo timeout, as Postfix does for the banner).
  boost::asio::awaitable<smtp_result> greeting();
  // EHLO, then HELO when EHLO gets a 5xx (RFC 5321 4.1.4); extensions() holds what was announced.
  boost::asio::awaitable<smtp_result> ehlo(std::string helo_name);
  // STARTTLS (RFC 3207). On 220: throws away what the server sent after it,
  // sets SNI to server_name, handshakes, records protocol, cipher, chain and
  // its verification (never failing on it), then EHLO again (RFC 3207 4.2).
  // The result is the STARTTLS reply when it was not 220, the handshake error,
  // or the new EHLO's result.
  boost::asio::awaitable<smtp_result> start_tls(std::string server_name, std::string helo_name);
  // Any command line (without CRLF) and its reply within timeout.
  boost::asio::awaitable<smtp_result> command(std::string line, std::chrono::seconds timeout);
  // DATA, content (CRLF lines, dot-stuffed here) and the final reply.
  boost::asio::awaitable<smtp_result> send_data(std::string content);
  // QUIT, its reply, close_notify under TLS, then close.
  boost::asio::awaitable<smtp_result> quit();
  // One reply within timeout.
  boost::asio::awaitable<smtp_result> read_reply(std::chrono::seconds timeout);

  const smtp_extensions& extensions() const { return extensions_; }
  const tls_state& tls() const { return tls_; }
  const smtp_timeouts& timeouts() const { return timeouts_; }
  NextLayer& next_layer() { return stream_.next_layer(); }

 private:
  boost::asio::awaitable<boost::system::error_code> write(std::string data, std::chrono::seconds timeout);
  boost::asio::awaitable<boost::system::error_code> read_line(std::string& line,
                                                              std::chrono::steady_clock::duration timeout);

  std::shared_ptr<boost::asio::ssl::context> context_;
  boost::asio::ssl::stream<NextLayer> stream_;
  smtp_timeouts timeouts_;
  smtp_client_limits limits_;
  std::string buffer_;  // received, not yet parsed
  smtp_extensions extensions_;
  tls_state tls_;
};

// The production client: TCP with Beast's per-operation deadlines. Construct
// its stream on a strand of its own: boost::beast::tcp_stream(make_strand(ex)).
using smtp_client = basic_smtp_client<boost::beast::tcp_stream>;

// TCP connect to one address within timeout (Postfix smtp_connect_timeout).
boost::asio::awaitable<boost::system::error_code> smtp_connect(boost::beast::tcp_stream& stream,
                                                               boost::asio::ip::tcp::endpoint endpoint,
                                                               std::chrono::seconds timeout);

}  // namespace sealgate::gateway

template <>
struct boost::system::is_error_code_enum<sealgate::gateway::smtp_client_error> : std::true_type {};
