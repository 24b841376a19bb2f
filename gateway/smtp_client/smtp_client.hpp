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
#include "gateway/config/delivery_options.hpp"
#include "gateway/mail/message_content.hpp"
#include "gateway/smtp_client/smtp_reply.hpp"

namespace sealgate::gateway {

// What STARTTLS gave, for the probe and for delivery to check the live
// connection against its requirement (a cached probe never excuses a
// connection that lacks it).
struct tls_state {
  bool active = false;
  crypto::tls_facts facts;               // protocol, cipher
  crypto::peer_verification verification;  // chain against the trust store, host name
  std::vector<std::vector<unsigned char>> chain;  // DER, leaf first (for DANE)
  size_t discarded_plaintext = 0;        // octets the server sent after its 220 and before the handshake
  std::string handshake_error;           // why the handshake failed, in OpenSSL's words
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
  // RFC 2920: several command lines (MAIL FROM and the RCPT TOs) in one
  // write, then one reply per line, in order, each within timeout. Only for a
  // server that offered PIPELINING. After a transport error the remaining
  // results carry that error.
  boost::asio::awaitable<std::vector<smtp_result>> pipeline(std::vector<std::string> lines, std::chrono::seconds timeout);
  // DATA, content (CRLF lines, dot-stuffed here) and the final reply.
  // The content is read from its source a piece at a time (64 KiB), never
  // copied whole. A source that cannot be read drops the connection: the
  // server never sees a final dot for a message we could not send whole.
  boost::asio::awaitable<smtp_result> send_data(std::shared_ptr<const message_content> content);
  boost::asio::awaitable<smtp_result> send_data(std::string content) {
    return send_data(message_content::in_memory(std::move(content)));
  }
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

// Connects to the first of addresses that answers within timeout each (RFC
// 5321 5.1: try the addresses in order). The stream lives on executor: give
// each connection a strand of its own.
struct smtp_connection_attempt {
  std::optional<boost::beast::tcp_stream> stream;  // connected, when an address answered
  boost::asio::ip::address address;                // the one that answered
  std::string errors;                              // "ADDR:PORT: reason; ..." for those that did not
};
boost::asio::awaitable<smtp_connection_attempt> smtp_connect_first(boost::asio::any_io_executor executor,
                                                                   std::vector<boost::asio::ip::address> addresses,
                                                                   uint16_t port, std::chrono::seconds timeout);

}  // namespace sealgate::gateway
