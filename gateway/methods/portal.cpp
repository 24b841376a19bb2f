// portal: until the portal exists (the next issue) it is never configured, so
// the policy cannot choose it; should it be chosen anyway, it fails as a
// method, and the rule's on_failure decides.
#include "gateway/methods/portal.hpp"

namespace sealgate::gateway {

boost::asio::awaitable<method_action> portal_method::act(method_request) const {
  method_action a;
  a.next = method_action::step::method_failed;
  a.result = temporary_outcome("4.7.10", "the portal is not available");
  co_return a;
}

}  // namespace sealgate::gateway
