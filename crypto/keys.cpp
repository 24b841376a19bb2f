// Key discovery; see keys.hpp. Sources are asked in a fixed order, each
// result is kept with its outcome, and only a lookup in which no source
// failed is cached (a failure must be retried, never remembered as "no key").
#include "crypto/keys.hpp"

#include <algorithm>
#include <mutex>
#include <unordered_map>

#include "crypto/address.hpp"
#include "crypto/tls_context.hpp"
#include "crypto/wkd.hpp"
#include "common/worker.hpp"
#include "dns/resolver.hpp"

namespace sealgate::crypto {
namespace {

using policy::fact;
using time_point = std::chrono::steady_clock::time_point;

struct directory_entry {
  certificate cert;
  std::vector<certificate> file_chain;  // the other certificates of its file: intermediates
  std::vector<std::string> addresses;
};

// The certificates of crypto.smime_certificates, read again when older than cache_ttl.
struct directory_index {
  bool ok = false;
  std::string error;
  std::vector<directory_entry> entries;
  size_t unreadable_files = 0;
  time_point loaded;
};

std::vector<std::string> cert_addresses(const smime_engine& engine, const certificate& c) {
  // evaluate() already knows how to read SAN and emailAddress; reuse it with no address.
  return engine.evaluate(c, {}, "", cert_trust::dane_ee).addresses;
}

directory_index load_directory(const std::filesystem::path& dir, const smime_engine& engine) {
  directory_index index;
  std::error_code ec;
  std::filesystem::directory_iterator it(dir, ec), end;
  if (ec) {
    index.error = "cannot read " + dir.string() + ": " + ec.message();
    return index;
  }
  for (; it != end; it.increment(ec)) {
    if (ec) {
      index.error = "cannot read " + dir.string() + ": " + ec.message();
      return index;
    }
    if (!it->is_regular_file(ec)) continue;
    auto certs = read_pem_certificates(it->path(), nullptr);
    if (certs.empty()) ++index.unreadable_files;
    for (size_t i = 0; i < certs.size(); ++i) {
      directory_entry e{certs[i], {}, cert_addresses(engine, certs[i])};
      for (size_t j = 0; j < certs.size(); ++j)
        if (j != i) e.file_chain.push_back(certs[j]);
      index.entries.push_back(std::move(e));
    }
  }
  index.ok = true;
  return index;
}

key_candidate candidate_of(const pgp_key_info& k) {
  return {k.fingerprint, k.algorithm, k.addresses, k.usable, k.why};
}

key_candidate candidate_of(const smime_cert_info& c, std::string prefix = {}) {
  return {c.fingerprint, prefix + c.key_type + " " + c.subject + " until " + c.not_after, c.addresses, c.usable, c.why};
}

source_report report_for(key_source s) {
  source_report r;
  r.source = s;
  return r;
}

source_report disabled(key_source s, std::string why) {
  source_report r = report_for(s);
  r.enabled = false;
  r.outcome = fact::absent;
  r.detail = std::move(why);
  return r;
}

fact combine(const std::vector<source_report>& sources) {
  bool tempfail = false;
  for (auto& s : sources) {
    if (s.outcome == fact::found) return fact::found;
    tempfail |= s.outcome == fact::tempfail;
  }
  return tempfail ? fact::tempfail : fact::absent;
}

}  // namespace

std::string_view to_string(key_source s) {
  switch (s) {
    case key_source::keyring: return "keyring";
    case key_source::smime_directory: return "smime_directory";
    case key_source::dns_openpgpkey: return "dns_openpgpkey";
    case key_source::dns_smimea: return "dns_smimea";
    case key_source::wkd: return "wkd";
  }
  return "?";
}

policy::key_facts to_key_facts(const pgp_lookup& pgp, const smime_lookup& smime) {
  return policy::key_facts{pgp.outcome, smime.outcome};
}

struct key_finder::state {
  state(const crypto_options& o, const pgp_engine* p, const smime_engine& s, dns::resolver* r,
        boost::asio::thread_pool& tp, clock c)
      : options(o), pgp(p), smime(s), resolver(r), pool(tp), now(std::move(c)) {
    // Built once: loading the trust store per lookup would cost a file read each time.
    if (o.sources.wkd) wkd_context = make_client_context(o.wkd_ca_file);
  }
  crypto_options options;
  const pgp_engine* pgp;
  const smime_engine& smime;
  dns::resolver* resolver;
  boost::asio::thread_pool& pool;
  clock now;
  std::shared_ptr<boost::asio::ssl::context> wkd_context;  // null unless crypto.sources.wkd

  std::mutex mutex;  // guards everything below: lookups run on several io threads
  template <typename T>
  struct cached {
    T value;
    time_point expires;
  };
  std::unordered_map<std::string, cached<pgp_lookup>> pgp_cache;
  std::unordered_map<std::string, cached<smime_lookup>> smime_cache;
  std::shared_ptr<const directory_index> directory;

  static constexpr size_t max_cached = 10000;

  template <typename T>
  std::optional<T> get(std::unordered_map<std::string, cached<T>>& cache, const std::string& key) {
    std::lock_guard lock(mutex);
    auto it = cache.find(key);
    if (it == cache.end()) return std::nullopt;
    if (it->second.expires <= now()) {
      cache.erase(it);
      return std::nullopt;
    }
    T v = it->second.value;
    v.from_cache = true;
    return v;
  }

  // Only complete answers are kept: a lookup in which any source failed is
  // asked again next time. The TTL is the shortest of cache_ttl and the DNS TTLs used.
  template <typename T>
  void put(std::unordered_map<std::string, cached<T>>& cache, const std::string& key, const T& value,
           std::chrono::seconds ttl) {
    for (auto& s : value.sources)
      if (s.outcome == fact::tempfail) return;
    if (ttl.count() <= 0) return;
    std::lock_guard lock(mutex);
    auto t = now();
    if (cache.size() >= max_cached) std::erase_if(cache, [t](auto& kv) { return kv.second.expires <= t; });
    if (cache.size() >= max_cached) cache.clear();
    cache[key] = cached<T>{value, t + ttl};
  }

  std::shared_ptr<const directory_index> current_directory() {
    {
      std::lock_guard lock(mutex);
      if (directory && now() - directory->loaded < options.cache_ttl) return directory;
    }
    auto fresh = std::make_shared<directory_index>(load_directory(options.smime_certificates, smime));
    fresh->loaded = now();
    std::lock_guard lock(mutex);
    if (fresh->ok) directory = fresh;  // a failed read is not remembered
    return fresh;
  }

  std::string cache_key(const std::string& address) const {
    auto a = parse_address(address);
    return a ? a->local + "@" + a->domain : address;
  }
};

namespace {

// Blocking parts, run on the pool.
source_report keyring_source(const pgp_engine* pgp, std::string address) {
  source_report r = report_for(key_source::keyring);
  r.enabled = true;
  auto list = pgp->keyring_keys(address);
  if (!list.ok) {
    r.outcome = fact::tempfail;
    r.detail = "gpg failed: " + list.error;
    return r;
  }
  for (auto& k : list.keys) r.candidates.push_back(candidate_of(k));
  r.outcome = !list.keys.empty() && list.keys.front().usable ? fact::found : fact::absent;
  if (list.keys.empty()) r.detail = "no key with a user ID like " + address;
  else if (r.outcome == fact::absent) r.detail = "no usable key";
  return r;
}

struct directory_result {
  source_report report;
  certificate cert;  // the usable one, when found
};

directory_result directory_source(key_finder::state* st, std::string address) {
  directory_result out{report_for(key_source::smime_directory), nullptr};
  source_report& r = out.report;
  r.enabled = true;
  auto index = st->current_directory();
  if (!index->ok) {
    r.outcome = fact::tempfail;
    r.detail = index->error;
    return out;
  }
  for (auto& e : index->entries) {
    bool mentions = std::any_of(e.addresses.begin(), e.addresses.end(), [&](const std::string& a) {
      return address_matches(a, address, st->options.fold_plus_tag);
    });
    if (!mentions) continue;
    r.candidates.push_back(candidate_of(st->smime.evaluate(e.cert, e.file_chain, address, cert_trust::pkix)));
    if (r.candidates.back().usable && !out.cert) out.cert = e.cert;
  }
  std::stable_partition(r.candidates.begin(), r.candidates.end(), [](auto& c) { return c.usable; });
  r.outcome = !r.candidates.empty() && r.candidates.front().usable ? fact::found : fact::absent;
  if (r.candidates.empty())
    r.detail = "no certificate for " + address + " among " + std::to_string(index->entries.size()) + " in " +
               st->options.smime_certificates.string();
  else if (r.outcome == fact::absent) r.detail = "no usable certificate";
  return out;
}

// Adds what one import of discovered key data gave to r; false when gpg
// failed (r is then a temporary failure: the key may well be fine).
bool add_imported(source_report& r, const pgp_key_list& list, std::string_view what, std::string_view none_why) {
  if (!list.ok) {
    r.outcome = fact::tempfail;
    r.detail = "gpg failed: " + list.error;
    return false;
  }
  if (list.keys.empty())
    r.candidates.push_back({"", std::string(what), {}, false, std::string(none_why)});
  for (auto& k : list.keys) r.candidates.push_back(candidate_of(k));
  return true;
}

// The DNS answer's state before any key in it is looked at.
bool dns_gate(source_report& r, dns::outcome status, bool secure, const std::string& error, dns::absence why,
              std::string_view type) {
  r.dns = true;
  r.secure = secure;
  if (status == dns::outcome::temporary_failure) {
    r.outcome = fact::tempfail;
    r.detail = std::string(type) + " lookup failed: " + error;
    return false;
  }
  if (status == dns::outcome::absent) {
    r.outcome = fact::absent;
    r.detail = "no " + std::string(type) + " record (" + std::string(dns::to_string(why)) + ")";
    return false;
  }
  return true;
}

}  // namespace

key_finder::key_finder(const crypto_options& options, const pgp_engine* pgp, const smime_engine& smime,
                       dns::resolver* resolver, boost::asio::thread_pool& pool, clock now)
    : state_(std::make_shared<state>(options, pgp, smime, resolver, pool,
                                     now ? now : clock([] { return std::chrono::steady_clock::now(); }))) {}

key_finder::~key_finder() = default;

boost::asio::awaitable<pgp_lookup> key_finder::find_pgp(std::string address, bool every_source) {
  auto st = state_;
  std::string key = st->cache_key(address) + (every_source ? "\n*" : "");
  if (auto hit = st->get(st->pgp_cache, key)) co_return *hit;
  pgp_lookup out;
  std::chrono::seconds ttl = st->options.cache_ttl;
  auto done = [&] { return !every_source && !out.sources.empty() && out.sources.back().outcome == fact::found; };

  if (!st->pgp) {
    out.sources.push_back(disabled(key_source::keyring, "crypto.gnupg_home is not set"));
    out.sources.push_back(disabled(key_source::dns_openpgpkey, "crypto.gnupg_home is not set"));
    out.sources.push_back(disabled(key_source::wkd, "crypto.gnupg_home is not set"));
  } else {
    if (!st->options.sources.keyring) {
      out.sources.push_back(disabled(key_source::keyring, "crypto.sources.keyring is off"));
    } else {
      const pgp_engine* engine = st->pgp;
      std::function<source_report()> work = [engine, address] { return keyring_source(engine, address); };
      source_report report = co_await on_pool<source_report>(st->pool, work);
      out.sources.push_back(std::move(report));
      if (out.sources.back().outcome == fact::found)
        for (auto& c : out.sources.back().candidates)
          if (c.usable) {
            out.key = pgp_recipient{c.id, false};
            break;
          }
    }
    if (!done()) {
      if (!st->options.sources.dns_openpgpkey || !st->resolver) {
        out.sources.push_back(disabled(key_source::dns_openpgpkey, "crypto.sources.dns_openpgpkey is off"));
      } else {
        source_report r = report_for(key_source::dns_openpgpkey);
        r.enabled = true;
        std::string name = openpgpkey_name(address);
        if (name.empty()) {
          r.detail = "not an address";
        } else {
          auto answer = co_await st->resolver->resolve_openpgpkey(name);
          if (dns_gate(r, answer.status, answer.secure, answer.error, answer.why_absent,
                       "OPENPGPKEY")) {
            ttl = std::min(ttl, std::chrono::seconds(answer.ttl));
            const pgp_engine* engine = st->pgp;
            for (auto& record : answer.records) {
              std::function<pgp_key_list()> work = [engine, &record, &address] {
                return engine->import_discovered(record, address);
              };
              pgp_key_list list = co_await on_pool<pgp_key_list>(st->pool, work);
              if (!add_imported(r, list, "OPENPGPKEY record", "the record holds no importable OpenPGP key")) break;
            }
            if (r.outcome != fact::tempfail) {
              // RFC 7929 7: without DNSSEC the key could have been put there by anyone on the path.
              if (!answer.secure && st->options.dns_require_secure)
                for (auto& c : r.candidates)
                  if (c.usable) {
                    c.usable = false;
                    c.why = "answer not DNSSEC-secure (crypto.dns_require_secure)";
                  }
              std::stable_partition(r.candidates.begin(), r.candidates.end(), [](auto& c) { return c.usable; });
              r.outcome = !r.candidates.empty() && r.candidates.front().usable ? fact::found : fact::absent;
              if (r.outcome == fact::absent) r.detail = "no usable key in the OPENPGPKEY answer";
              else if (!out.key) out.key = pgp_recipient{r.candidates.front().id, true};
            }
          }
        }
        out.sources.push_back(std::move(r));
      }
    }
    if (!done()) {
      if (!st->options.sources.wkd || !st->resolver) {
        out.sources.push_back(disabled(key_source::wkd, st->options.sources.wkd ? "no DNS resolver" : "crypto.sources.wkd is off"));
      } else {
        source_report r = report_for(key_source::wkd);
        r.enabled = true;
        auto parsed = parse_address(address);
        if (!parsed) {
          r.detail = "not an address";
        } else {
          wkd_fetch_options fetch{st->options.wkd_port, st->options.wkd_timeout, st->wkd_context};
          wkd_result w = co_await wkd_fetch(*st->resolver, fetch, parsed->local, parsed->domain);
          if (w.asked) r.wkd_method = std::string(to_string(w.method));
          r.wkd_host = w.host;
          r.outcome = w.outcome;
          r.detail = w.detail;
          if (w.outcome == fact::found) {
            // The same home and the same rules as a key from DNS: a user ID
            // matching the address, encryption-capable, not expired or revoked.
            const pgp_engine* engine = st->pgp;
            std::span<const uint8_t> data(reinterpret_cast<const uint8_t*>(w.body.data()), w.body.size());
            std::function<pgp_key_list()> work = [engine, data, &address] { return engine->import_discovered(data, address); };
            pgp_key_list list = co_await on_pool<pgp_key_list>(st->pool, work);
            if (add_imported(r, list, "WKD answer", "the answer holds no importable OpenPGP key")) {
              std::stable_partition(r.candidates.begin(), r.candidates.end(), [](auto& c) { return c.usable; });
              r.outcome = !r.candidates.empty() && r.candidates.front().usable ? fact::found : fact::absent;
              if (r.outcome == fact::absent) r.detail = "no usable key in the WKD answer";
              else if (!out.key) out.key = pgp_recipient{r.candidates.front().id, true};
            }
          }
        }
        out.sources.push_back(std::move(r));
      }
    }
  }
  out.outcome = combine(out.sources);
  st->put(st->pgp_cache, key, out, ttl);
  co_return out;
}

boost::asio::awaitable<smime_lookup> key_finder::find_smime(std::string address, bool every_source) {
  auto st = state_;
  std::string key = st->cache_key(address) + (every_source ? "\n*" : "");
  if (auto hit = st->get(st->smime_cache, key)) co_return *hit;
  smime_lookup out;
  std::chrono::seconds ttl = st->options.cache_ttl;

  if (!st->options.sources.smime_directory || st->options.smime_certificates.empty()) {
    out.sources.push_back(disabled(key_source::smime_directory, st->options.smime_certificates.empty()
                                                                    ? "crypto.smime_certificates is not set"
                                                                    : "crypto.sources.smime_directory is off"));
  } else {
    key_finder::state* raw = st.get();
    std::function<directory_result()> work = [raw, address] { return directory_source(raw, address); };
    directory_result d = co_await on_pool<directory_result>(st->pool, work);
    out.sources.push_back(std::move(d.report));
    out.cert = std::move(d.cert);
  }
  bool stop = !every_source && out.cert;
  if (!stop) {
    if (!st->options.sources.dns_smimea || !st->resolver) {
      out.sources.push_back(disabled(key_source::dns_smimea, "crypto.sources.dns_smimea is off"));
    } else {
      source_report r = report_for(key_source::dns_smimea);
      r.enabled = true;
      std::string name = smimea_name(address);
      dns::smimea_result answer;
      if (!name.empty()) answer = co_await st->resolver->resolve_smimea(name);
      if (!name.empty() &&
          dns_gate(r, answer.status, answer.secure, answer.error, answer.why_absent, "SMIMEA")) {
        ttl = std::min(ttl, std::chrono::seconds(answer.ttl));
        certificate chosen;
        for (auto& rec : answer.records) {
          std::string label = "SMIMEA " + std::to_string(rec.usage) + " " + std::to_string(rec.selector) + " " +
                              std::to_string(rec.matching_type);
          // RFC 8162 2 / RFC 6698 2.1: only selector 0 with matching type 0
          // carries a whole certificate; usages 0 and 2 name a trust anchor,
          // not the recipient.
          if (rec.selector != 0 || rec.matching_type != 0) {
            r.candidates.push_back({"", label, {}, false, "a digest or public key only: no certificate to encrypt to"});
            continue;
          }
          if (rec.usage != 1 && rec.usage != 3) {
            r.candidates.push_back({"", label, {}, false, "usage " + std::to_string(rec.usage) + " names a trust anchor, not the recipient's certificate"});
            continue;
          }
          auto cert = certificate_from_der(rec.data);
          if (!cert) {
            r.candidates.push_back({"", label, {}, false, "the record data is not a DER certificate"});
            continue;
          }
          auto info = st->smime.evaluate(cert, {}, address, rec.usage == 3 ? cert_trust::dane_ee : cert_trust::pkix);
          auto c = candidate_of(info, label + " ");
          if (c.usable && !answer.secure && st->options.dns_require_secure) {
            c.usable = false;
            c.why = "answer not DNSSEC-secure (crypto.dns_require_secure)";
          }
          if (c.usable && !chosen) chosen = cert;
          r.candidates.push_back(std::move(c));
        }
        std::stable_partition(r.candidates.begin(), r.candidates.end(), [](auto& c) { return c.usable; });
        r.outcome = chosen ? fact::found : fact::absent;
        if (!chosen) r.detail = "no usable certificate in the SMIMEA answer";
        if (!out.cert) out.cert = chosen;
      } else if (name.empty()) {
        r.detail = "not an address";
      }
      out.sources.push_back(std::move(r));
    }
  }
  out.outcome = combine(out.sources);
  st->put(st->smime_cache, key, out, ttl);
  co_return out;
}

}  // namespace sealgate::crypto
