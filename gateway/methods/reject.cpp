// reject: the recipient bounces (5.7.1) with the rule's text, or a plain
// "refused by policy rule NAME"; nothing is sent anywhere.
#include "gateway/methods/reject.hpp"

namespace sealgate::gateway {

boost::asio::awaitable<method_action> reject_method::act(method_request request) const {
  const auto& d = *request.decision;
  method_action a;
  a.next = method_action::step::bounce;
  a.result = permanent_outcome("5.7.1", d.reject_text.empty() ? "refused by policy rule " + d.rule : d.reject_text);
  co_return a;
}

}  // namespace sealgate::gateway
