// portal (portal.cpp).
#pragma once
#include "gateway/methods/method.hpp"

namespace sealgate::gateway {

class portal_method final : public delivery_method {
 public:
  policy::method id() const override { return policy::method::portal; }
  bool reads_content() const override { return false; }
  boost::asio::awaitable<method_action> act(method_request request) const override;
};

}  // namespace sealgate::gateway
