// defer (defer.cpp).
#pragma once
#include "gateway/methods/method.hpp"

namespace sealgate::gateway {

class defer_method final : public delivery_method {
 public:
  policy::method id() const override { return policy::method::defer; }
  bool reads_content() const override { return false; }
  boost::asio::awaitable<method_action> act(method_request request) const override;
};

// Why decide() deferred, in its own words ("defer: ..."), without the
// prefix; when no method was available, with each method's reason.
std::string defer_reason(const policy::decision& d);

}  // namespace sealgate::gateway
