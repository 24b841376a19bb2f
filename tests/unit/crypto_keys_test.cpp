// Key discovery's bookkeeping: outcomes per source, the TTL cache (with an
// injected clock), and that a failed lookup is never cached or called "no key".
// The sources themselves are proven against gpg and DNS in crypto_test.py.
#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/thread_pool.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "crypto/keys.hpp"
#include "common/worker.hpp"
#include "dns/resolver.hpp"
#include "crypto_test_util.hpp"

using namespace sealgate::crypto;
using sealgate::policy::fact;
namespace asio = boost::asio;

namespace {

class KeyFinderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sealgate-keys-XXXXXX";
    dir_ = mkdtemp(tmpl);
    options_.smime_certificates = dir_ / "certs";
    std::filesystem::create_directory(options_.smime_certificates);
    options_.sources.dns_openpgpkey = options_.sources.dns_smimea = false;
    options_.cache_ttl = std::chrono::seconds(60);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  template <typename T>
  T run(asio::awaitable<T> a) {
    return test_util::run_to_end(io_, std::move(a));
  }

  std::filesystem::path dir_;
  crypto_options options_;
  asio::io_context io_;
  asio::thread_pool pool_{1};
  std::chrono::steady_clock::time_point now_{};
};

}  // namespace

TEST_F(KeyFinderTest, AbsentIsCachedForTheTtl) {
  smime_engine smime(options_);
  key_finder finder(options_, nullptr, smime, nullptr, pool_, [this] { return now_; });
  auto first = run(finder.find_smime("alice@example.org"));
  EXPECT_EQ(first.outcome, fact::absent);
  EXPECT_FALSE(first.from_cache);
  ASSERT_EQ(first.sources.size(), 2u);
  EXPECT_EQ(first.sources[0].detail, "no certificate for alice@example.org among 0 in " + options_.smime_certificates.string());
  EXPECT_EQ(first.sources[1].detail, "crypto.sources.dns_smimea is off");
  now_ += std::chrono::seconds(59);
  auto second = run(finder.find_smime("alice@EXAMPLE.org"));  // the domain folds into the same entry
  EXPECT_TRUE(second.from_cache);
  EXPECT_EQ(second.outcome, fact::absent);
  now_ += std::chrono::seconds(1);
  EXPECT_FALSE(run(finder.find_smime("alice@example.org")).from_cache);
  EXPECT_FALSE(run(finder.find_smime("Alice@example.org")).from_cache);  // the local part does not fold
}

TEST_F(KeyFinderTest, AFailedSourceIsTempfailAndNeverCached) {
  options_.smime_certificates = dir_ / "missing";
  smime_engine smime(options_);
  key_finder finder(options_, nullptr, smime, nullptr, pool_, [this] { return now_; });
  auto first = run(finder.find_smime("alice@example.org"));
  EXPECT_EQ(first.outcome, fact::tempfail);
  EXPECT_NE(first.sources[0].detail.find("cannot read " + options_.smime_certificates.string()), std::string::npos);
  auto second = run(finder.find_smime("alice@example.org"));
  EXPECT_FALSE(second.from_cache);
  EXPECT_EQ(second.outcome, fact::tempfail);
}

TEST_F(KeyFinderTest, NoGnupgHomeMeansPgpProvenUnavailable) {
  smime_engine smime(options_);
  key_finder finder(options_, nullptr, smime, nullptr, pool_, [this] { return now_; });
  auto pgp = run(finder.find_pgp("alice@example.org"));
  EXPECT_EQ(pgp.outcome, fact::absent);
  ASSERT_EQ(pgp.sources.size(), 3u);
  EXPECT_FALSE(pgp.sources[0].enabled);
  EXPECT_EQ(pgp.sources[0].detail, "crypto.gnupg_home is not set");
  EXPECT_EQ(pgp.sources[2].source, key_source::wkd);
  EXPECT_FALSE(pgp.sources[2].enabled);
  EXPECT_EQ(pgp.sources[2].detail, "crypto.gnupg_home is not set");
  EXPECT_FALSE(pgp.key);
}

TEST_F(KeyFinderTest, SwitchedOffSourcesAreSaidSo) {
  options_.sources.smime_directory = false;
  smime_engine smime(options_);
  key_finder finder(options_, nullptr, smime, nullptr, pool_, [this] { return now_; });
  auto r = run(finder.find_smime("alice@example.org"));
  EXPECT_EQ(r.outcome, fact::absent);
  EXPECT_EQ(r.sources[0].detail, "crypto.sources.smime_directory is off");
}

TEST_F(KeyFinderTest, AFileWithoutCertificatesIsSkipped) {
  std::ofstream(options_.smime_certificates / "readme.txt") << "not a certificate\n";
  smime_engine smime(options_);
  key_finder finder(options_, nullptr, smime, nullptr, pool_, [this] { return now_; });
  EXPECT_EQ(run(finder.find_smime("alice@example.org")).outcome, fact::absent);
}

TEST(KeyFacts, OneConversion) {
  pgp_lookup p;
  smime_lookup s;
  p.outcome = fact::found;
  s.outcome = fact::tempfail;
  auto k = to_key_facts(p, s);
  EXPECT_EQ(k.pgp, fact::found);
  EXPECT_EQ(k.smime, fact::tempfail);
}

namespace {
struct threads_seen {
  std::thread::id worker, after;
};
[[gnu::noinline]] asio::awaitable<void> hop(asio::thread_pool& pool, threads_seen* seen) {
  std::function<std::thread::id()> work = [] { return std::this_thread::get_id(); };
  seen->worker = co_await sealgate::on_pool<std::thread::id>(pool, work);
  seen->after = std::this_thread::get_id();
}
}  // namespace

// The guarantee delivery relies on: blocking work runs on the pool, and the
// caller resumes on its own (io) thread.
TEST(Worker, BlockingWorkRunsOnThePoolAndResumesOnTheCaller) {
  asio::io_context io;
  asio::thread_pool pool(1);
  threads_seen seen;
  asio::co_spawn(io, hop(pool, &seen), [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  });
  io.run();
  EXPECT_NE(seen.worker, std::this_thread::get_id());
  EXPECT_NE(seen.worker, std::thread::id());
  EXPECT_EQ(seen.after, std::this_thread::get_id());
}

namespace {
// A gnupg_home of its own (short: gpg-agent's socket must fit in sun_path);
// the agents gpg may have started are killed when the test ends.
class WkdFinderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sgk-XXXXXX";
    dir_ = mkdtemp(tmpl);
    std::filesystem::permissions(dir_, std::filesystem::perms::owner_all, std::filesystem::perm_options::replace);
    options_.gnupg_home = dir_;
    options_.sources = {false, false, false, false, true};  // WKD alone
    options_.cache_ttl = std::chrono::seconds(60);
  }
  void TearDown() override {
    for (auto home : {dir_, dir_ / "discovered"})
      if (std::filesystem::is_directory(home))
        (void)std::system(("GNUPGHOME='" + home.string() + "' gpgconf --kill all >/dev/null 2>&1").c_str());
    std::filesystem::remove_all(dir_);
  }
  std::filesystem::path dir_;
  crypto_options options_;
  asio::io_context io_;
  asio::thread_pool pool_{1};
};
}  // namespace

// A resolver that never answers (a UDP socket on loopback that nobody reads):
// WKD cannot find its server, which is a temporary failure, asked again next time.
TEST_F(WkdFinderTest, AFailedWkdLookupIsTempfailAndNeverCached) {
  asio::ip::udp::socket silent(io_, asio::ip::udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  sealgate::dns::resolver_options dns;
  dns.servers.push_back(*sealgate::dns::parse_server_address("127.0.0.1:" + std::to_string(silent.local_endpoint().port())));
  dns.timeout = std::chrono::milliseconds(300);
  pgp_engine pgp(options_);
  smime_engine smime(options_);
  {
    sealgate::dns::resolver resolver(io_.get_executor(), dns);
    key_finder finder(options_, &pgp, smime, &resolver, pool_);
    for (int i = 0; i < 2; ++i) {
      auto r = test_util::run_to_end(io_, finder.find_pgp("joe@example.org"));
      EXPECT_FALSE(r.from_cache);
      EXPECT_EQ(r.outcome, fact::tempfail);
      ASSERT_EQ(r.sources.size(), 3u);
      EXPECT_EQ(r.sources[2].source, key_source::wkd);
      EXPECT_EQ(r.sources[2].outcome, fact::tempfail);
      EXPECT_EQ(r.sources[2].wkd_host, "openpgpkey.example.org");
      EXPECT_EQ(r.sources[2].wkd_method, "");  // no URL was fetched
      EXPECT_EQ(r.sources[2].detail.rfind("openpgpkey.example.org: address lookup failed: ", 0), 0u) << r.sources[2].detail;
    }
  }
  io_.restart();
  io_.run();  // what the resolver left to finish
}
