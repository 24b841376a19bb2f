// tls and plain: the message goes as it is. They differ in what the transport
// must prove about the connection (the decision's transport level and TLS
// floor: verified or required TLS for tls, opportunistic for plain), which the
// outbound transport enforces, not in what they do to the message.
#include "gateway/methods/smtp.hpp"

namespace sealgate::gateway {

smtp_method::smtp_method(policy::method id) : id_(id) {}

boost::asio::awaitable<method_action> smtp_method::act(method_request request) const {
  method_action a;
  a.next = method_action::step::send;
  a.content = std::move(request.content);
  co_return a;
}

}  // namespace sealgate::gateway
