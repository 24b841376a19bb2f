// PGP/MIME (RFC 3156) through GPGME with the gateway's own GNUPGHOME: key
// listing and evaluation, import of discovered keys, encryption (optionally
// signed). Every member blocks (GPGME runs gpg): call them on a worker pool
// (on_pool in common/worker.hpp, or encrypt_async below), never on an io thread.
#pragma once
#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/mime.hpp"
#include "crypto/options.hpp"

namespace sealgate::crypto {

// One key and what the rules say about it (encryption-capable, not expired,
// not revoked, a user ID matching the address).
struct pgp_key_info {
  std::string fingerprint;
  std::string algorithm;               // of the encryption subkey, e.g. "rsa3072", "cv25519" (sign-only: the primary's)
  std::vector<std::string> addresses;  // of its valid user IDs
  long long created = 0;               // primary key, seconds since the epoch
  bool usable = false;
  std::string why;                     // when not usable
};

struct pgp_key_list {
  bool ok = false;                  // false: gpg could not be asked (a temporary failure)
  std::string error;
  std::vector<pgp_key_info> keys;   // best usable key first
};

struct pgp_recipient {
  std::string fingerprint;
  bool discovered = false;  // lives in the discovered-keys home, not the operator's keyring
};

class pgp_engine {
 public:
  // Throws std::runtime_error when GPGME cannot use gnupg_home, or when a
  // signing key is configured but has no usable secret key there.
  explicit pgp_engine(const crypto_options& options);
  ~pgp_engine();
  pgp_engine(const pgp_engine&) = delete;
  pgp_engine& operator=(const pgp_engine&) = delete;

  // Keys the operator imported into gnupg_home whose user IDs mention the address.
  pgp_key_list keyring_keys(std::string_view address) const;

  // Imports key_data (an OPENPGPKEY record) into a separate home for
  // discovered keys (gnupg_home/discovered), so that it never passes for a key
  // the operator imported, and evaluates exactly the keys it contained.
  pgp_key_list import_discovered(std::span<const uint8_t> key_data, std::string_view address) const;

  // The whole entity, encrypted to every recipient (all from the same home),
  // signed with pgp_signing_key first when sign is set (RFC 3156 6.2).
  encrypt_result encrypt(std::string_view message, const std::vector<pgp_recipient>& to, bool sign) const;

  bool can_sign() const;

  struct impl;

 private:
  std::unique_ptr<impl> impl_;
};

// encrypt() on the pool; resumes on the caller's executor.
boost::asio::awaitable<encrypt_result> encrypt_async(boost::asio::thread_pool& pool, const pgp_engine& engine,
                                                     std::string message, std::vector<pgp_recipient> to, bool sign);

}  // namespace sealgate::crypto
