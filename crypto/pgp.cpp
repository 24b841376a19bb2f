// PGP/MIME through GPGME; see pgp.hpp. Each call makes its own GPGME context
// (contexts are not thread-safe, the library is). Never logs or returns
// message content; never lets gpg fetch keys from the network on its own.
#include "crypto/pgp.hpp"

#include <gpgme.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <csignal>
#include <mutex>
#include <set>
#include <stdexcept>

#include "crypto/address.hpp"
#include "common/worker.hpp"

namespace sealgate::crypto {
namespace {

struct context_release {
  void operator()(gpgme_ctx_t c) const { gpgme_release(c); }
};
using context = std::unique_ptr<gpgme_context, context_release>;
struct data_release {
  void operator()(gpgme_data_t d) const { gpgme_data_release(d); }
};
using data = std::unique_ptr<gpgme_data, data_release>;
struct key_release {
  void operator()(gpgme_key_t k) const { gpgme_key_unref(k); }
};
using key_ptr = std::unique_ptr<_gpgme_key, key_release>;

std::string error_text(gpgme_error_t e) { return std::string(gpgme_strsource(e)) + ": " + gpgme_strerror(e); }

void initialize() {
  static std::once_flag once;
  std::call_once(once, [] {
    // Required before any other GPGME call; it also sets up GPGME's locking.
    gpgme_check_version(nullptr);
    // GPGME talks to gpg over pipes: a gpg that dies mid-write must give an
    // error, not a SIGPIPE that ends the gateway (GPGME manual, "Signal Handling").
    std::signal(SIGPIPE, SIG_IGN);
  });
}

context make_context(const std::filesystem::path& home) {
  gpgme_ctx_t c = nullptr;
  if (auto e = gpgme_new(&c)) throw std::runtime_error("gpgme_new: " + error_text(e));
  context ctx(c);
  gpgme_set_protocol(c, GPGME_PROTOCOL_OpenPGP);
  if (auto e = gpgme_ctx_set_engine_info(c, GPGME_PROTOCOL_OpenPGP, nullptr, home.c_str()))
    throw std::runtime_error("gpgme engine for " + home.string() + ": " + error_text(e));
  // Unattended: a protected key fails at once instead of waiting for a pinentry.
  gpgme_set_pinentry_mode(c, GPGME_PINENTRY_MODE_LOOPBACK);
  // Keys come only from the sources the operator allowed, never from a
  // keyserver that gpg.conf's auto-key-retrieve might name.
  gpgme_set_offline(c, 1);
  return ctx;
}

// GPGME contexts for one home, reused: setting a context's home directory
// makes GPGME run `gpg --version` (gpgme_ctx_set_engine_info), which would
// double the processes per message. A context serves one thread at a time.
class context_pool {
 public:
  explicit context_pool(std::filesystem::path home) : home_(std::move(home)) {}

  class lease {
   public:
    lease(context_pool* pool, context ctx) : pool_(pool), ctx_(std::move(ctx)) {}
    lease(lease&&) = default;
    ~lease() {
      if (ctx_) pool_->give_back(std::move(ctx_));
    }
    gpgme_ctx_t get() const { return ctx_.get(); }

   private:
    context_pool* pool_;
    context ctx_;
  };

  lease take() {
    {
      std::lock_guard lock(mutex_);
      if (!free_.empty()) {
        context c = std::move(free_.back());
        free_.pop_back();
        return lease(this, std::move(c));
      }
    }
    return lease(this, make_context(home_));
  }

 private:
  void give_back(context c) {
    // What one operation set must not leak into the next.
    gpgme_signers_clear(c.get());
    gpgme_set_armor(c.get(), 0);
    std::lock_guard lock(mutex_);
    if (free_.size() < 16) free_.push_back(std::move(c));
  }

  std::filesystem::path home_;
  std::mutex mutex_;
  std::vector<context> free_;
};

data memory_data(std::string_view bytes) {
  gpgme_data_t d = nullptr;
  if (auto e = gpgme_data_new_from_mem(&d, bytes.data(), bytes.size(), 0))
    throw std::runtime_error("gpgme_data_new_from_mem: " + error_text(e));
  return data(d);
}

data empty_data() {
  gpgme_data_t d = nullptr;
  if (auto e = gpgme_data_new(&d)) throw std::runtime_error("gpgme_data_new: " + error_text(e));
  return data(d);
}

std::string take(data d) {
  size_t len = 0;
  char* buf = gpgme_data_release_and_get_mem(d.release(), &len);
  std::string out(buf ? buf : "", buf ? len : 0);
  gpgme_free(buf);
  return out;
}

bool hex_fingerprint(std::string_view f) {
  return f.size() >= 16 && f.size() <= 64 &&
         std::all_of(f.begin(), f.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); });
}

// The key rules of issue 6, in the order an operator would fix them.
pgp_key_info evaluate(gpgme_key_t k, std::string_view address, bool fold) {
  pgp_key_info info;
  info.fingerprint = k->fpr ? k->fpr : (k->subkeys && k->subkeys->fpr ? k->subkeys->fpr : "");
  info.created = k->subkeys ? k->subkeys->timestamp : 0;
  bool uid_match = false;
  for (gpgme_user_id_t u = k->uids; u; u = u->next) {
    const char* a = u->address ? u->address : u->email;
    if (!a || !*a || u->revoked || u->invalid) continue;
    info.addresses.push_back(a);
    uid_match |= address_matches(a, address, fold);
  }
  gpgme_subkey_t enc = nullptr, any_enc = nullptr;
  for (gpgme_subkey_t s = k->subkeys; s; s = s->next) {
    if (!s->can_encrypt) continue;
    any_enc = s;
    if (!s->revoked && !s->expired && !s->disabled && !s->invalid && (!enc || s->timestamp > enc->timestamp)) enc = s;
  }
  // Shown to the operator: the subkey that would encrypt, else the one that
  // could have, else the primary key (a sign-only key).
  if (gpgme_subkey_t shown = enc ? enc : any_enc ? any_enc : k->subkeys) {
    if (char* a = gpgme_pubkey_algo_string(shown)) {
      info.algorithm = a;
      gpgme_free(a);
    }
  }
  if (k->revoked) info.why = "revoked";
  else if (k->expired) info.why = "expired";
  else if (k->disabled) info.why = "disabled";
  else if (k->invalid) info.why = "invalid";
  else if (!any_enc) info.why = "cannot encrypt (sign-only key)";
  else if (!enc) info.why = "no valid encryption subkey (expired or revoked)";
  else if (!uid_match) info.why = "no valid user ID for " + std::string(address);
  else info.usable = true;
  return info;
}

void best_first(std::vector<pgp_key_info>& keys) {
  std::stable_sort(keys.begin(), keys.end(), [](const pgp_key_info& a, const pgp_key_info& b) {
    if (a.usable != b.usable) return a.usable;
    return a.created > b.created;  // the newest usable key: the one its owner made last
  });
}

}  // namespace

struct pgp_engine::impl {
  impl(const crypto_options& o)
      : options(o), home(o.gnupg_home), discovered_home(o.gnupg_home / "discovered"), contexts(home),
        discovered_contexts(discovered_home) {}
  crypto_options options;
  std::filesystem::path home, discovered_home;
  mutable context_pool contexts, discovered_contexts;
  key_ptr signing_key;
  std::mutex discovered_mutex;
  bool discovered_ready = false;

  // The discovered-keys home needs the gateway's public key and (through a
  // link) its secret key store, so that it can sign and encrypt in one pass.
  void prepare_discovered() {
    std::lock_guard lock(discovered_mutex);
    if (discovered_ready) return;
    std::error_code ec;
    std::filesystem::create_directory(discovered_home, ec);
    if (ec && !std::filesystem::is_directory(discovered_home))
      throw std::runtime_error("cannot create " + discovered_home.string() + ": " + ec.message());
    ::chmod(discovered_home.c_str(), 0700);  // gpg refuses homes others can read
    // Always linked, signing key or not: gpg-agent makes an empty
    // private-keys-v1.d when it starts, and a real directory there would hide
    // the gateway's key from a later configuration that signs.
    auto link = discovered_home / "private-keys-v1.d";
    if (std::filesystem::is_directory(std::filesystem::symlink_status(link)))
      std::filesystem::remove(link, ec);  // only when empty: never deletes a key
    if (!std::filesystem::exists(std::filesystem::symlink_status(link)))
      std::filesystem::create_directory_symlink("../private-keys-v1.d", link);
    if (signing_key) {
      auto from = make_context(home), to = make_context(discovered_home);
      auto exported = empty_data();
      if (auto e = gpgme_op_export(from.get(), signing_key->fpr, 0, exported.get()))
        throw std::runtime_error("exporting the signing key: " + error_text(e));
      std::string bytes = take(std::move(exported));
      auto in = memory_data(bytes);
      if (auto e = gpgme_op_import(to.get(), in.get()))
        throw std::runtime_error("importing the signing key into " + discovered_home.string() + ": " + error_text(e));
    }
    discovered_ready = true;
  }

  pgp_key_list list(const std::filesystem::path& at, const std::vector<std::string>& patterns,
                    std::string_view address) const {
    pgp_key_list out;
    try {
      auto ctx = (at == home ? contexts : discovered_contexts).take();
      std::vector<const char*> p;
      for (auto& s : patterns) p.push_back(s.c_str());
      p.push_back(nullptr);
      if (auto e = gpgme_op_keylist_ext_start(ctx.get(), p.data(), 0, 0)) {
        out.error = error_text(e);
        return out;
      }
      for (;;) {
        gpgme_key_t k = nullptr;
        auto e = gpgme_op_keylist_next(ctx.get(), &k);
        if (gpgme_err_code(e) == GPG_ERR_EOF) break;
        if (e) {
          out.error = error_text(e);
          gpgme_op_keylist_end(ctx.get());
          return out;
        }
        key_ptr key(k);
        out.keys.push_back(evaluate(k, address, options.fold_plus_tag));
      }
      gpgme_op_keylist_end(ctx.get());
      best_first(out.keys);
      out.ok = true;
    } catch (const std::exception& e) {
      out.error = e.what();
    }
    return out;
  }
};

pgp_engine::pgp_engine(const crypto_options& options) : impl_(std::make_unique<impl>(options)) {
  initialize();  // before any context exists (the pools make them on first use)
  if (!std::filesystem::is_directory(impl_->home))
    throw std::runtime_error("crypto.gnupg_home " + impl_->home.string() + ": not a directory");
  if (auto e = gpgme_engine_check_version(GPGME_PROTOCOL_OpenPGP))
    throw std::runtime_error("gpg is not usable: " + error_text(e));
  if (!options.pgp_signing_key.empty()) {
    auto ctx = make_context(impl_->home);
    gpgme_key_t k = nullptr;
    if (auto e = gpgme_get_key(ctx.get(), options.pgp_signing_key.c_str(), &k, 1))
      throw std::runtime_error("crypto.pgp_signing_key " + options.pgp_signing_key + ": no secret key in " +
                               impl_->home.string() + " (" + error_text(e) + ")");
    key_ptr key(k);
    if (!k->can_sign || k->revoked || k->expired || k->disabled || k->invalid)
      throw std::runtime_error("crypto.pgp_signing_key " + options.pgp_signing_key +
                               ": cannot sign (revoked, expired, disabled or no signing capability)");
    impl_->signing_key = std::move(key);
  }
}

pgp_engine::~pgp_engine() = default;

bool pgp_engine::can_sign() const { return impl_->signing_key != nullptr; }

pgp_key_list pgp_engine::keyring_keys(std::string_view address) const {
  // "*" asks gpg for a case-insensitive substring match of the user ID, and
  // keeps a local part that starts with "=", "<", "@", "#", "&" or "0x" from
  // being read as another kind of key specification; evaluate() then applies
  // the exact rule.
  std::vector<std::string> patterns{"*" + std::string(address)};
  if (impl_->options.fold_plus_tag) {
    if (auto a = parse_address(address); a && a->local.find('+') != std::string::npos)
      patterns.push_back("*" + a->local.substr(0, a->local.find('+')) + "@" + a->domain);
  }
  return impl_->list(impl_->home, patterns, address);
}

pgp_key_list pgp_engine::import_discovered(std::span<const uint8_t> key_data, std::string_view address) const {
  pgp_key_list out;
  try {
    impl_->prepare_discovered();
    auto ctx = impl_->discovered_contexts.take();
    auto in = memory_data(std::string_view(reinterpret_cast<const char*>(key_data.data()), key_data.size()));
    if (auto e = gpgme_op_import(ctx.get(), in.get())) {
      out.error = "import: " + error_text(e);
      return out;
    }
    // Only the keys this record held: the home also holds other addresses' keys.
    std::set<std::string> fingerprints;
    if (auto r = gpgme_op_import_result(ctx.get()))
      for (gpgme_import_status_t i = r->imports; i; i = i->next)
        if (i->result == 0 && i->fpr) fingerprints.insert(i->fpr);
    for (const auto& f : fingerprints) {
      gpgme_key_t k = nullptr;
      if (gpgme_get_key(ctx.get(), f.c_str(), &k, 0) != 0) continue;
      key_ptr key(k);
      out.keys.push_back(evaluate(k, address, impl_->options.fold_plus_tag));
    }
    best_first(out.keys);
    out.ok = true;
  } catch (const std::exception& e) {
    out.error = e.what();
  }
  return out;
}

encrypt_result pgp_engine::encrypt(std::string_view message, const std::vector<pgp_recipient>& to, bool sign) const {
  auto prepared = prepare(message, to.size());
  if (auto* done = std::get_if<encrypt_result>(&prepared)) return std::move(*done);
  const split_message* m = &std::get<split_message>(prepared);
  encrypt_result r;
  std::string recipients;
  for (const auto& t : to) {
    if (t.discovered != to.front().discovered) {
      r.error = "recipients from the keyring and from discovery cannot share one encryption";
      return r;
    }
    if (!hex_fingerprint(t.fingerprint)) {
      r.error = "not a fingerprint: " + t.fingerprint;
      return r;
    }
    recipients += t.fingerprint + "\n";
  }
  if (sign && !impl_->signing_key) {
    r.error = "signing asked for, but crypto.pgp_signing_key is not set";
    return r;
  }
  try {
    if (to.front().discovered) impl_->prepare_discovered();
    auto w = wrap(*m, {impl_->options.subject, impl_->options.protected_headers});
    auto ctx = (to.front().discovered ? impl_->discovered_contexts : impl_->contexts).take();
    gpgme_set_armor(ctx.get(), 1);
    auto plain = memory_data(w.inner);  // binary mode: the CRLFs are encrypted as they are
    auto cipher = empty_data();
    // Operator-imported and allowed discovered keys are trusted by rule, not by gpg's web of trust.
    auto flags = static_cast<gpgme_encrypt_flags_t>(GPGME_ENCRYPT_ALWAYS_TRUST);
    gpgme_error_t e;
    if (sign) {
      gpgme_signers_add(ctx.get(), impl_->signing_key.get());
      e = gpgme_op_encrypt_sign_ext(ctx.get(), nullptr, recipients.c_str(), flags, plain.get(), cipher.get());
    } else {
      e = gpgme_op_encrypt_ext(ctx.get(), nullptr, recipients.c_str(), flags, plain.get(), cipher.get());
    }
    if (e) {
      r.error = "gpg: " + error_text(e);
      if (auto er = gpgme_op_encrypt_result(ctx.get()))
        for (auto i = er->invalid_recipients; i; i = i->next)
          r.error += std::string("; recipient ") + (i->fpr ? i->fpr : "?") + ": " + gpgme_strerror(i->reason);
      if (sign)
        if (auto sr = gpgme_op_sign_result(ctx.get()))
          for (auto i = sr->invalid_signers; i; i = i->next)
            r.error += std::string("; signer ") + (i->fpr ? i->fpr : "?") + ": " + gpgme_strerror(i->reason);
      return r;
    }
    std::string armor = to_crlf(take(std::move(cipher)));
    if (armor.size() < 2 || armor.substr(armor.size() - 2) != "\r\n") armor += "\r\n";
    std::string b = make_boundary();
    // RFC 3156 4: the version part, then the ciphertext; the preamble is for
    // readers without PGP/MIME.
    std::string out = std::move(w.outer_headers);
    out.reserve(out.size() + armor.size() + 600);
    out += "MIME-Version: 1.0\r\n"
           "Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\";\r\n"
           " boundary=\"" + b + "\"\r\n"
           "\r\n"
           "This is an OpenPGP/MIME encrypted message (RFC 4880 and 3156)\r\n"
           "--" + b + "\r\n"
           "Content-Type: application/pgp-encrypted\r\n"
           "Content-Description: PGP/MIME version identification\r\n"
           "\r\n"
           "Version: 1\r\n"
           "\r\n"
           "--" + b + "\r\n"
           "Content-Type: application/octet-stream; name=\"encrypted.asc\"\r\n"
           "Content-Description: OpenPGP encrypted message\r\n"
           "Content-Disposition: inline; filename=\"encrypted.asc\"\r\n"
           "\r\n";
    out += armor;
    out += "\r\n--" + b + "--\r\n";
    r.state = encrypt_result::status::encrypted;
    r.message = std::move(out);
  } catch (const std::exception& ex) {
    r.error = ex.what();
  }
  return r;
}

boost::asio::awaitable<encrypt_result> encrypt_async(boost::asio::thread_pool& pool, const pgp_engine& engine,
                                                     std::string message, std::vector<pgp_recipient> to, bool sign) {
  const pgp_engine* e = &engine;
  std::function<encrypt_result()> work = [e, &message, &to, sign] { return e->encrypt(message, to, sign); };
  encrypt_result r = co_await on_pool<encrypt_result>(pool, work);
  co_return r;
}

}  // namespace sealgate::crypto
