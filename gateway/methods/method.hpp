// The delivery methods: what each does to a message for one recipient once the
// policy has chosen it, before the transport carries it. The pass is
//   facts -> policy decides (policy/, pure) -> method acts (here) -> transport -> record.
// Whether a method is possible for a recipient, and which facts that takes,
// is the policy's (policy::decide, policy::needed_facts), so that `sealgate
// policy explain` answers from the same function the queue uses. A method
// only acts. Adding one: a file here with its type, and a line in registry.cpp.
#pragma once
#include <boost/asio/awaitable.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "gateway/mail/message_content.hpp"
#include "gateway/mail/outcome.hpp"
#include "policy/decide.hpp"

namespace sealgate::gateway {

// Encrypts content for one recipient (pgp or smime). nullopt: the method
// failed for this recipient (reason in *why); otherwise *key_id names the
// key used (PGP fingerprint, or the certificate's SHA-256) for the record.
// Production: crypto_service; unit tests: a script.
using encrypt_function = std::function<boost::asio::awaitable<std::optional<std::string>>(
    policy::method, std::string address, std::shared_ptr<const std::string> content, std::string* why,
    std::string* key_id)>;

// Deposits a message for one recipient in the portal (portal_service in
// production, a script in unit tests) and returns the notification to send
// to that recipient; nullopt when it could not (why in *why).
struct portal_deposit_request {
  std::string queue_id, sender, recipient;
  int64_t expire = 0;  // seconds; 0: the configuration's portal.expire
  std::shared_ptr<const message_content> content;
};
struct portal_deposit_result {
  int64_t entry_id = 0;
  std::string notification;  // an RFC 5322 message: a link and neutral text, nothing of the original
};
using deposit_function = std::function<boost::asio::awaitable<std::optional<portal_deposit_result>>(
    portal_deposit_request, std::string* why)>;

// What a method is asked to do for one recipient.
struct method_request {
  std::string queue_id;
  std::string recipient;
  const policy::decision* decision = nullptr;
  // The message as it leaves (after the rule's Subject rewrite); null for a
  // method that does not read it (reads_content() false).
  std::shared_ptr<const message_content> content;
  const encrypt_function* encrypt = nullptr;  // may point to an empty function: no engine configured
  const deposit_function* deposit = nullptr;  // likewise: no portal configured
  std::string sender;
};

// What the queue does next for that recipient.
struct method_action {
  enum class step {
    send,           // hand `content` to the transport under the decision's TLS requirement
    bounce,         // final: `result` (a policy refusal)
    defer,          // try again later: `result`
    hold,           // keep it for an operator (policy hold)
    method_failed,  // this method cannot serve the recipient: the rule's on_failure decides (`result`)
    deposited,      // final: the portal holds it (`result`); the queue spools `notification` to the recipient
  };
  step next = step::send;
  outcome result;
  std::shared_ptr<const message_content> content;  // send: what the transport carries
  bool own_transfer = false;  // send: the content is this recipient's alone (encrypted for it)
  std::string notification;   // deposited: the message that tells the recipient
  int64_t portal_entry = 0;   // deposited: the store's entry
  std::string key_id;         // send, after encryption: the recipient's key (PGP fingerprint, certificate SHA-256)
};

class delivery_method {
 public:
  virtual ~delivery_method() = default;
  virtual policy::method id() const = 0;
  // False for methods that decide without the message (reject, hold, defer):
  // the queue then spares itself the Subject rewrite.
  virtual bool reads_content() const { return true; }
  virtual boost::asio::awaitable<method_action> act(method_request request) const = 0;
};

// The registered method for a policy's choice (registry.cpp). Every
// policy::method has one.
const delivery_method& method_for(policy::method m);

}  // namespace sealgate::gateway
