// Key discovery for a recipient address: the operator's PGP keyring, the
// operator's directory of S/MIME certificates, DNS OPENPGPKEY (RFC 7929),
// SMIMEA (RFC 8162) and the Web Key Directory, each switchable, results cached with a TTL. Every source
// and every result keeps found, proven absent and temporary failure apart: a
// lookup that failed is never "no key". WKD (wkd.hpp) is a fifth source, for
// PGP. Never blocks an io thread: gpg and file reads go to the pool.
#pragma once
#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "crypto/options.hpp"
#include "crypto/pgp.hpp"
#include "crypto/smime.hpp"
#include "policy/decide.hpp"

namespace sealgate::dns {
class resolver;
}

namespace sealgate::crypto {

enum class key_source { keyring, smime_directory, dns_openpgpkey, dns_smimea, wkd };
std::string_view to_string(key_source s);

struct key_candidate {
  std::string id;           // PGP fingerprint, or the certificate's SHA-256
  std::string description;  // "rsa3072", "ec prime256v1 CN=Bob", "SMIMEA 3 0 0"
  std::vector<std::string> addresses;
  bool usable = false;
  std::string why;          // when not usable
};

struct source_report {
  key_source source = key_source::keyring;
  bool enabled = false;
  // found: a usable key; absent: the source answered and has none usable
  // (proven); tempfail: the source could not be asked (gpg failed, SERVFAIL,
  // timeout, unreadable directory).
  policy::fact outcome = policy::fact::absent;
  std::string detail;       // why absent or tempfail, in words
  bool dns = false;
  bool secure = false;      // DNS only: the answer was DNSSEC-secure
  std::string wkd_method;   // WKD only, once a URL was fetched: "advanced" or "direct"
  std::string wkd_host;     // WKD only: the host asked (openpgpkey.<domain> or <domain>)
  std::vector<key_candidate> candidates;
};

struct pgp_lookup {
  policy::fact outcome = policy::fact::absent;
  std::vector<source_report> sources;
  std::optional<pgp_recipient> key;  // the key to use, when found
  bool from_cache = false;
};

struct smime_lookup {
  policy::fact outcome = policy::fact::absent;
  std::vector<source_report> sources;
  certificate cert;  // the certificate to use, when found
  bool from_cache = false;
};

// The one place where lookups become the policy's facts.
policy::key_facts to_key_facts(const pgp_lookup& pgp, const smime_lookup& smime);

class key_finder {
 public:
  using clock = std::function<std::chrono::steady_clock::time_point()>;
  // pgp: null when crypto.gnupg_home is not set (PGP then proven unavailable);
  // resolver: null when no DNS source is enabled. All must outlive the finder.
  key_finder(const crypto_options& options, const pgp_engine* pgp, const smime_engine& smime, dns::resolver* resolver,
             boost::asio::thread_pool& pool, clock now = {});
  ~key_finder();

  // every_source: ask every enabled source even after one found a key (for
  // `sealgate keys lookup`); otherwise stop at the first usable key, in the
  // order keyring, DNS, WKD (an operator's key wins over a discovered one).
  boost::asio::awaitable<pgp_lookup> find_pgp(std::string address, bool every_source = false);
  boost::asio::awaitable<smime_lookup> find_smime(std::string address, bool every_source = false);

  struct state;

 private:
  std::shared_ptr<state> state_;
};

}  // namespace sealgate::crypto
