// Member definitions of basic_smtp_client, included by smtp_client.cpp (which
// instantiates the TCP client) and by unit tests (which instantiate it over
// Beast's in-memory test stream). Include nowhere else.
#pragma once
#include <openssl/ssl.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "gateway/smtp_client/smtp_client.hpp"

namespace sealgate::gateway {

namespace detail {
// Beast's tcp_stream carries the deadline; an in-memory test stream has no clock.
inline void arm_deadline(boost::beast::tcp_stream& s, std::chrono::steady_clock::duration d) { s.expires_after(d); }
inline void disarm_deadline(boost::beast::tcp_stream& s) { s.expires_never(); }
template <class S>
void arm_deadline(S&, std::chrono::steady_clock::duration) {}
template <class S>
void disarm_deadline(S&) {}

inline boost::system::error_code transport_error(const boost::system::error_code& ec) {
  if (ec == boost::beast::error::timeout) return smtp_client_error::timeout;
  if (ec == boost::asio::error::eof || ec == boost::asio::ssl::error::stream_truncated)
    return smtp_client_error::connection_closed;
  return ec;
}
}  // namespace detail

template <class NextLayer>
basic_smtp_client<NextLayer>::basic_smtp_client(NextLayer next, std::shared_ptr<boost::asio::ssl::context> tls_context,
                                                smtp_timeouts timeouts, smtp_client_limits limits)
    : context_(std::move(tls_context)),
      stream_(std::move(next), *context_),
      timeouts_(timeouts),
      limits_(limits) {}

template <class NextLayer>
boost::asio::awaitable<boost::system::error_code> basic_smtp_client<NextLayer>::read_line(
    std::string& line, std::chrono::steady_clock::duration timeout) {
  auto use = boost::asio::as_tuple(boost::asio::use_awaitable);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto nl = buffer_.find('\n');
    if (nl != std::string::npos) {
      size_t end = nl > 0 && buffer_[nl - 1] == '\r' ? nl - 1 : nl;
      if (end > limits_.line_length) co_return smtp_client_error::line_too_long;
      line.assign(buffer_, 0, end);
      buffer_.erase(0, nl + 1);
      co_return boost::system::error_code{};
    }
    if (buffer_.size() > limits_.line_length + 1) co_return smtp_client_error::line_too_long;
    // One deadline for the whole line, not one per read: a server that sends
    // a byte every few seconds must not stretch a stage's timeout for ever.
    auto left = deadline - std::chrono::steady_clock::now();
    if (left <= std::chrono::steady_clock::duration::zero()) co_return smtp_client_error::timeout;
    char chunk[4096];
    detail::arm_deadline(stream_.next_layer(), left);
    boost::system::error_code ec;
    size_t n = 0;
    if (tls_.active) std::tie(ec, n) = co_await stream_.async_read_some(boost::asio::buffer(chunk), use);
    else std::tie(ec, n) = co_await stream_.next_layer().async_read_some(boost::asio::buffer(chunk), use);
    detail::disarm_deadline(stream_.next_layer());
    buffer_.append(chunk, n);
    if (ec && n == 0) co_return detail::transport_error(ec);
  }
}

template <class NextLayer>
boost::asio::awaitable<smtp_result> basic_smtp_client<NextLayer>::read_reply(std::chrono::seconds timeout) {
  reply_parser parser(limits_.reply_lines);
  smtp_result out;
  // One deadline for the whole reply: a server that trickles one line per
  // timeout must not hold the connection forever.
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!parser.done()) {
    auto left = deadline - std::chrono::steady_clock::now();
    if (left <= std::chrono::steady_clock::duration::zero()) {
      out.error = smtp_client_error::timeout;
      co_return out;
    }
    std::string line;
    if (auto ec = co_await read_line(line, left)) {
      out.error = ec;
      co_return out;
    }
    if (auto ec = parser.feed(line)) {
      out.error = ec;
      co_return out;
    }
  }
  out.reply = parser.take();
  co_return out;
}

template <class NextLayer>
boost::asio::awaitable<boost::system::error_code> basic_smtp_client<NextLayer>::write(std::string data,
                                                                                     std::chrono::seconds timeout) {
  auto use = boost::asio::as_tuple(boost::asio::use_awaitable);
  detail::arm_deadline(stream_.next_layer(), timeout);
  boost::system::error_code ec;
  if (tls_.active) std::tie(ec, std::ignore) = co_await boost::asio::async_write(stream_, boost::asio::buffer(data), use);
  else std::tie(ec, std::ignore) = co_await boost::asio::async_write(stream_.next_layer(), boost::asio::buffer(data), use);
  detail::disarm_deadline(stream_.next_layer());
  co_return ec ? detail::transport_error(ec) : ec;
}

template <class NextLayer>
boost::asio::awaitable<smtp_result> basic_smtp_client<NextLayer>::command(std::string line, std::chrono::seconds timeout) {
  smtp_result out;
  if (auto ec = co_await write(line + "\r\n", timeout)) {
    out.error = ec;
    co_return out;
  }
  co_return co_await read_reply(timeout);
}

template <class NextLayer>
boost::asio::awaitable<std::vector<smtp_result>> basic_smtp_client<NextLayer>::pipeline(std::vector<std::string> lines,
                                                                                       std::chrono::seconds timeout) {
  std::vector<smtp_result> out(lines.size());
  std::string batch;
  for (const auto& l : lines) batch += l + "\r\n";
  if (auto ec = co_await write(std::move(batch), timeout)) {
    for (auto& r : out) r.error = ec;
    co_return out;
  }
  for (size_t i = 0; i < out.size(); ++i) {
    out[i] = co_await read_reply(timeout);
    if (!out[i]) {
      for (size_t j = i + 1; j < out.size(); ++j) out[j].error = out[i].error;
      break;
    }
  }
  co_return out;
}

template <class NextLayer>
boost::asio::awaitable<smtp_result> basic_smtp_client<NextLayer>::greeting() {
  co_return co_await read_reply(timeouts_.helo);
}

template <class NextLayer>
boost::asio::awaitable<smtp_result> basic_smtp_client<NextLayer>::ehlo(std::string helo_name) {
  extensions_ = {};
  auto r = co_await command("EHLO " + helo_name, timeouts_.helo);
  if (r && r.reply.code == 250) {
    extensions_ = parse_ehlo_reply(r.reply);
    co_return r;
  }
  // RFC 5321 4.1.4 / 3.2: a server that does not know EHLO answers 500/502; fall back to HELO.
  if (r && r.reply.permanent()) r = co_await command("HELO " + helo_name, timeouts_.helo);
  co_return r;
}

template <class NextLayer>
boost::asio::awaitable<smtp_result> basic_smtp_client<NextLayer>::start_tls(std::string server_name,
                                                                           std::string helo_name) {
  auto r = co_await command("STARTTLS", timeouts_.starttls);
  if (!r || r.reply.code != 220) co_return r;
  // RFC 3207 5 and the 2011 STARTTLS command injection: anything the server
  // sent after its 220 arrived in clear and must not be read as if it came
  // through TLS.
  tls_.discarded_plaintext = buffer_.size();
  buffer_.clear();
  if (!server_name.empty()) SSL_set_tlsext_host_name(stream_.native_handle(), server_name.c_str());
  detail::arm_deadline(stream_.next_layer(), timeouts_.starttls);
  auto [ec] = co_await stream_.async_handshake(boost::asio::ssl::stream_base::client,
                                                boost::asio::as_tuple(boost::asio::use_awaitable));
  detail::disarm_deadline(stream_.next_layer());
  if (ec) {
    tls_.handshake_error = ec == boost::beast::error::timeout ? "timeout" : ec.message();
    r.error = ec == boost::beast::error::timeout ? make_error_code(smtp_client_error::timeout)
                                                 : make_error_code(smtp_client_error::tls_handshake);
    co_return r;
  }
  tls_.active = true;
  tls_.facts = crypto::describe(stream_.native_handle());
  tls_.verification = crypto::verify_peer(stream_.native_handle(), server_name);
  tls_.chain = crypto::peer_chain_der(stream_.native_handle());
  // RFC 3207 4.2: forget what was learnt before TLS and ask again.
  co_return co_await ehlo(std::move(helo_name));
}

template <class NextLayer>
boost::asio::awaitable<smtp_result> basic_smtp_client<NextLayer>::send_data(std::shared_ptr<const message_content> content) {
  auto r = co_await command("DATA", timeouts_.data_init);
  if (!r) co_return r;
  if (r.reply.code != 354) {
    // Only 354 starts the content (RFC 5321 4.1.1.4). A refusal keeps its
    // reply; a 250 here would let a hostile server have a message recorded
    // as delivered that it never received.
    if (!r.reply.transient() && !r.reply.permanent()) r.error = smtp_client_error::unexpected_reply;
    co_return r;
  }
  bool at_line_start = true, pending_cr = false;
  constexpr size_t piece = 64 * 1024;
  const uint64_t size = content->size();
  std::string raw;
  for (uint64_t at = 0; at < size || at == 0; at += piece) {
    bool last = at + piece >= size;
    if (!content->read(at, piece, raw)) {
      // No final dot may follow a message we could not read whole: hang up.
      boost::beast::get_lowest_layer(stream_).close();
      r.error = smtp_client_error::content_unreadable;
      co_return r;
    }
    std::string stuffed = dot_stuff(raw, at_line_start, last, pending_cr);
    if (auto ec = co_await write(std::move(stuffed), timeouts_.data_xfer)) {
      r.error = ec;
      co_return r;
    }
    if (last) break;
  }
  r = co_await read_reply(timeouts_.data_done);
  // After the final dot only 2xx means delivered, 4xx/5xx a refusal; a 3xx
  // (say a second 354) is nonsense and the message's fate unknown.
  if (r && !r.reply.positive() && !r.reply.transient() && !r.reply.permanent())
    r.error = smtp_client_error::unexpected_reply;
  co_return r;
}

template <class NextLayer>
boost::asio::awaitable<smtp_result> basic_smtp_client<NextLayer>::quit() {
  auto r = co_await command("QUIT", timeouts_.quit);
  if (tls_.active) {
    // close_notify (RFC 8446 6.1), waited for briefly: the session is over either way.
    detail::arm_deadline(stream_.next_layer(), std::min(timeouts_.quit, std::chrono::seconds(5)));
    co_await stream_.async_shutdown(boost::asio::as_tuple(boost::asio::use_awaitable));
    detail::disarm_deadline(stream_.next_layer());
  }
  boost::beast::get_lowest_layer(stream_).close();
  co_return r;
}

}  // namespace sealgate::gateway
