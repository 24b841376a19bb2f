// portal (portal.cpp): deposits the message in the portal store for this
// recipient; the queue then sends the notification as a message of its own.
#pragma once
#include "gateway/methods/method.hpp"

namespace sealgate::gateway {

class portal_method final : public delivery_method {
 public:
  policy::method id() const override { return policy::method::portal; }
  boost::asio::awaitable<method_action> act(method_request request) const override;
};

}  // namespace sealgate::gateway
