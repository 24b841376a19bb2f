// The TCP side of the outbound SMTP client: connect with a deadline and the
// instantiation of basic_smtp_client over Beast's tcp_stream (the protocol
// pieces are in smtp_reply.cpp). Never logs; never sends content twice.
#include "gateway/smtp_client.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "gateway/smtp_client_impl.hpp"

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

template class basic_smtp_client<boost::beast::tcp_stream>;

}  // namespace sealgate::gateway
