// pgp and smime (encryption.cpp).
#pragma once
#include "gateway/methods/method.hpp"

namespace sealgate::gateway {

class encryption_method final : public delivery_method {
 public:
  explicit encryption_method(policy::method id);  // method::pgp or method::smime
  policy::method id() const override { return id_; }
  boost::asio::awaitable<method_action> act(method_request request) const override;

 private:
  policy::method id_;
};

}  // namespace sealgate::gateway
