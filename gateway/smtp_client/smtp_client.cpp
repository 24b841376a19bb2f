// The TCP side of the outbound SMTP client: connect with a deadline and the
// instantiation of basic_smtp_client over Beast's tcp_stream (the protocol
// pieces are in smtp_reply.cpp). Never logs; never sends content twice.
#include "gateway/smtp_client/smtp_client.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "gateway/smtp_client/smtp_client_impl.hpp"

namespace sealgate::gateway {

boost::asio::awaitable<boost::system::error_code> smtp_connect(boost::beast::tcp_stream& stream,
                                                               boost::asio::ip::tcp::endpoint endpoint,
                                                               std::chrono::seconds timeout) {
  stream.expires_after(timeout);
  auto [ec] = co_await stream.async_connect(endpoint, boost::asio::as_tuple(boost::asio::use_awaitable));
  stream.expires_never();
  if (ec == boost::beast::error::timeout) co_return make_error_code(smtp_client_error::timeout);
  co_return ec;
}

boost::asio::awaitable<smtp_connection_attempt> smtp_connect_first(boost::asio::any_io_executor executor,
                                                                   std::vector<boost::asio::ip::address> addresses,
                                                                   uint16_t port, std::chrono::seconds timeout) {
  smtp_connection_attempt out;
  for (const auto& a : addresses) {
    boost::beast::tcp_stream stream(executor);
    auto ec = co_await smtp_connect(stream, boost::asio::ip::tcp::endpoint(a, port), timeout);
    if (!ec) {
      out.stream.emplace(std::move(stream));
      out.address = a;
      co_return out;
    }
    std::string where = a.is_v6() ? "[" + a.to_string() + "]" : a.to_string();
    out.errors += (out.errors.empty() ? "" : "; ") + where + ":" + std::to_string(port) + ": " + ec.message();
  }
  if (addresses.empty()) out.errors = "no address";
  co_return out;
}

template class basic_smtp_client<boost::beast::tcp_stream>;

}  // namespace sealgate::gateway
