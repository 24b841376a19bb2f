// defer: no method of the rule can be used now, or a fact it needs is not
// known (a lookup failed): the recipient waits and the queue tries again.
// Never a "no": a failed lookup is a temporary failure.
#include "gateway/methods/defer.hpp"

namespace sealgate::gateway {

std::string defer_reason(const policy::decision& d) {
  std::string why = "the policy could not decide";
  for (auto it = d.reasons.rbegin(); it != d.reasons.rend(); ++it)
    if (it->rfind("defer: ", 0) == 0) {
      why = it->substr(7);
      break;
    }
  if (why.rfind("no method of rule", 0) == 0) {
    std::string each;
    for (const auto& v : d.considered)
      if (v.state != policy::method_verdict::availability::skipped)
        each += (each.empty() ? ": " : "; ") + std::string(policy::to_string(v.m)) + ": " + v.why;
    why += each;
  }
  return why;
}

boost::asio::awaitable<method_action> defer_method::act(method_request request) const {
  method_action a;
  a.next = method_action::step::defer;
  a.result = temporary_outcome("4.7.0", defer_reason(*request.decision));
  co_return a;
}

}  // namespace sealgate::gateway
