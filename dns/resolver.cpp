// c-ares on Asio; see resolver.hpp. c-ares is not thread-safe per channel, so
// the channel, its socket watchers, its timer and the cache live on one strand,
// and every c-ares call is made from a handler running on that strand.
#include "dns/resolver.hpp"

#include <arpa/inet.h>
#include <ares.h>

#include <boost/asio/async_result.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <map>
#include <mutex>
#include <stdexcept>

#include "dns/cache.hpp"

namespace sealgate::dns {
namespace asio = boost::asio;

namespace {

std::string describe(int status) {
  switch (status) {
    case ARES_ETIMEOUT: return "timeout";
    // c-ares 1.18 retries SERVFAIL, NOTIMP and REFUSED answers on the next
    // server (which we want) but then reports its initial status instead of
    // the rcode, so this one status covers all of them.
    case ARES_ECONNREFUSED: return "no server answered (SERVFAIL, REFUSED or connection refused)";
    case ARES_ESERVFAIL: return "SERVFAIL";
    case ARES_EREFUSED: return "REFUSED";
    case ARES_ENOTIMP: return "NOTIMP";
    case ARES_EFORMERR: return "FORMERR";
    case ARES_EDESTRUCTION: return "resolver shut down";
    default: return ares_strerror(status);
  }
}

// A query's completion, type-erased so that c-ares's C callback can reach it.
struct completion {
  virtual ~completion() = default;
  virtual void complete(resolver::raw_answer answer) = 0;
};

template <typename Handler>
struct completion_for final : completion {
  explicit completion_for(Handler h) : handler(std::move(h)) {}
  // Posted, never called inline: c-ares calls us from inside ares_process_fd,
  // and the awaiting coroutine must not run (and maybe send) in there.
  void complete(resolver::raw_answer answer) override {
    auto ex = asio::get_associated_executor(handler);
    asio::post(ex, [h = std::move(handler), a = std::move(answer)]() mutable { std::move(h)(std::move(a)); });
  }
  Handler handler;
};

struct query_state {
  explicit query_state(const asio::any_io_executor& ex) : deadline(ex) {}
  std::unique_ptr<completion> done;  // null once completed: the answer and the deadline race
  asio::steady_timer deadline;
  void finish(resolver::raw_answer a) {
    if (!done) return;
    auto d = std::move(done);
    d->complete(std::move(a));
  }
};

std::once_flag library_once;

resolver::raw_answer failed(std::string why) {
  resolver::raw_answer a;
  a.error = std::move(why);
  return a;
}

}  // namespace

struct resolver::impl : std::enable_shared_from_this<resolver::impl> {
  struct watcher {
    watcher(const asio::any_io_executor& ex, ares_socket_t s) : fd(s), descriptor(ex, s) {}
    ares_socket_t fd;
    asio::posix::stream_descriptor descriptor;  // watches c-ares's socket; released, never closed, by us
    bool want_read = false, want_write = false, reading = false, writing = false, closed = false;
  };

  impl(asio::any_io_executor ex, resolver_options opts)
      : strand(asio::make_strand(ex)), options(std::move(opts)), timer(strand), cache(options.cache_entries) {
    std::call_once(library_once, [] { ares_library_init(ARES_LIB_INIT_ALL); });
    // c-ares's timeout is per try and doubles each round over all servers
    // (t, then 2t): 3 * servers * t spans the configured timeout for a whole
    // lookup with two tries. The server count is known only after a first init.
    init(1000);
    size_t n = std::max<size_t>(1, server_list.size());
    int per_try = static_cast<int>(std::max<long long>(50, options.timeout.count() / static_cast<long long>(3 * n)));
    ares_destroy(channel);
    channel = nullptr;
    init(per_try);
  }

  ~impl() {
    if (channel) ares_destroy(channel);  // calls back pending queries with ARES_EDESTRUCTION
    for (auto& [fd, w] : watchers) {
      w->closed = true;
      w->descriptor.release();
    }
  }

  void init(int per_try_ms) {
    ares_options o{};
    o.flags = ARES_FLAG_EDNS;  // on FORMERR/NOTIMP from a server without EDNS, c-ares retries without our OPT
    o.timeout = per_try_ms;
    o.tries = 2;
    o.ednspsz = 1232;  // the DNS flag day 2020 size: no IP fragmentation
    o.sock_state_cb = &impl::on_sock_state;
    o.sock_state_cb_data = this;
    int mask = ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_EDNSPSZ | ARES_OPT_SOCK_STATE_CB;
    if (int rc = ares_init_options(&channel, &o, mask); rc != ARES_SUCCESS)
      throw std::runtime_error(std::string("dns: cannot initialise c-ares: ") + ares_strerror(rc));
    if (!options.servers.empty()) {
      std::string csv;
      for (auto& s : options.servers) csv += (csv.empty() ? "" : ",") + s.to_string();
      if (int rc = ares_set_servers_ports_csv(channel, csv.c_str()); rc != ARES_SUCCESS) {
        ares_destroy(channel);  // ~impl will not run: the constructor is throwing
        channel = nullptr;
        throw std::runtime_error("dns: servers " + csv + ": " + ares_strerror(rc));
      }
    }
    read_servers();
  }

  // What c-ares will really use (resolv.conf or ours), and whether all of it is loopback.
  void read_servers() {
    server_list.clear();
    ares_addr_port_node* nodes = nullptr;
    if (ares_get_servers_ports(channel, &nodes) != ARES_SUCCESS) {
      trust_ad = false;
      return;
    }
    bool all_loopback = nodes != nullptr;
    for (auto* n = nodes; n; n = n->next) {
      char text[INET6_ADDRSTRLEN] = {};
      bool loop = false;
      if (n->family == AF_INET) {
        ::inet_ntop(AF_INET, &n->addr.addr4, text, sizeof text);
        loop = (ntohl(n->addr.addr4.s_addr) >> 24) == 127;
      } else {
        ::inet_ntop(AF_INET6, &n->addr.addr6, text, sizeof text);
        static const unsigned char one[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
        loop = std::equal(one, one + 16, reinterpret_cast<const unsigned char*>(&n->addr.addr6));
      }
      int port = n->udp_port ? n->udp_port : 53;
      server_list.push_back((n->family == AF_INET6 ? "[" + std::string(text) + "]" : std::string(text)) + ":" +
                            std::to_string(port));
      all_loopback = all_loopback && loop;
    }
    ares_free_data(nodes);
    trust_ad = all_loopback;
  }

  static void on_sock_state(void* data, ares_socket_t fd, int readable, int writable) {
    static_cast<impl*>(data)->sock_state(fd, readable != 0, writable != 0);
  }

  void sock_state(ares_socket_t fd, bool readable, bool writable) {
    auto it = watchers.find(fd);
    if (!readable && !writable) {
      // c-ares is about to close fd: let go of it first so that epoll forgets
      // it before the number can be reused.
      if (it != watchers.end()) {
        it->second->closed = true;
        it->second->descriptor.release();
        watchers.erase(it);
      }
      return;
    }
    if (it == watchers.end()) it = watchers.emplace(fd, std::make_shared<watcher>(strand, fd)).first;
    it->second->want_read = readable;
    it->second->want_write = writable;
    watch(it->second);
  }

  void watch(const std::shared_ptr<watcher>& w) {
    if (w->want_read && !w->reading) {
      w->reading = true;
      w->descriptor.async_wait(asio::posix::descriptor_base::wait_read,
                               [weak = weak_from_this(), w](const boost::system::error_code& ec) {
                                 w->reading = false;
                                 auto self = weak.lock();
                                 if (ec || w->closed || !self) return;
                                 ares_process_fd(self->channel, w->fd, ARES_SOCKET_BAD);
                                 if (!w->closed) self->watch(w);
                                 self->arm_timer();
                               });
    }
    if (w->want_write && !w->writing) {
      w->writing = true;
      w->descriptor.async_wait(asio::posix::descriptor_base::wait_write,
                               [weak = weak_from_this(), w](const boost::system::error_code& ec) {
                                 w->writing = false;
                                 auto self = weak.lock();
                                 if (ec || w->closed || !self) return;
                                 ares_process_fd(self->channel, ARES_SOCKET_BAD, w->fd);
                                 if (!w->closed) self->watch(w);
                                 self->arm_timer();
                               });
    }
  }

  // c-ares's retries and per-try timeouts run off one timer, set to whatever
  // ares_timeout says is next.
  void arm_timer() {
    timeval tv{};
    if (!ares_timeout(channel, nullptr, &tv)) {
      timer.cancel();
      return;
    }
    timer.expires_after(std::chrono::seconds(tv.tv_sec) + std::chrono::microseconds(tv.tv_usec));
    timer.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
      auto self = weak.lock();
      if (ec || !self) return;
      ares_process_fd(self->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
      self->arm_timer();
    });
  }

  static void on_answer(void* arg, int status, int /*timeouts*/, unsigned char* abuf, int alen) {
    std::unique_ptr<std::shared_ptr<query_state>> state(static_cast<std::shared_ptr<query_state>*>(arg));
    raw_answer a;
    if (status == ARES_SUCCESS && abuf && alen > 0) a.message.assign(abuf, abuf + alen);
    else a.error = describe(status);
    (*state)->deadline.cancel();
    (*state)->finish(std::move(a));
  }

  // Sends one query; completes with the raw answer or a transport error. The
  // deadline covers the whole lookup, whatever c-ares's retries still plan.
  template <typename Token>
  auto async_send(std::vector<uint8_t> query, Token&& token) {
    return asio::async_initiate<Token, void(raw_answer)>(
        [this](auto handler, std::vector<uint8_t> q) {
          auto state = std::make_shared<query_state>(strand);
          state->done = std::make_unique<completion_for<decltype(handler)>>(std::move(handler));
          state->deadline.expires_after(options.timeout);
          state->deadline.async_wait([state](const boost::system::error_code& ec) {
            if (!ec) state->finish(failed("timeout"));
          });
          ares_send(channel, q.data(), static_cast<int>(q.size()), &impl::on_answer,
                    new std::shared_ptr<query_state>(state));
          arm_timer();
        },
        token, std::move(query));
  }

  asio::strand<asio::any_io_executor> strand;
  resolver_options options;
  ares_channel channel = nullptr;
  asio::steady_timer timer;
  answer_cache cache;
  bool trust_ad = false;
  std::vector<std::string> server_list;
  std::map<ares_socket_t, std::shared_ptr<watcher>> watchers;
};

namespace {

// Runs on the strand: cache first, then the network.
asio::awaitable<resolver::raw_answer> query_on_strand(std::shared_ptr<resolver::impl> self, std::string name,
                                                      rr_type type) {
  if (auto hit = self->cache.get(name, type))
    co_return resolver::raw_answer{std::move(hit->message), hit->trusted_ad, true, hit->remaining, {}, {}};
  auto q = build_query(name, type, 0);  // c-ares puts its own random id in
  if (q.empty()) co_return failed("invalid domain name");
  auto answer = co_await self->async_send(std::move(q), asio::use_awaitable);
  if (!answer.error.empty()) co_return answer;
  answer.trusted_ad = self->trust_ad;
  answer.ttl = cache_ttl(answer.message, name, type, self->options);
  self->cache.put(name, type, answer.message, answer.trusted_ad, answer.ttl);
  co_return answer;
}

template <typename Result, typename Decoder>
Result to_result(const resolver::raw_answer& raw, std::string_view name, Decoder decode) {
  if (raw.message.empty()) {
    Result r;
    r.error = raw.error;
    return r;
  }
  Result r = decode(raw.message, raw.answer_name.empty() ? name : raw.answer_name, raw.trusted_ad);
  if (r.status != outcome::temporary_failure) r.ttl = static_cast<uint32_t>(raw.ttl.count());
  return r;
}

std::mt19937& random_engine() {
  thread_local std::mt19937 engine{std::random_device{}()};
  return engine;
}

}  // namespace

resolver::resolver(asio::any_io_executor executor, resolver_options options)
    : impl_(std::make_shared<impl>(std::move(executor), std::move(options))) {}

resolver::~resolver() = default;

bool resolver::trusts_ad() const { return impl_->trust_ad; }
std::vector<std::string> resolver::servers() const { return impl_->server_list; }

asio::awaitable<resolver::raw_answer> resolver::query(std::string name, rr_type type) {
  auto self = impl_;
  std::string current = canonical_name(name);
  std::chrono::seconds ttl = std::chrono::seconds::max();
  bool trusted = true;
  // A server may answer with a CNAME and stop (unbound does for its own
  // local-data). That is not a proven absence: the target must be asked.
  for (int links = 0;; ++links) {
    auto answer = co_await asio::co_spawn(self->strand, query_on_strand(self, current, type), asio::use_awaitable);
    answer.answer_name = current;
    if (answer.message.empty()) co_return answer;
    ttl = std::min(ttl, answer.ttl);
    trusted = trusted && answer.trusted_ad;
    auto set = select_answer(parse_response(answer.message), current, type);
    if (set.status == outcome::absent && set.canonical_name != current) {
      if (links == 8) co_return failed("CNAME chain longer than 8");
      current = set.canonical_name;
      continue;
    }
    answer.ttl = ttl;
    answer.trusted_ad = trusted;
    co_return answer;
  }
}

asio::awaitable<a_result> resolver::resolve_a(std::string name) {
  auto raw = co_await query(name, rr_type::a);
  co_return to_result<a_result>(raw, name, decode_a);
}
asio::awaitable<aaaa_result> resolver::resolve_aaaa(std::string name) {
  auto raw = co_await query(name, rr_type::aaaa);
  co_return to_result<aaaa_result>(raw, name, decode_aaaa);
}
asio::awaitable<mx_result> resolver::resolve_mx(std::string name) {
  auto raw = co_await query(name, rr_type::mx);
  co_return to_result<mx_result>(raw, name, decode_mx);
}
asio::awaitable<txt_result> resolver::resolve_txt(std::string name) {
  auto raw = co_await query(name, rr_type::txt);
  co_return to_result<txt_result>(raw, name, decode_txt);
}
asio::awaitable<tlsa_result> resolver::resolve_tlsa(std::string name) {
  auto raw = co_await query(name, rr_type::tlsa);
  co_return to_result<tlsa_result>(raw, name, decode_tlsa);
}
asio::awaitable<smimea_result> resolver::resolve_smimea(std::string name) {
  auto raw = co_await query(name, rr_type::smimea);
  co_return to_result<smimea_result>(raw, name, decode_smimea);
}
asio::awaitable<openpgpkey_result> resolver::resolve_openpgpkey(std::string name) {
  auto raw = co_await query(name, rr_type::openpgpkey);
  co_return to_result<openpgpkey_result>(raw, name, decode_openpgpkey);
}

asio::awaitable<address_set> resolver::resolve_addresses(std::string host) {
  auto a = co_await resolve_a(host);
  auto aaaa = co_await resolve_aaaa(host);
  co_return merge_addresses(a, aaaa);
}

asio::awaitable<mx_set> resolver::mx_hosts(std::string domain) {
  auto mx = co_await resolve_mx(domain);
  auto set = order_mx(mx, domain, random_engine());
  if (set.status == mx_outcome::hosts && set.implicit) {
    auto a = co_await resolve_a(domain);
    auto aaaa = co_await resolve_aaaa(domain);
    set = finish_implicit_mx(std::move(set), a, aaaa);
  }
  co_return set;
}

}  // namespace sealgate::dns
