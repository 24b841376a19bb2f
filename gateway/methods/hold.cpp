// hold: the recipient waits in the spool for an operator (`sealgate queue
// flush ID` releases it, `queue delete` removes it); no retry, no expiry.
#include "gateway/methods/hold.hpp"

namespace sealgate::gateway {

boost::asio::awaitable<method_action> hold_method::act(method_request) const {
  method_action a;
  a.next = method_action::step::hold;
  co_return a;
}

}  // namespace sealgate::gateway
