// tls and plain (smtp.cpp).
#pragma once
#include "gateway/methods/method.hpp"

namespace sealgate::gateway {

class smtp_method final : public delivery_method {
 public:
  explicit smtp_method(policy::method id);  // method::tls or method::plain
  policy::method id() const override { return id_; }
  boost::asio::awaitable<method_action> act(method_request request) const override;

 private:
  policy::method id_;
};

}  // namespace sealgate::gateway
