// pgp and smime: the message is encrypted for the one recipient (PGP/MIME,
// RFC 3156; S/MIME, RFC 8551) by the crypto engine, on its own thread pool,
// and travels in a transfer of its own. A recipient the engine cannot serve
// (no usable key after all, a failed encryption) is a method failure: the
// rule's on_failure decides, never a fallback to sending the clear message.
#include "gateway/methods/encryption.hpp"

namespace sealgate::gateway {

encryption_method::encryption_method(policy::method id) : id_(id) {}

boost::asio::awaitable<method_action> encryption_method::act(method_request request) const {
  method_action a;
  // Encryption needs the whole message in memory, and its result is held
  // until sent: up to twice the message size per such transfer.
  auto plain = std::make_shared<std::string>();
  if (!request.content->read_all(*plain)) {
    a.next = method_action::step::defer;
    a.result = temporary_outcome("4.3.0", "cannot read the message from the spool");
    co_return a;
  }
  std::string why = "no encryption engine is configured";
  std::optional<std::string> encrypted;
  if (request.encrypt && *request.encrypt) encrypted = co_await (*request.encrypt)(id_, request.recipient, plain, &why, &a.key_id);
  plain.reset();
  if (!encrypted) {
    a.next = method_action::step::method_failed;
    a.result = temporary_outcome("4.7.10", why);
    co_return a;
  }
  a.next = method_action::step::send;
  a.content = message_content::in_memory(std::move(*encrypted));
  a.own_transfer = true;
  co_return a;
}

}  // namespace sealgate::gateway
