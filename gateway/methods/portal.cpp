// portal: the deposit itself is the portal service's (portal_service.hpp);
// here only what its answer means to the queue. A deposit that fails is a
// method failure, so the rule's on_failure decides (the shipped policy then
// holds the message): never a reason to send it by a weaker method.
#include "gateway/methods/portal.hpp"

namespace sealgate::gateway {

boost::asio::awaitable<method_action> portal_method::act(method_request request) const {
  method_action a;
  if (!request.deposit || !*request.deposit) {
    a.next = method_action::step::method_failed;
    a.result = temporary_outcome("4.7.10", "the portal is not configured");
    co_return a;
  }
  portal_deposit_request d;
  d.queue_id = request.queue_id;
  d.sender = request.sender;
  d.recipient = request.recipient;
  d.expire = request.decision ? request.decision->portal_expire : 0;
  d.content = request.content;
  std::string why;
  auto result = co_await (*request.deposit)(std::move(d), &why);
  if (!result) {
    a.next = method_action::step::method_failed;
    a.result = temporary_outcome("4.7.10", "portal deposit failed: " + why);
    co_return a;
  }
  a.next = method_action::step::deposited;
  a.result = reply_outcome(250, "2.0.0", "deposited in the portal (entry " + std::to_string(result->entry_id) + ")");
  a.notification = std::move(result->notification);
  a.portal_entry = result->entry_id;
  co_return a;
}

}  // namespace sealgate::gateway
