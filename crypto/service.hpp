// What crypto/ offers delivery: key facts for the policy and encryption for
// a recipient, with the engines and the key cache built once from the
// crypto: config. Shaped for gateway/delivery's delivery_services hooks
// (key_facts, encrypt). Never blocks an io thread; never returns content in a reason.
#pragma once
#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "crypto/keys.hpp"
#include "policy/decide.hpp"
#include "policy/policy.hpp"

namespace sealgate::dns {
class resolver;
}

namespace sealgate::crypto {

class crypto_service {
 public:
  // resolver: may be null when no DNS source is enabled; it, and pool, must
  // outlive the service. Throws std::runtime_error naming what is wrong
  // (gnupg_home, the signing key or certificate, the trust store).
  crypto_service(const crypto_options& options, dns::resolver* resolver, boost::asio::thread_pool& pool);
  ~crypto_service();
  crypto_service(const crypto_service&) = delete;
  crypto_service& operator=(const crypto_service&) = delete;

  // For delivery_services::key_facts: found, absent or tempfail per method.
  boost::asio::awaitable<policy::key_facts> key_facts(std::string address);

  struct outcome {
    std::optional<std::string> message;  // what to send: encrypted, or the input when it was encrypted already
    bool already_encrypted = false;
    bool no_key = false;    // a recipient has no usable key (absent or tempfail), as opposed to a failed encryption
    bool tempfail = false;  // a key lookup failed (not "no key"): try again later
    std::string why;        // when there is no message
    std::vector<std::string> key_ids;  // per address: PGP fingerprint or certificate SHA-256
  };
  // One key per address, all by method (pgp or smime); sign with the
  // gateway's key first. Content with CRLF line ends.
  boost::asio::awaitable<outcome> encrypt(policy::method method, std::vector<std::string> addresses,
                                          std::string content, bool sign);

  // For delivery_services::encrypt: one recipient, signed when the gateway
  // has a signing key for the method. nullopt: the method failed (*why).
  boost::asio::awaitable<std::optional<std::string>> encrypt_for(policy::method method, std::string address,
                                                                 std::shared_ptr<const std::string> content,
                                                                 std::string* why, std::string* key_id = nullptr);

  bool can_sign(policy::method method) const;
  key_finder& finder();

 private:
  std::unique_ptr<pgp_engine> pgp_;  // null without gnupg_home
  std::unique_ptr<smime_engine> smime_;
  std::unique_ptr<key_finder> finder_;
  boost::asio::thread_pool& pool_;
};

}  // namespace sealgate::crypto
