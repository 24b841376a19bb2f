// crypto_service; see service.hpp. The key used to encrypt is the one key
// discovery chose (from its cache, so the policy's facts and the encryption
// agree); a lookup that failed is reported as a temporary failure.
#include "crypto/service.hpp"

#include "common/metrics.hpp"

namespace sealgate::crypto {
namespace {

std::string missing_key(std::string_view method, const std::string& address, const std::vector<source_report>& sources) {
  std::string out = std::string(method) + ": no usable key for " + address;
  for (auto& s : sources)
    if (s.enabled)
      out += "; " + std::string(to_string(s.source)) + ": " + std::string(policy::to_string(s.outcome)) +
             (s.detail.empty() ? "" : " (" + s.detail + ")");
  return out;
}

}  // namespace

crypto_service::crypto_service(const crypto_options& options, dns::resolver* resolver, boost::asio::thread_pool& pool)
    : pool_(pool) {
  if (!options.gnupg_home.empty()) pgp_ = std::make_unique<pgp_engine>(options);
  smime_ = std::make_unique<smime_engine>(options);
  finder_ = std::make_unique<key_finder>(options, pgp_.get(), *smime_, resolver, pool);
}

crypto_service::~crypto_service() = default;

key_finder& crypto_service::finder() { return *finder_; }

bool crypto_service::can_sign(policy::method method) const {
  if (method == policy::method::pgp) return pgp_ && pgp_->can_sign();
  return method == policy::method::smime && smime_->can_sign();
}

boost::asio::awaitable<policy::key_facts> crypto_service::key_facts(std::string address) {
  auto pgp = co_await finder_->find_pgp(address);
  auto smime = co_await finder_->find_smime(address);
  // Per source asked; a kept answer once, as "cache".
  auto count = [](const auto& lookup) {
    auto& m = metrics::get();
    if (lookup.from_cache) return m.key_lookup("cache", policy::to_string(lookup.outcome));
    for (const auto& s : lookup.sources)
      if (s.enabled) m.key_lookup(to_string(s.source), policy::to_string(s.outcome));
  };
  count(pgp);
  count(smime);
  co_return to_key_facts(pgp, smime);
}

boost::asio::awaitable<crypto_service::outcome> crypto_service::encrypt(policy::method method,
                                                                        std::vector<std::string> addresses,
                                                                        std::string content, bool sign) {
  outcome out;
  if (method != policy::method::pgp && method != policy::method::smime) {
    out.why = "not an encryption method: " + std::string(policy::to_string(method));
    co_return out;
  }
  bool pgp = method == policy::method::pgp;
  if (pgp && !pgp_) {
    out.why = "pgp: crypto.gnupg_home is not set";
    out.no_key = true;
    co_return out;
  }
  std::vector<pgp_recipient> keys;
  std::vector<certificate> certs;
  for (const auto& a : addresses) {
    if (pgp) {
      auto r = co_await finder_->find_pgp(a);
      if (r.key) {
        out.key_ids.push_back(r.key->fingerprint);
        keys.push_back(*r.key);
        continue;
      }
      out.tempfail = r.outcome == policy::fact::tempfail;
      out.why = missing_key("pgp", a, r.sources);
    } else {
      auto r = co_await finder_->find_smime(a);
      if (r.cert) {
        out.key_ids.push_back(sha256_fingerprint(r.cert));
        certs.push_back(r.cert);
        continue;
      }
      out.tempfail = r.outcome == policy::fact::tempfail;
      out.why = missing_key("smime", a, r.sources);
    }
    out.no_key = true;
    co_return out;
  }
  // Two statements, not a conditional expression holding two co_awaits:
  // g++ 12 destroys such a result before it is used.
  encrypt_result r;
  auto started = std::chrono::steady_clock::now();
  if (pgp) r = co_await encrypt_async(pool_, *pgp_, std::move(content), std::move(keys), sign);
  else r = co_await encrypt_async(pool_, *smime_, std::move(content), std::move(certs), sign);
  if (r.state == encrypt_result::status::encrypted)
    metrics::get().encryption(pgp ? "pgp" : "smime", std::chrono::steady_clock::now() - started);
  if (r.state == encrypt_result::status::failed) {
    out.why = std::string(pgp ? "pgp: " : "smime: ") + r.error;
    co_return out;
  }
  out.already_encrypted = r.state == encrypt_result::status::already_encrypted;
  out.message = std::move(r.message);
  co_return out;
}

boost::asio::awaitable<std::optional<std::string>> crypto_service::encrypt_for(policy::method method, std::string address,
                                                                               std::shared_ptr<const std::string> content,
                                                                               std::string* why, std::string* key_id) {
  std::vector<std::string> to{std::move(address)};
  outcome o = co_await encrypt(method, std::move(to), *content, can_sign(method));
  if (!o.message && why) *why = o.why;
  if (o.message && key_id && !o.key_ids.empty()) *key_id = o.key_ids.front();
  co_return std::move(o.message);
}

}  // namespace sealgate::crypto
